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

This module keeps the mappings and follows events; the slot arrays, their
in-place upkeep and :meth:`rows` live in :mod:`controller.routing.slotarrays`.
It never chooses paths, never reads a clock and is not thread safe: only the
owner thread updates or reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import networkx as nx
import numpy as np

from controller.errors import InvalidArgument
from controller.fabric.events import FabricEvent, LinkDown, LinkUp, SwitchDown, SwitchUp
from controller.fabric.model import Dpid, Link, LinkId, Path, PortNo, Switch, link_order
from controller.routing.layout import LinkLayout
from controller.routing.nexthops import next_hops_to
from controller.routing.paths import DEFAULT_MAX_PATHS
from controller.routing.slotarrays import PairRows, SlotArrays
from controller.routing.viewbase import ViewBase

__all__ = ["FabricState", "PairRows"]


class FabricState(SlotArrays, ViewBase):
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
        self._init_slots()

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

    def next_hops(self, src: Dpid, dst: Dpid) -> tuple[PortNo, ...]:
        """Ports of ``src`` on a cheapest path to ``dst`` (as
        :func:`~controller.routing.nexthops.next_hops_to` over the up links gives):
        from the array rows when a clean two-hop path exists, else from a per
        destination table cached until the topology or drains change."""
        if src == dst:
            return ()  # no switch forwards towards itself (a pair inside one leaf)
        ends = self.pair_ends(src, dst)
        bip = self.layout.bipartite
        if ends is not None and bip is not None and not bip.parallel:
            up, down = ends[0][2], ends[1][3]
            if self.dense_all_usable:
                return self.row_ports(up)
            ports = self._src_port[up]
            clean = self.usable[up] & self.usable[down]
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
