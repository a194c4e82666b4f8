"""Read models: immutable pictures of the fabric, its flows and command results.

The hub thread owns all mutable state; the publisher builds these frozen
dataclasses after each change and replaces one reference, so any thread may
read them without locks. Commands return some of them as results. This
module holds values only: no behaviour, no imports from above the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.fabric.model import Dpid, FiveTuple, LinkId
from controller.policy.model import Policy

__all__ = [
    "PortView",
    "SwitchView",
    "HostView",
    "LinkView",
    "TopologyView",
    "FlowView",
    "PathExplanation",
    "ApplyResult",
    "DrainResult",
]


@dataclass(frozen=True)
class PortView:
    port_no: int
    name: str
    up: bool
    fabric: bool  # proven inter-switch port


@dataclass(frozen=True)
class SwitchView:
    dpid: Dpid
    name: str
    connected: bool
    ports: tuple[PortView, ...] = ()


@dataclass(frozen=True)
class HostView:
    mac: str
    ipv4: str
    switch: str
    dpid: Dpid
    port: int


@dataclass(frozen=True)
class LinkView:
    """One direction of an inter-switch link, with its load."""

    link: LinkId
    name: str  # "leaf1/3->spine1/1"
    src_switch: str
    dst_switch: str
    up: bool
    drained: bool
    capacity_bps: float
    rate_bps: float
    utilization: float  # rate / capacity, 0..1 (may exceed 1 briefly)
    congested: bool


@dataclass(frozen=True)
class TopologyView:
    switches: tuple[SwitchView, ...] = ()
    links: tuple[LinkView, ...] = ()
    hosts: tuple[HostView, ...] = ()


@dataclass(frozen=True)
class FlowView:
    """A flow the controller placed with per-flow rules."""

    flow_id: int
    five_tuple: FiveTuple
    dscp: int
    policy: str
    strategy: str
    path: tuple[str, ...]  # switch names, ingress first
    path_links: tuple[str, ...]  # LinkView.name of each hop
    rate_bps: float
    placed_at: float
    moves: int
    last_move_reason: str  # "", "congestion", "failure", "drain", "policy", "rebalance"
    last_move_at: float
    fell_back: bool  # a pinned policy's path is impossible; the fallback strategy chose


@dataclass(frozen=True)
class PathExplanation:
    five_tuple: FiveTuple
    policy: str
    strategy: str
    path: tuple[str, ...]
    per_flow: bool  # True: exact per-flow rules; False: per-destination groups
    flow_id: int  # 0 if the flow is not placed (yet)
    fell_back: bool
    reason: str  # a sentence a person can read


@dataclass(frozen=True)
class ApplyResult:
    policy: Policy  # as stored (with its new version), or as it would be (dry run)
    created: bool
    dry_run: bool
    changes: tuple[str, ...]  # human-readable list of what changed / would change
    flows_affected: int


@dataclass(frozen=True)
class DrainResult:
    links: tuple[str, ...]  # LinkView.name of every direction affected
    flows_moved: int
