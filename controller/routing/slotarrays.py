"""The slot arrays of the placement state, and their upkeep.

:class:`SlotArrays` is the array half of
:class:`~controller.routing.fabricstate.FabricState`: measured load,
penalised load (+inf where a link may not take new flows), effective capacity
and liveness as numpy arrays over the slots of a
:class:`~controller.routing.layout.LinkLayout`, rebuilt lazily from the
state's mappings when slots move and otherwise kept in place one slot at a
time; and :meth:`SlotArrays.rows`, a pair of switches' candidate paths as two
array rows (:class:`PairRows`) for the fast path. The mappings, the events
that change them and the general reads stay in ``fabricstate``. It never
chooses paths or reads a clock.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from controller.fabric.model import Dpid, LinkId, PortNo
from controller.routing.layout import LinkLayout, build_layout

__all__ = ["PairRows", "SlotArrays"]


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


class SlotArrays:
    """Mixin: the slot arrays over the owner's mappings (``_connected``, ``_up``,
    ``_known``, ``_load``, ``_capacity``, ``_drained``) and layout."""

    max_paths: int
    unknown_capacity_bps: float
    version: int
    _layout: LinkLayout | None
    _stale: bool
    _connected: dict[Dpid, bool]
    _known: dict[LinkId, None]
    _up: set[LinkId]
    _load: dict[LinkId, float]
    _capacity: dict[LinkId, float]
    _drained: set[LinkId]

    def _init_slots(self) -> None:
        """Empty arrays: the first read lays the slots out."""
        empty = np.zeros(0)
        self.load = empty  # measured bits/s per slot
        self.penalised = empty  # load, or +inf where the slot may not carry new flows
        self.capacity_eff = empty  # capacity, unknown ones substituted
        self.alive = np.zeros(0, dtype=bool)  # the slot's link is an edge of the graph
        self._src_port = np.zeros(0, dtype=np.int64)  # egress port of the slot's link
        self._row_ports: dict[tuple[int, int, int], tuple[PortNo, ...]] = {}
        self.usable = np.zeros(0, dtype=bool)  # an edge and not drained: may take new flows
        self.dense_usable = 0  # usable slots of the dense blocks
        # Per switch of a side: (side, position, up slots, down slots).
        self._ends: dict[Dpid, tuple[int, int, slice, slice]] = {}
        self._middles: tuple[tuple[tuple[Dpid, ...], np.ndarray, np.ndarray, np.ndarray], ...] = ()
        self.dense_slots = -1  # slots in the dense blocks (-1: no blocks)
        # Per side: work rows of the numpy scoring (up, down, key, tie mask).
        self.scratch: tuple[tuple[np.ndarray, ...], ...] = ()

    def _edges(self, *, all_parallel: bool = False) -> list[LinkId]:  # pragma: no cover
        raise NotImplementedError

    def _changed(self, *, layout: bool = False) -> None:  # pragma: no cover
        raise NotImplementedError

    def rows(self, src: Dpid, dst: Dpid) -> PairRows | None:
        """``src -> dst`` as array rows, or None when the general path must answer
        (not two distinct switches of one side, or more middles than ``max_paths``)."""
        ends = self.pair_ends(src, dst)
        if ends is None:
            return None
        a, b = ends
        side, pos = a[0], a[1]
        middles, rank, order, in_order = self._middles[side]
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
        )

    def pair_ends(
        self, src: Dpid, dst: Dpid
    ) -> tuple[tuple[int, int, slice, slice], tuple[int, int, slice, slice]] | None:
        """``src``'s and ``dst``'s (side, position, up slots, down slots) when
        :meth:`rows` answers for the pair, else None (no rows object made)."""
        self._ensure()
        a, b = self._ends.get(src), self._ends.get(dst)
        if a is None or b is None or a[0] != b[0] or src == dst:
            return None
        if len(self._middles[a[0]][0]) > self.max_paths:
            return None
        return a, b

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

    def row_ports(self, row: slice) -> tuple[PortNo, ...]:
        """The egress ports of a row's links, sorted (kept until the arrays are rebuilt)."""
        key = (row.start, row.stop, row.step)
        ports = self._row_ports.get(key)
        if ports is None:
            ports = self._row_ports[key] = tuple(sorted(self._src_port[row].tolist()))
        return ports

    @property
    def built(self) -> bool:
        """The slots and arrays are current: the next read builds nothing."""
        return not self._stale and self._layout is not None

    def prepare(self) -> None:
        """Lay the slots out and build the arrays now if a change made them stale,
        so that the next read (a new flow's placement) does not pay for it."""
        self._ensure()

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
        self._row_ports = {}
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
                self._ends[dpid] = (side, pos, up, down)
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
    """Work rows of the numpy scoring: used load up and down, key, tie mask."""
    return np.empty(width), np.empty(width), np.empty(width), np.empty(width, dtype=bool)
