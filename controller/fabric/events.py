"""Events the fabric model emits when what the controller knows changes.

Plain frozen values: the traffic-engineering layer reacts to them, the API
streams them to watchers, metrics count them. They never carry Ryu objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.fabric.model import Dpid, LinkId, PortRef

__all__ = [
    "FabricEvent",
    "SwitchUp",
    "SwitchDown",
    "PortChanged",
    "LinkUp",
    "LinkDown",
    "HostLearned",
    "HostMoved",
    "LldpIgnored",
]


@dataclass(frozen=True)
class FabricEvent:
    time: float


@dataclass(frozen=True)
class SwitchUp(FabricEvent):
    dpid: Dpid
    name: str


@dataclass(frozen=True)
class SwitchDown(FabricEvent):
    dpid: Dpid
    name: str


@dataclass(frozen=True)
class PortChanged(FabricEvent):
    port: PortRef
    up: bool


@dataclass(frozen=True)
class LinkUp(FabricEvent):
    link: LinkId


@dataclass(frozen=True)
class LinkDown(FabricEvent):
    link: LinkId
    reason: str  # "port-down", "switch-down", "lldp-timeout"


@dataclass(frozen=True)
class HostLearned(FabricEvent):
    mac: str
    ipv4: str | None
    attach: PortRef


@dataclass(frozen=True)
class HostMoved(FabricEvent):
    mac: str
    ipv4: str | None
    old: PortRef
    attach: PortRef


@dataclass(frozen=True)
class LldpIgnored(FabricEvent):
    """LLDP arrived where no fabric link may be (a port with hosts behind it)."""

    port: PortRef
    reason: str
