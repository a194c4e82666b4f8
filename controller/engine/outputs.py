"""What the core asks the shim to do, as plain data.

The core never touches a datapath: it returns programs (phased flow/group
changes), packets to send, and events to publish. The Ryu shim is the single
place that turns these into OpenFlow messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.fabric.model import Dpid, PortNo, PortRef
from controller.flowprog.plan import Op, Program

__all__ = ["PacketOut", "ArpReply", "LldpProbe", "EngineOutput", "Notice"]


@dataclass(frozen=True)
class PacketOut:
    """Send ``data`` out of ``out_port`` on ``dpid``; ``out_port=None`` means "through
    the flow table as if it arrived on ``in_port``" (OFPP_TABLE)."""

    dpid: Dpid
    data: bytes
    out_port: PortNo | None = None
    in_port: PortNo | None = None


@dataclass(frozen=True)
class ArpReply:
    """Answer an ARP request on behalf of ``target`` (proxy ARP)."""

    dpid: Dpid
    port: PortNo
    target_mac: str
    target_ip: str
    requester_mac: str
    requester_ip: str


@dataclass(frozen=True)
class LldpProbe:
    port: PortRef
    hw_addr: str


@dataclass(frozen=True)
class Notice:
    """Something for the event stream: kind is a views.EventKind value."""

    kind: str
    subject: str
    reason: str = ""
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass
class EngineOutput:
    programs: list[Program] = field(default_factory=list)
    # Sent at once, before ``packets``, without waiting for the program queue
    # (each list ends with a barrier, so packets sent after it see its effect).
    immediate: list[tuple[Dpid, list[Op]]] = field(default_factory=list)
    packets: list[PacketOut | ArpReply] = field(default_factory=list)  # send now
    packets_after: list[PacketOut] = field(default_factory=list)  # once programs are done
    notices: list[Notice] = field(default_factory=list)
    resync: set[Dpid] = field(default_factory=set)  # re-read these switches' tables

    def add_program(self, program: Program) -> None:
        if program:
            self.programs.append(program)

    def merge(self, other: EngineOutput) -> EngineOutput:
        self.programs += other.programs
        self.immediate += other.immediate
        self.packets += other.packets
        self.packets_after += other.packets_after
        self.notices += other.notices
        self.resync |= other.resync
        return self
