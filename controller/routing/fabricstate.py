"""The placement state: one long-lived, incrementally updated picture of the fabric.

A :class:`FabricState` holds what path choice needs to know - which switches
and links are up, each link's capacity, measured load and drain flag - and
keeps it both as plain per-link mappings (for the general code) and as dense
numpy arrays over the slots of a :class:`~controller.routing.layout.LinkLayout`
(for the fast path). The owner (the engine) updates it as things happen:
port-stats loads, capacities, links and switches up and down, drains; each
update costs O(1), except events that move slots (a link or switch never seen
before, parallel cables changing), which rebuild the layout once, lazily, on
the next read. It can stand wherever a :class:`NetworkView` is read
(:class:`~controller.routing.strategies.FabricView`): the switch graph is
built lazily once per topology version for the code that still walks it.

On a bipartite fabric (leaf-spine), :meth:`rows` gives a pair of switches'
candidate paths as two array rows (one uplink and one downlink per middle
switch) and :meth:`next_hops` answers from the same rows: per-flow work is
proportional to the fabric's width, never to its size.

It never chooses paths, never reads a clock and is not thread safe: only the
owner thread updates or reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import networkx as nx
import numpy as np

from controller.errors import InvalidArgument
from controller.fabric.events import FabricEvent, LinkDown, LinkUp, SwitchDown, SwitchUp
from controller.fabric.model import Dpid, Link, LinkId, Path, PortNo, Switch
from controller.routing.layout import LinkLayout, build_layout, link_order
from controller.routing.nexthops import next_hops_to
from controller.routing.paths import DEFAULT_MAX_PATHS
from controller.routing.viewbase import ViewBase

__all__ = ["FabricState", "PairRows"]


class PairRows(NamedTuple):
    """The candidate paths of ``src -> dst`` through the other side's switches.

    ``up`` and ``down`` index the state's slot arrays (array rows: entry j is
    the link to / from middle switch ``middles[j]``); ``rank[j]`` is middle j's
    position in the sorted candidate list and ``order`` the inverse; ``side``
    is the side ``src`` and ``dst`` are on.
    """

    src: Dpid
    dst: Dpid
    up: slice
    down: slice
    middles: tuple[Dpid, ...]
    rank: np.ndarray
    order: np.ndarray
    side: int
    in_order: bool  # candidate order is position order (rank is the identity)
    layout: LinkLayout  # the layout the slots belong to
    # Views of the state's penalised load and capacity along ``up`` and ``down``.
    penalised_up: np.ndarray
    penalised_down: np.ndarray
    capacity_up: np.ndarray
    capacity_down: np.ndarray


class FabricState(ViewBase):
    """Switches, links, capacities, loads and drains, as mappings and slot arrays."""

    def __init__(
        self, *, max_paths: int = DEFAULT_MAX_PATHS, unknown_capacity_bps: float = 1e9
    ) -> None:
        """``max_paths`` caps equal-cost candidates per pair (as the path cache does);
        ``unknown_capacity_bps`` stands in for links of unknown (0) capacity."""
        if max_paths < 1:
            raise InvalidArgument("max_paths", f"must be at least 1, got {max_paths}")
        if not unknown_capacity_bps > 0:
            raise InvalidArgument("unknown_capacity_bps", "must be > 0")
        self.max_paths = max_paths
        self.unknown_capacity_bps = float(unknown_capacity_bps)
        self.names: dict[Dpid, str] = {}
        self._names_to: dict[str, Dpid] = {}
        self._connected: dict[Dpid, bool] = {}
        self._known: dict[LinkId, None] = {}  # every link ever seen, in arrival order
        self._up: set[LinkId] = set()
        self._load: dict[LinkId, float] = {}
        self._capacity: dict[LinkId, float] = {}
        self._drained: set[LinkId] = set()
        self._drained_view: frozenset[LinkId] | None = None
        self.load_bps: Mapping[LinkId, float] = MappingProxyType(self._load)
        self.capacity: Mapping[LinkId, float] = MappingProxyType(self._capacity)
        self.version = 0  # bumped by every change of switches, links or drains
        self._layout: LinkLayout | None = None
        self._stale = True  # arrays must be rebuilt from the mappings
        self._graph: tuple[int, nx.DiGraph] | None = None
        # (version, next hops per destination, the up links they were computed over)
        self._hops: tuple[int, dict[Dpid, dict[Dpid, tuple[PortNo, ...]]], list[LinkId]] | None = (
            None
        )
        empty = np.zeros(0)
        self.load = empty  # measured bits/s per slot
        self.penalised = empty  # load, or +inf where the slot may not carry new flows
        self.capacity_eff = empty  # capacity, unknown ones substituted
        self.alive = np.zeros(0, dtype=bool)  # the slot's link is an edge of the graph
        self._src_port = np.zeros(0, dtype=np.int64)  # egress port of the slot's link
        self.usable = np.zeros(0, dtype=bool)  # an edge and not drained: may take new flows
        self.dense_usable = 0  # usable slots of the dense blocks
        # Per switch of a side: (side, position, up slots, down slots, views of the
        # penalised load and capacity along them), so rows() makes no new views.
        self._ends: dict[Dpid, tuple[Any, ...]] = {}
        self._middles: tuple[tuple[tuple[Dpid, ...], np.ndarray, np.ndarray, np.ndarray], ...] = ()
        self.dense_slots = -1  # slots in the dense blocks (-1: no blocks)
        # Per side: work rows of the fast path (up, down, key, tie mask, and up and
        # down as the two rows of one block, so one call can treat both).
        self.scratch: tuple[tuple[np.ndarray, ...], ...] = ()

    # ------------------------------------------------------------ building
    @classmethod
    def of_fabric(
        cls,
        switches: Iterable[Switch],
        links: Iterable[Link],
        *,
        max_paths: int = DEFAULT_MAX_PATHS,
        unknown_capacity_bps: float = 1e9,
    ) -> FabricState:
        """A state of the given switches and up links (their capacities and drains)."""
        state = cls(max_paths=max_paths, unknown_capacity_bps=unknown_capacity_bps)
        for sw in switches:
            state.names[sw.dpid] = sw.name
            state._connected[sw.dpid] = sw.connected
        for link in links:
            state._add_known(link.link_id)
            state._up.add(link.link_id)
            if link.capacity_bps > 0:
                state._capacity[link.link_id] = link.capacity_bps
            if link.drained:
                state._drained.add(link.link_id)
        state._renamed()
        state._changed(layout=True)
        return state

    @classmethod
    def from_view(cls, view: object, *, max_paths: int = DEFAULT_MAX_PATHS) -> FabricState:
        """A state equal to a :class:`~controller.routing.strategies.NetworkView`."""
        from controller.routing.strategies import NetworkView

        if not isinstance(view, NetworkView):
            raise InvalidArgument("view", f"expected a NetworkView, got {type(view).__name__}")
        state = cls(max_paths=max_paths, unknown_capacity_bps=view.unknown_capacity_bps)
        state.names.update(view.names)
        for dpid in view.graph:
            state._connected[dpid] = True
        for _, _, lid in view.graph.edges(data="link"):
            state._add_known(lid)
            state._up.add(lid)
        state._capacity.update((k, v) for k, v in view.capacity.items() if v > 0)
        state._load.update(view.load_bps)
        state._drained.update(view.drained)
        state._renamed()
        state._changed(layout=True)
        return state

    # ------------------------------------------------------------- updates
    def apply(self, events: Iterable[FabricEvent]) -> None:
        """Follow the topology's events (switches and links up and down)."""
        for event in events:
            if isinstance(event, SwitchUp):
                self.switch_up(event.dpid, name=event.name)
            elif isinstance(event, SwitchDown):
                self.switch_down(event.dpid)
            elif isinstance(event, LinkUp):
                self.link_up(event.link)
            elif isinstance(event, LinkDown):
                self.link_down(event.link)

    def switch_up(self, dpid: Dpid, *, name: str = "") -> None:
        if name and self.names.get(dpid) != name:
            self.names[dpid] = name
            self._renamed()
        if self._connected.get(dpid) is not True:
            self._connected[dpid] = True
            self._switch_changed(dpid)

    def switch_down(self, dpid: Dpid) -> None:
        if self._connected.get(dpid):
            self._connected[dpid] = False
            self._switch_changed(dpid)

    def link_up(self, lid: LinkId, *, capacity_bps: float | None = None) -> None:
        if capacity_bps is not None:
            self.set_capacity(lid, capacity_bps)
        if lid in self._up:
            return
        new = lid not in self._known
        self._add_known(lid)
        self._up.add(lid)
        if new:
            self._changed(layout=True)
        elif not self._flip(lid):
            # A link outside the dense blocks may join two switches of one side:
            # the graph may no longer be bipartite, so the slots are laid out anew.
            self._changed(layout=not self._dense_single(lid))

    def link_down(self, lid: LinkId) -> None:
        if lid not in self._up:
            return
        self._up.discard(lid)
        if not self._flip(lid):
            # Losing a link never makes a bipartite graph non-bipartite; only
            # parallel cables (the slot holds one of them) need new slots.
            self._changed(layout=self._in_parallel_pair(lid))

    def set_drained(self, lid: LinkId, drained: bool) -> None:
        if drained == (lid in self._drained):
            return
        (self._drained.add if drained else self._drained.discard)(lid)
        self._drained_view = None
        self.version += 1
        slot = self._slot(lid)
        if slot >= 0:
            self._set_usable(slot, bool(self.alive[slot]) and not drained)

    def set_capacity(self, lid: LinkId, capacity_bps: float) -> None:
        """Configured or reported capacity in bits/s (0 = unknown)."""
        if capacity_bps > 0:
            self._capacity[lid] = capacity_bps
        else:
            self._capacity.pop(lid, None)
        slot = self._slot(lid)
        if slot >= 0:
            self.capacity_eff[slot] = (
                capacity_bps if capacity_bps > 0 else self.unknown_capacity_bps
            )

    def set_load(self, lid: LinkId, bps: float) -> None:
        """The measured rate of one directed link (bits/s)."""
        self._load[lid] = bps
        slot = self._slot(lid)
        if slot >= 0:
            self.load[slot] = bps
            if self.usable[slot]:
                self.penalised[slot] = bps

    def set_loads(self, loads: Mapping[LinkId, float]) -> None:
        """:meth:`set_load` for many links at once (one port-stats round)."""
        self._load.update(loads)
        if self._stale or self._layout is None or not loads:
            return
        index = self._layout.index
        slots = np.fromiter((index.get(lid, -1) for lid in loads), dtype=np.int64, count=len(loads))
        values = np.fromiter(loads.values(), dtype=np.float64, count=len(loads))
        known = slots >= 0
        slots, values = slots[known], values[known]
        self.load[slots] = values
        self.penalised[slots] = np.where(self.usable[slots], values, np.inf)

    # --------------------------------------------------------------- reads
    @property
    def layout(self) -> LinkLayout:
        self._ensure()
        assert self._layout is not None
        return self._layout

    @property
    def drained(self) -> frozenset[LinkId]:
        if self._drained_view is None:
            self._drained_view = frozenset(self._drained)
        return self._drained_view

    @property
    def _by_name(self) -> Mapping[str, Dpid]:
        return self._names_to

    def is_up(self, dpid: Dpid) -> bool:
        return self._connected.get(dpid, False)

    def is_edge(self, lid: LinkId) -> bool:
        """Whether ``lid`` is an edge of the switch graph (up, ends connected, and
        the lowest-numbered of parallel cables)."""
        self._ensure()
        slot = self._slot(lid)
        return slot >= 0 and bool(self.alive[slot])

    def path_alive(self, path: Path, avoid: frozenset[LinkId] = frozenset()) -> bool:
        """Whether every link of ``path`` is a graph edge and not in ``avoid``."""
        return all(lid not in avoid and self.is_edge(lid) for lid in path.links)

    @property
    def graph(self) -> nx.DiGraph:
        """The switch graph (as :func:`controller.fabric.model.graph_of` builds it):
        a new object per topology version, built on first use."""
        if self._graph is None or self._graph[0] != self.version:
            g = nx.DiGraph()
            g.add_nodes_from(d for d, up in self._connected.items() if up)
            for lid in self._edges():
                g.add_edge(lid.src.dpid, lid.dst.dpid, link=lid, port=lid.src.port)
            self._graph = (self.version, g)
        return self._graph[1]

    def rows(self, src: Dpid, dst: Dpid) -> PairRows | None:
        """``src -> dst`` as array rows, or None when the general path must answer
        (not two distinct switches of one side, or more middles than ``max_paths``)."""
        self._ensure()
        a, b = self._ends.get(src), self._ends.get(dst)
        if a is None or b is None or a[0] != b[0] or src == dst:
            return None
        side, pos = a[0], a[1]
        middles, rank, order, in_order = self._middles[side]
        if len(middles) > self.max_paths:
            return None
        return PairRows(
            src,
            dst,
            a[2],
            b[3],
            middles,
            rank[pos],
            order[pos],
            side,
            bool(in_order[pos]),
            self._layout,  # type: ignore[arg-type]
            a[4],
            b[5],
            a[6],
            b[7],
        )

    def next_hops(self, src: Dpid, dst: Dpid) -> tuple[PortNo, ...]:
        """Ports of ``src`` on a cheapest path to ``dst`` (as
        :func:`~controller.routing.nexthops.next_hops_to` over the up links gives):
        from the array rows when a clean two-hop path exists, else from a per
        destination table cached until the topology or drains change."""
        rows = self.rows(src, dst)
        bip = self.layout.bipartite
        if rows is not None and bip is not None and not bip.parallel:
            ports = self._src_port[rows.up]
            if self.dense_all_usable:
                return tuple(sorted(ports.tolist()))
            clean = self.usable[rows.up] & self.usable[rows.down]
            if clean.any():
                return tuple(sorted(ports[clean].tolist()))
        if self._hops is None or self._hops[0] != self.version:
            self._hops = (self.version, {}, self._edges(all_parallel=True))
        table = self._hops[1].get(dst)
        if table is None:
            table = next_hops_to(dst, self._hops[2], drained=self.drained)
            self._hops[1][dst] = table
        return table.get(src, ())

    # ----------------------------------------------------------- internals
    def _add_known(self, lid: LinkId) -> None:
        self._known.setdefault(lid, None)

    def _renamed(self) -> None:
        self._names_to = {name: dpid for dpid, name in self.names.items() if name}

    def _changed(self, *, layout: bool = False) -> None:
        self.version += 1
        self._stale = True
        if layout:
            self._layout = None

    def _slot(self, lid: LinkId) -> int:
        if self._stale or self._layout is None:
            return -1  # the arrays are rebuilt from the mappings on the next read
        return self._layout.index.get(lid, -1)

    def _dense_single(self, lid: LinkId) -> bool:
        """Whether ``lid`` has a dense slot of its own (the layout stays valid)."""
        layout = self._layout
        bip = layout.bipartite if layout is not None else None
        if layout is None or bip is None:
            return False
        return 0 <= layout.index.get(lid, -1) < 2 * bip.block and not self._in_parallel_pair(lid)

    def _in_parallel_pair(self, lid: LinkId) -> bool:
        layout = self._layout
        bip = layout.bipartite if layout is not None else None
        return bip is not None and (lid.src.dpid, lid.dst.dpid) in bip.parallel

    def _flip(self, lid: LinkId) -> bool:
        """Bring a dense slot in line with its link in place; False if that is not
        enough (arrays stale, not a dense slot, parallel cables)."""
        slot = self._slot(lid)
        bip = self._layout.bipartite if self._layout is not None else None
        if slot < 0 or bip is None or slot >= 2 * bip.block or self._in_parallel_pair(lid):
            return False
        self.version += 1
        self._refresh_slot(slot, lid)
        return True

    def _refresh_slot(self, slot: int, lid: LinkId) -> None:
        connected = self._connected
        edge = (
            lid in self._up
            and bool(connected.get(lid.src.dpid))
            and bool(connected.get(lid.dst.dpid))
        )
        self.alive[slot] = edge
        self._set_usable(slot, edge and lid not in self._drained)

    def _set_usable(self, slot: int, usable: bool) -> None:
        bip = self._layout.bipartite if self._layout is not None else None
        if bip is not None and slot < 2 * bip.block and usable != bool(self.usable[slot]):
            self.dense_usable += 1 if usable else -1
        self.usable[slot] = usable
        self.penalised[slot] = self.load[slot] if usable else np.inf

    def _switch_changed(self, dpid: Dpid) -> None:
        """A switch (dis)connected: refresh its dense slots in place when it has no
        other links, else rebuild the arrays."""
        self.version += 1
        ends = self._ends.get(dpid) if not self._stale else None
        layout = self._layout
        if ends is None or layout is None or dpid in layout.outside:
            self._changed()
            return
        for slots in (ends[2], ends[3]):
            for slot in range(*slots.indices(layout.size)):
                lid = layout.links[slot]
                if lid is not None:
                    self._refresh_slot(slot, lid)

    def _edges(self, *, all_parallel: bool = False) -> list[LinkId]:
        """Up links between connected switches: the lowest per switch pair (the
        graph's edges), or every one of them (next hops count parallel cables)."""
        connected = self._connected
        alive = [
            lid for lid in self._up if connected.get(lid.src.dpid) and connected.get(lid.dst.dpid)
        ]
        alive.sort(key=link_order)
        if all_parallel:
            return alive
        edges: dict[tuple[Dpid, Dpid], LinkId] = {}
        for lid in alive:
            edges.setdefault((lid.src.dpid, lid.dst.dpid), lid)
        return list(edges.values())

    def _ensure(self) -> None:
        """Rebuild the layout and the arrays if something moved since the last read."""
        if not self._stale and self._layout is not None:
            return
        edges = self._edges()
        if self._layout is None:
            switches = [d for d, up in self._connected.items() if up]
            self._layout = build_layout(self._known, edges=edges, switches=switches)
        layout = self._layout
        n = layout.size
        self.load = np.zeros(n)
        self.capacity_eff = np.full(n, self.unknown_capacity_bps)
        self.alive = np.zeros(n, dtype=bool)
        self._src_port = np.full(n, -1, dtype=np.int64)
        index = layout.index
        for lid, slot in index.items():
            self._src_port[slot] = lid.src.port
            self.load[slot] = self._load.get(lid, 0.0)
            cap = self._capacity.get(lid, 0.0)
            if cap > 0:
                self.capacity_eff[slot] = cap
        for lid in edges:
            slot = index.get(lid, -1)
            if slot >= 0:
                self.alive[slot] = True
        usable = self.alive.copy()
        for lid in self._drained:
            slot = index.get(lid, -1)
            if slot >= 0:
                usable[slot] = False
        self.usable = usable
        self.penalised = np.where(usable, self.load, np.inf)
        bip = layout.bipartite
        self.dense_usable = int(usable[: 2 * bip.block].sum()) if bip is not None else 0
        self._ends = {}
        self.dense_slots = -1
        if bip is not None:
            for dpid, (side, pos) in bip.position.items():
                up, down = bip.up_slots(side, pos), bip.down_slots(side, pos)
                assert isinstance(up, slice) and isinstance(down, slice)
                pen, eff = self.penalised, self.capacity_eff
                self._ends[dpid] = (side, pos, up, down, pen[up], pen[down], eff[up], eff[down])
            self.dense_slots = 2 * bip.block
            self._middles = tuple(
                (bip.sides[1 - s], bip.rank[s], bip.order[s], bip.in_order[s]) for s in (0, 1)
            )
            self.scratch = tuple(_scratch(len(bip.sides[1 - s])) for s in (0, 1))
        self._stale = False

    @property
    def dense_all_usable(self) -> bool:
        """Whether every dense slot holds a usable link (a healthy full mesh); valid
        after a read such as :meth:`rows`."""
        return self.dense_usable == self.dense_slots


def _scratch(width: int) -> tuple[np.ndarray, ...]:
    block = np.empty((2, width))
    return block[0], block[1], np.empty(width), np.empty(width, dtype=bool), block
