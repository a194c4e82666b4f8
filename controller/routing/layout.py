"""Where each directed link lives in the placement arrays: its *slot*.

A :class:`LinkLayout` numbers every link the fabric state has ever seen with a
small integer, so that load, capacity and liveness can sit in flat numpy
arrays. When the switch graph is bipartite and dense enough (a leaf-spine is
the everyday case) the slots of links between the two sides are laid out as
two dense blocks::

    F[i, j] = slot of side0[i] -> side1[j]      slots [0, n0 * n1)
    G[i, j] = slot of side1[j] -> side0[i]      slots [n0 * n1, 2 * n0 * n1)

so that every uplink of a leaf is one row of ``F`` and every downlink into a
leaf one row of ``G``: the candidate paths between two switches of one side
are the switches of the other side, read as two array rows, never enumerated.
Other links (and any topology that is not bipartite) get slots after the
blocks and are reached through the general path code.

A layout is immutable; the state builds a new one when the set of known links
or switches changes in a way that moves slots. It knows nothing about load,
drains or policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from controller.fabric.model import Dpid, LinkId, link_order

__all__ = ["Bipartite", "LinkLayout", "build_layout"]

# Dense blocks are used while they hold at most this many slots per link:
# a full leaf-spine mesh has exactly one slot per directed link.
_MAX_SLOTS_PER_LINK = 4
_SMALL_BLOCK = 4096  # below this many slots density does not matter


@dataclass(frozen=True, eq=False)
class Bipartite:
    """The two sides of a bipartite switch graph and their dense slot blocks.

    ``order[s][i]`` lists the positions of the other side's switches in the
    order the paths of source ``sides[s][i]`` sort in (by the LinkId of the
    first hop); ``rank[s][i, j]`` is the inverse (position of switch j in
    that order; switches without a link sort last).
    """

    sides: tuple[tuple[Dpid, ...], tuple[Dpid, ...]]
    position: Mapping[Dpid, tuple[int, int]]  # dpid -> (side, position on that side)
    order: tuple[np.ndarray, np.ndarray]
    rank: tuple[np.ndarray, np.ndarray]
    parallel: frozenset[tuple[Dpid, Dpid]]  # switch pairs joined by more than one cable
    in_order: tuple[np.ndarray, np.ndarray]  # per source: its order is position order

    @property
    def block(self) -> int:
        """Slots per block (n0 * n1)."""
        return len(self.sides[0]) * len(self.sides[1])

    def up_slots(self, side: int, pos: int) -> np.ndarray | slice:
        """Slots of the links from switch ``pos`` of ``side`` to every switch of the
        other side (in the other side's position order)."""
        n0, n1 = len(self.sides[0]), len(self.sides[1])
        if side == 0:
            return slice(pos * n1, (pos + 1) * n1)
        return slice(n0 * n1 + pos, 2 * n0 * n1, n1)

    def down_slots(self, side: int, pos: int) -> np.ndarray | slice:
        """Slots of the links from every switch of the other side into switch
        ``pos`` of ``side``."""
        n0, n1 = len(self.sides[0]), len(self.sides[1])
        if side == 0:
            return slice(n0 * n1 + pos * n1, n0 * n1 + (pos + 1) * n1)
        return slice(pos, n0 * n1, n1)


@dataclass(frozen=True, eq=False)
class LinkLayout:
    """Slots of every known link; ``links[slot]`` is None for an empty dense slot."""

    links: tuple[LinkId | None, ...]
    index: Mapping[LinkId, int]
    bipartite: Bipartite | None
    outside: frozenset[Dpid]  # switches with a link outside the dense blocks

    @property
    def size(self) -> int:
        return len(self.links)

    def slot(self, lid: LinkId) -> int:
        """The slot of ``lid``, or -1 if this layout does not know it."""
        return self.index.get(lid, -1)


def _two_colouring(nodes: Iterable[Dpid], edges: Iterable[tuple[Dpid, Dpid]]) -> dict[Dpid, int]:
    """Side 0/1 per switch, or {} when the undirected graph has an odd cycle."""
    neighbours: dict[Dpid, set[Dpid]] = {n: set() for n in nodes}
    for u, v in edges:
        neighbours.setdefault(u, set()).add(v)
        neighbours.setdefault(v, set()).add(u)
    colour: dict[Dpid, int] = {}
    for start in sorted(neighbours):
        if start in colour:
            continue
        colour[start] = 0  # each component's smallest dpid on side 0: deterministic
        stack = [start]
        while stack:
            u = stack.pop()
            for v in neighbours[u]:
                if v not in colour:
                    colour[v] = 1 - colour[u]
                    stack.append(v)
                elif colour[v] == colour[u]:
                    return {}
    return colour


def build_layout(
    known: Iterable[LinkId], *, edges: Iterable[LinkId], switches: Iterable[Dpid]
) -> LinkLayout:
    """A layout of ``known`` links (every link ever seen, up or not).

    ``edges`` are the links of the current switch graph (one per switch pair)
    and ``switches`` its switches: they decide whether the graph is bipartite
    and which switches form each side. Known links between the two sides take
    dense slots; every other known link a slot after the blocks.
    """
    known = sorted(set(known), key=link_order)
    edge_list = list(edges)
    colour = _two_colouring(switches, ((e.src.dpid, e.dst.dpid) for e in edge_list))
    bip: Bipartite | None = None
    dense: dict[LinkId, int] = {}
    if colour:
        sides = (
            tuple(sorted(d for d, c in colour.items() if c == 0)),
            tuple(sorted(d for d, c in colour.items() if c == 1)),
        )
        n0, n1 = len(sides[0]), len(sides[1])
        blocks = 2 * n0 * n1
        if n0 and n1 and blocks <= max(_SMALL_BLOCK, _MAX_SLOTS_PER_LINK * len(edge_list)):
            bip, dense = _dense_blocks(known, sides, edge_list)
    links: list[LinkId | None] = [None] * (2 * bip.block if bip else 0)
    for lid, slot in dense.items():
        links[slot] = lid
    others = [lid for lid in known if lid not in dense]
    links.extend(others)
    index = {lid: slot for slot, lid in enumerate(links) if lid is not None}
    outside = frozenset(d for lid in others for d in (lid.src.dpid, lid.dst.dpid))
    return LinkLayout(links=tuple(links), index=index, bipartite=bip, outside=outside)


def _dense_blocks(
    known: list[LinkId],
    sides: tuple[tuple[Dpid, ...], tuple[Dpid, ...]],
    edges: list[LinkId],
) -> tuple[Bipartite, dict[LinkId, int]]:
    position = {d: (s, i) for s in (0, 1) for i, d in enumerate(sides[s])}
    n0, n1 = len(sides[0]), len(sides[1])
    by_pair: dict[tuple[Dpid, Dpid], list[LinkId]] = {}
    for lid in known:
        a, b = position.get(lid.src.dpid), position.get(lid.dst.dpid)
        if a is not None and b is not None and a[0] != b[0]:
            by_pair.setdefault((lid.src.dpid, lid.dst.dpid), []).append(lid)
    current = {(e.src.dpid, e.dst.dpid): e for e in edges}
    dense: dict[LinkId, int] = {}
    for pair, cables in by_pair.items():
        # Parallel cables: the slot holds the graph's edge (the lowest up cable);
        # any change among them makes the state build a new layout.
        lid = current.get(pair, cables[0])
        (su, iu), (_, iv) = position[pair[0]], position[pair[1]]
        dense[lid] = iu * n1 + iv if su == 0 else n0 * n1 + iv * n1 + iu
    parallel = frozenset(pair for pair, cables in by_pair.items() if len(cables) > 1)
    order: list[np.ndarray] = []
    rank: list[np.ndarray] = []
    for s in (0, 1):
        own, other = sides[s], sides[1 - s]
        ranks = np.full((len(own), len(other)), len(other), dtype=np.int64)
        orders = np.zeros((len(own), len(other)), dtype=np.int64)
        for i, src in enumerate(own):
            firsts = [
                (link_order(first), position[first.dst.dpid][1])
                for dst in other
                if (first := _slot_link(dense, src, dst, by_pair)) is not None
            ]
            firsts.sort()
            placed = [j for _, j in firsts]
            seen = set(placed)
            missing = [j for j in range(len(other)) if j not in seen]
            orders[i] = placed + missing
            ranks[i, orders[i]] = np.arange(len(other))
        order.append(orders)
        rank.append(ranks)
    bip = Bipartite(
        sides=sides,
        position=position,
        order=(order[0], order[1]),
        rank=(rank[0], rank[1]),
        parallel=parallel,
        in_order=tuple(np.all(r == np.arange(r.shape[1]), axis=1) for r in rank),
    )
    return bip, dense


def _slot_link(
    dense: dict[LinkId, int],
    src: Dpid,
    dst: Dpid,
    by_pair: dict[tuple[Dpid, Dpid], list[LinkId]],
) -> LinkId | None:
    cables = by_pair.get((src, dst))
    if not cables:
        return None
    return next((lid for lid in cables if lid in dense), None)
