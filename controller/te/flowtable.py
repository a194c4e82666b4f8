"""Tracked flows and the table that indexes them.

A :class:`TrackedFlow` is one AI flow the controller placed with per-flow
rules: its identity, where it enters and leaves the fabric, its current path
and the bookkeeping of its moves. Flows are immutable values; the
:class:`FlowTable` replaces them on every change, so a snapshot is just a copy
of references. The table answers by id, by 5-tuple and by link in O(1) and
keeps the link index consistent on every add, move and removal, which is what
lets failure handling find the affected flows among 100,000 without a scan.

This module only keeps records; it never chooses paths and never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.errors import AlreadyExists, NotFound, Unavailable
from controller.fabric.model import Dpid, FiveTuple, LinkId, Path, PortRef

__all__ = ["TrackedFlow", "FlowTable", "MAX_FLOW_ID", "GENERATION_MASK"]

MAX_FLOW_ID = 0xFFFFFFFF  # flow ids are the 32-bit field of the rules' cookie
GENERATION_MASK = 0xFFFF  # generations are the 16-bit field of the cookie


@dataclass(frozen=True, slots=True)
class TrackedFlow:
    """One placed flow. ``generation`` names its current placement in rule cookies."""

    flow_id: int
    five_tuple: FiveTuple
    dscp: int
    policy: str
    ingress: PortRef  # host-facing port where the flow enters the fabric
    egress: PortRef  # host-facing port where it leaves
    path: Path
    placed_at: float
    demand_bps: float  # estimate used until the flow's rate is measured
    generation: int = 0
    last_move_at: float = 0.0  # 0 until the first move
    moves: int = 0
    last_move_reason: str = ""
    rate_bps: float = 0.0  # measured (EWMA of flow-stats samples)
    measured: bool = False
    fell_back: bool = False  # a pinned policy's path was impossible; its fallback chose

    @property
    def load_bps(self) -> float:
        """The rate the controller plans with: measured once known, else the estimate."""
        return self.rate_bps if self.measured else self.demand_bps

    def with_rate(self, rate_bps: float) -> TrackedFlow:
        """This flow with a measured rate (every placed flow, every poll: positional,
        a third of what ``dataclasses.replace`` costs)."""
        return TrackedFlow(
            self.flow_id,
            self.five_tuple,
            self.dscp,
            self.policy,
            self.ingress,
            self.egress,
            self.path,
            self.placed_at,
            self.demand_bps,
            self.generation,
            self.last_move_at,
            self.moves,
            self.last_move_reason,
            rate_bps,
            True,
            self.fell_back,
        )

    @property
    def settled_at(self) -> float:
        """When the flow last changed path (placement counts): the anti-flap reference."""
        return self.last_move_at if self.moves else self.placed_at


class FlowTable:
    """Tracked flows by id, by 5-tuple and by link; all lookups O(1)."""

    def __init__(self, *, first_id: int = 1) -> None:
        if not 1 <= first_id <= MAX_FLOW_ID:
            raise ValueError(f"first_id must be in 1..{MAX_FLOW_ID}, got {first_id}")
        self._by_id: dict[int, TrackedFlow] = {}
        self._by_tuple: dict[FiveTuple, int] = {}
        self._by_link: dict[LinkId, set[int]] = {}
        self._by_ingress: dict[Dpid, int] = {}  # flows entering at each switch
        self._next_id = first_id

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, flow_id: int) -> TrackedFlow | None:
        return self._by_id.get(flow_id)

    def by_five_tuple(self, ft: FiveTuple) -> TrackedFlow | None:
        flow_id = self._by_tuple.get(ft)
        return None if flow_id is None else self._by_id[flow_id]

    def ids_on(self, lid: LinkId) -> frozenset[int]:
        """Ids of the flows whose path uses ``lid`` (a copy: safe to iterate while moving)."""
        return frozenset(self._by_link.get(lid, ()))

    def count_on(self, lid: LinkId) -> int:
        return len(self._by_link.get(lid, ()))

    def ingress_switches(self) -> set[Dpid]:
        """Switches where at least one tracked flow enters the fabric."""
        return set(self._by_ingress)

    def busy_links(self) -> list[LinkId]:
        """Links carrying at least one tracked flow."""
        return list(self._by_link)

    def snapshot(self) -> tuple[TrackedFlow, ...]:
        """All flows in id order; immutable values, safe to hand to other threads."""
        return tuple(self._by_id[i] for i in sorted(self._by_id))

    # ------------------------------------------------------------------ writes
    def allocate_id(self) -> int:
        """The next free flow id: increasing, wrapping past 2**32 - 1, never 0."""
        if len(self._by_id) >= MAX_FLOW_ID:
            raise Unavailable("all 2**32 - 1 flow ids are in use")
        candidate = self._next_id
        while candidate in self._by_id:
            candidate = candidate + 1 if candidate < MAX_FLOW_ID else 1
        self._next_id = candidate + 1 if candidate < MAX_FLOW_ID else 1
        return candidate

    def add(self, flow: TrackedFlow) -> None:
        flow_id = flow.flow_id
        if flow_id in self._by_id:
            raise AlreadyExists("flow", str(flow_id))
        # One hash of the 5-tuple instead of two: this runs for every new flow.
        if self._by_tuple.setdefault(flow.five_tuple, flow_id) != flow_id:
            raise AlreadyExists("flow", str(flow.five_tuple))
        self._by_id[flow_id] = flow
        self._index(flow_id, flow.path)
        dpid = flow.ingress.dpid
        self._by_ingress[dpid] = self._by_ingress.get(dpid, 0) + 1

    def remove(self, flow_id: int) -> TrackedFlow | None:
        flow = self._by_id.pop(flow_id, None)
        if flow is None:
            return None
        del self._by_tuple[flow.five_tuple]
        self._unindex(flow_id, flow.path)
        dpid = flow.ingress.dpid
        left = self._by_ingress[dpid] - 1
        if left:
            self._by_ingress[dpid] = left
        else:
            del self._by_ingress[dpid]
        return flow

    def replace(self, flow: TrackedFlow) -> None:
        """Store a new version of a tracked flow (same id and 5-tuple), reindexing its path."""
        old = self._by_id.get(flow.flow_id)
        if old is None:
            raise NotFound("flow", str(flow.flow_id))
        if old.five_tuple != flow.five_tuple:
            raise ValueError(f"flow {flow.flow_id}: the 5-tuple of a tracked flow cannot change")
        if old.ingress != flow.ingress:  # it is indexed: the switches whose counters are read
            raise ValueError(f"flow {flow.flow_id}: the ingress of a tracked flow cannot change")
        if old.path != flow.path:
            self._unindex(flow.flow_id, old.path)
            self._index(flow.flow_id, flow.path)
        self._by_id[flow.flow_id] = flow

    def set_rate(self, flow_id: int, rate_bps: float) -> None:
        """Record the flow's measured rate (its path and 5-tuple stay: no reindex)."""
        old = self._by_id.get(flow_id)
        if old is None:
            raise NotFound("flow", str(flow_id))
        self._by_id[flow_id] = old.with_rate(rate_bps)

    def move(self, flow_id: int, path: Path, *, reason: str, now: float) -> TrackedFlow:
        """Put the flow on ``path``: bumps its generation (16-bit wrap) and its move count."""
        old = self._by_id.get(flow_id)
        if old is None:
            raise NotFound("flow", str(flow_id))
        moved = TrackedFlow(  # positional: a lost spine moves ~1,700 flows at once
            old.flow_id,
            old.five_tuple,
            old.dscp,
            old.policy,
            old.ingress,
            old.egress,
            path,
            old.placed_at,
            old.demand_bps,
            (old.generation + 1) & GENERATION_MASK,
            now,
            old.moves + 1,
            reason,
            old.rate_bps,
            old.measured,
            old.fell_back,
        )
        self.replace(moved)
        return moved

    def _index(self, flow_id: int, path: Path) -> None:
        for lid in path.links:
            ids = self._by_link.get(lid)
            if ids is None:
                self._by_link[lid] = {flow_id}
            else:
                ids.add(flow_id)

    def _unindex(self, flow_id: int, path: Path) -> None:
        for lid in path.links:
            ids = self._by_link.get(lid)
            if ids is not None:
                ids.discard(flow_id)
                if not ids:
                    del self._by_link[lid]
