"""Read models: immutable pictures of the fabric, its flows and command results.

The hub thread owns all mutable state; the publisher builds these frozen
dataclasses after each change and replaces one reference, so any thread may
read them without locks. Commands return some of them as results. This
module holds values only: no behaviour, no imports from above the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.fabric.model import Dpid, FiveTuple, LinkId
from controller.jobs.model import Job
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
    "JobPairView",
    "JobConflictView",
    "JobView",
    "ApplyJobResult",
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
    # A sequence, not always a tuple: published views build each link's view as it
    # is read (see controller.engine.lazyviews).
    links: Sequence[LinkView] = ()
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


@dataclass(frozen=True)
class JobPairView:
    """One flow of a job and where it runs."""

    src: str  # IPv4 of the sending host
    dst: str
    path: tuple[str, ...]  # switch names, ingress first; () while not placed
    demand_bps: float  # what the placement reserved
    rate_bps: float = 0.0  # measured, smoothed
    placed: bool = False  # its rules are installed on ``path``
    note: str = ""  # why it is not placed / not on the job's path, for people


@dataclass(frozen=True)
class JobConflictView:
    """A pinned policy whose match covers some of the job's pairs."""

    policy: str
    policy_priority: int
    job_wins: bool  # the job's priority is higher: its paths are used
    pairs: int  # how many of the job's pairs the policy covers


@dataclass(frozen=True)
class JobView:
    job: Job  # as stored, with its version
    pairs: tuple[JobPairView, ...]  # in rank order (Job.flow_pairs)
    conflicts: tuple[JobConflictView, ...] = ()
    max_utilization: float = 0.0  # highest utilization of a link the job uses


@dataclass(frozen=True)
class ApplyJobResult:
    job: Job  # as stored (new version), or as it would be (dry run)
    created: bool
    dry_run: bool
    pairs: tuple[JobPairView, ...]  # the placement made (or that would be)
    pairs_moved: int  # pairs of a replaced job that changed path
    max_utilization: float
    changes: tuple[str, ...] = ()  # human-readable list of what changed / would change
