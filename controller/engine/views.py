"""Read models and the facade the API layer talks to.

The hub thread owns all mutable state; it publishes immutable views (these
frozen dataclasses) that any thread may read. :class:`FabricFacade` is the
whole surface the gRPC service needs: reads answer from the latest views,
writes are carried into the hub and return once applied. Tests of the API use
a fake facade; the daemon uses :class:`controller.app.runtime.Runtime`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from controller.fabric.model import Dpid, FiveTuple, LinkId
from controller.policy.model import Policy

if TYPE_CHECKING:
    from controller.concurrency.eventbus import EventBus

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
    "EventKind",
    "EventRecord",
    "FabricFacade",
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


class EventKind(enum.Enum):
    SWITCH_UP = "switch-up"
    SWITCH_DOWN = "switch-down"
    LINK_UP = "link-up"
    LINK_DOWN = "link-down"
    HOST_LEARNED = "host-learned"
    HOST_MOVED = "host-moved"
    POLICY_APPLIED = "policy-applied"
    POLICY_DELETED = "policy-deleted"
    POLICY_FALLBACK = "policy-fallback"
    FLOW_PLACED = "flow-placed"
    FLOW_REROUTED = "flow-rerouted"
    FLOW_EXPIRED = "flow-expired"
    LINK_CONGESTED = "link-congested"
    LINK_CLEARED = "link-cleared"
    LINK_DRAINED = "link-drained"
    LINK_UNDRAINED = "link-undrained"


@dataclass(frozen=True)
class EventRecord:
    """One thing that happened, as streamed by WatchEvents. ``seq`` grows by one."""

    seq: int
    time: float  # unix seconds
    kind: EventKind
    subject: str  # what it is about: a link name, switch name, policy name, flow id
    reason: str = ""
    attributes: tuple[tuple[str, str], ...] = ()


class FabricFacade(Protocol):
    """Everything the API layer may ask of the controller.

    Errors are raised as :mod:`controller.errors` exceptions. Writes are
    atomic: they either fully apply or change nothing.
    """

    @property
    def events(self) -> EventBus: ...

    def ready(self) -> bool: ...

    def get_topology(self) -> TopologyView: ...

    def list_links(self) -> list[LinkView]: ...

    def list_flows(self, *, policy: str = "") -> list[FlowView]: ...

    def apply_policy(
        self, policy: Policy, *, dry_run: bool = False, expected_version: int | None = None
    ) -> ApplyResult:
        """Create or replace ``policy``.

        ``expected_version``: None = upsert; 0 = create only (AlreadyExists if
        present); n > 0 = replace only if the stored version is n (VersionConflict).
        """
        ...

    def get_policy(self, name: str) -> Policy: ...

    def list_policies(self) -> list[Policy]: ...

    def delete_policy(self, name: str, *, expected_version: int | None = None) -> int:
        """Delete and return the version that was deleted."""
        ...

    def drain_link(self, link: str) -> DrainResult:
        """``link``: "A-B" (all cables between switches A and B, both directions) or
        "A/p-B/q" (one cable). A and B are switch names or 16-hex-digit dpids."""
        ...

    def undrain_link(self, link: str) -> DrainResult: ...

    def explain_path(self, five_tuple: FiveTuple, *, dscp: int = 0) -> PathExplanation: ...
