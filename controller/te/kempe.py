"""Edge colouring of a bipartite multigraph with per-vertex, per-colour slots.

The left vertices are source leaves, the right vertices destination leaves,
an edge is one flow and a colour is a spine: a flow coloured ``c`` uses the
uplink from its source leaf to spine ``c`` and the downlink from spine ``c``
to its destination leaf. ``slots[v][c]`` says how many flows the link
between vertex ``v`` and spine ``c`` may carry (0: no usable link).

Each vertex is split into ``T = max(slots)`` copies, copy ``i`` of ``v``
offering colour ``c`` only when ``i < slots[v][c]``; a colouring in which no
copy holds a colour twice respects every slot count. An edge that finds no
colour free at both ends first looks for a short sequence of single-edge
moves that makes room (each moved edge may take any colour; the shortest is
found by iterative deepening, since every move is a flow changing spine),
and otherwise flips an alternating (Kempe) chain, exactly as in the proof of
Koenig's edge-colouring theorem:
when every copy offers every colour (uniform slots) and no vertex has more
edges than ``T * colours``, every edge gets a colour, so the most loaded link
carries ``ceil(max degree / colours)`` flows. With uneven slots (down links,
background load) a chain may end on a copy that does not offer the colour it
would receive; then other chains are tried and the edge may stay uncoloured,
which the caller answers by raising the slots. Deterministic: choices are
made in a fixed order, never at random. This module knows nothing of
switches, paths or rates.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SlotColouring", "UNCOLOURED"]

UNCOLOURED = -1
_FREE = -1
_BLOCKED = -2
_LEFT, _RIGHT = 0, 1
# A chain choice is (alpha, beta, copy); trying a few keeps a hopeless edge
# cheap while still finding the chains that uneven slots leave open.
_MAX_CHAIN_TRIES = 24
# Move sequences of up to this many other edges are searched (shortest
# first) before a Kempe chain, within this many search steps per depth.
_MAX_REROUTE_DEPTH = 12
_REROUTE_BUDGET = 5000


def _bits(mask: int, start: int, width: int) -> list[int]:
    """The set bits of ``mask``, in rotated order beginning at ``start``."""
    out = []
    for k in range(width):
        c = (start + k) % width
        if (mask >> c) & 1:
            out.append(c)
    return out


class SlotColouring:
    """A colouring in progress. Edges are given once; colours come and go.

    ``slots_left[u][c]`` / ``slots_right[v][c]`` bound the edges of colour
    ``c`` at left vertex ``u`` / right vertex ``v``.
    """

    def __init__(
        self,
        edges: Sequence[tuple[int, int]],
        *,
        colours: int,
        slots_left: Sequence[Sequence[int]],
        slots_right: Sequence[Sequence[int]],
    ) -> None:
        if colours < 1:
            raise ValueError(f"need at least one colour, got {colours}")
        self.colours = colours
        self.left = [u for u, _ in edges]
        self.right = [v for _, v in edges]
        self.colour = [UNCOLOURED] * len(edges)
        self._copy = ([0] * len(edges), [0] * len(edges))
        self._slots = (slots_left, slots_right)
        self._depth = max(
            1, max((max(row, default=0) for s in self._slots for row in s), default=1)
        )
        # occupancy[side][(v * depth + copy) * colours + c]: an edge id, _FREE or _BLOCKED
        self._occ: tuple[list[int], list[int]] = ([], [])
        # free[side][v]: bit c set while some copy of v offers colour c unused
        self._free: tuple[list[int], list[int]] = ([], [])
        self._nfree: tuple[list[list[int]], list[list[int]]] = ([], [])
        for side in (_LEFT, _RIGHT):
            occ = self._occ[side]
            for row in self._slots[side]:
                if len(row) != colours:
                    raise ValueError(f"a slots row has {len(row)} entries, expected {colours}")
                occ.extend(
                    _FREE if i < row[c] else _BLOCKED
                    for i in range(self._depth)
                    for c in range(colours)
                )
                self._free[side].append(sum(1 << c for c in range(colours) if row[c] > 0))
                self._nfree[side].append([max(0, min(n, self._depth)) for n in row])

    # ------------------------------------------------------------------ slots
    def _index(self, v: int, copy: int, c: int) -> int:
        return (v * self._depth + copy) * self.colours + c

    def _free_copy(self, side: int, v: int, c: int) -> int:
        occ = self._occ[side]
        for i in range(self._depth):
            if occ[self._index(v, i, c)] == _FREE:
                return i
        return -1

    def _take(self, side: int, v: int, copy: int, c: int, edge: int) -> None:
        self._occ[side][self._index(v, copy, c)] = edge
        self._copy[side][edge] = copy
        n = self._nfree[side][v]
        n[c] -= 1
        if n[c] == 0:
            self._free[side][v] &= ~(1 << c)

    def _release(self, side: int, v: int, copy: int, c: int) -> None:
        self._occ[side][self._index(v, copy, c)] = _FREE
        n = self._nfree[side][v]
        n[c] += 1
        self._free[side][v] |= 1 << c

    def _set(self, edge: int, c: int, lcopy: int, rcopy: int) -> None:
        self.colour[edge] = c
        self._take(_LEFT, self.left[edge], lcopy, c, edge)
        self._take(_RIGHT, self.right[edge], rcopy, c, edge)

    def uncolour(self, edge: int) -> None:
        c = self.colour[edge]
        if c == UNCOLOURED:
            return
        self._release(_LEFT, self.left[edge], self._copy[_LEFT][edge], c)
        self._release(_RIGHT, self.right[edge], self._copy[_RIGHT][edge], c)
        self.colour[edge] = UNCOLOURED

    def can_use(self, edge: int, c: int) -> bool:
        """Whether both ends have a free copy offering colour ``c`` now."""
        common = self._free[_LEFT][self.left[edge]] & self._free[_RIGHT][self.right[edge]]
        return bool((common >> c) & 1)

    def assign(self, edge: int, c: int) -> bool:
        """Colour ``edge`` with ``c`` if both ends have room; False (nothing changed) if not."""
        if self.colour[edge] != UNCOLOURED:
            raise ValueError(f"edge {edge} is already coloured")
        if not self.can_use(edge, c):
            return False
        u, v = self.left[edge], self.right[edge]
        self._set(edge, c, self._free_copy(_LEFT, u, c), self._free_copy(_RIGHT, v, c))
        return True

    # ------------------------------------------------------------------ colouring
    def colour_edge(self, edge: int, *, prefer: int = UNCOLOURED) -> bool:
        """Colour an uncoloured edge, flipping one Kempe chain if needed.

        ``prefer`` (e.g. the colour the edge had before) wins when it is free
        at both ends. Returns False, with nothing changed, if no colour and no
        tried chain works.
        """
        u, v = self.left[edge], self.right[edge]
        common = self._free[_LEFT][u] & self._free[_RIGHT][v]
        if prefer != UNCOLOURED and (common >> prefer) & 1:
            return self.assign(edge, prefer)
        # Start the search at a colour derived from the vertices, so equally
        # good colours are spread over the spines instead of filling spine 0.
        start = (u * 7 + v * 13) % self.colours
        if common:
            return self.assign(edge, _bits(common, start, self.colours)[0])
        # A few other edges moved beat a long chain of them: look for the
        # shortest sequence of single-edge moves (any colours), deepening.
        for depth in range(1, _MAX_REROUTE_DEPTH + 1):
            budget = [_REROUTE_BUDGET]
            if self._reroute(edge, depth, prefer, frozenset((edge,)), budget):
                return True
        # Free a colour at one end by a chain started there: alpha is free at
        # the other end, beta at this one. Among the chains tried (from both
        # ends: with uneven slots one side may be blocked) the shortest wins,
        # since every edge on it changes spine.
        best: tuple[int, list[int], int, int] | None = None
        ends = ((_RIGHT, v, self._free[_LEFT][u]), (_LEFT, u, self._free[_RIGHT][v]))
        for side, vertex, far_free in ends:
            tries = 0
            for beta in _bits(self._free[side][vertex], start, self.colours):
                for alpha in _bits(far_free, start, self.colours):
                    for copy in self._chain_starts(side, vertex, alpha, beta):
                        if tries >= _MAX_CHAIN_TRIES:
                            break
                        tries += 1
                        chain = self._chain(side, vertex, copy, alpha, beta)
                        if chain is not None and (best is None or len(chain) < len(best[1])):
                            best = (len(chain), chain, alpha, beta)
        if best is None:
            return False
        _, chain, alpha, beta = best
        self._flip(chain, alpha, beta)
        return self.assign(edge, alpha)

    def _reroute(
        self, edge: int, depth: int, prefer: int, path: frozenset[int], budget: list[int]
    ) -> bool:
        """Colour uncoloured ``edge`` by moving at most ``depth`` other edges, one after another.

        ``edge`` takes a colour held at exactly one of its ends; the holder is
        uncoloured and rerouted the same way with one move less. Edges already
        on ``path`` are not moved again. Nothing changes when it fails.
        ``budget`` bounds the search (shared across the recursion).
        """
        u, v = self.left[edge], self.right[edge]
        free_left, free_right = self._free[_LEFT][u], self._free[_RIGHT][v]
        common = free_left & free_right
        if common:  # only below the top call (which has none), where nothing is preferred
            return self.assign(edge, _bits(common, 0, self.colours)[0])
        if depth == 0 or budget[0] <= 0:
            return False
        budget[0] -= 1
        one_end = free_left ^ free_right
        colours = _bits(one_end, (u * 7 + v * 13) % self.colours, self.colours)
        if prefer != UNCOLOURED and prefer in colours:
            colours.remove(prefer)
            colours.insert(0, prefer)
        for c in colours:
            side, vertex = (_RIGHT, v) if (free_left >> c) & 1 else (_LEFT, u)
            occ = self._occ[side]
            holders = [occ[self._index(vertex, i, c)] for i in range(self._depth)]
            for holder in holders:
                if holder < 0 or holder in path:
                    continue
                self.uncolour(holder)
                self.assign(edge, c)
                if self._reroute(holder, depth - 1, UNCOLOURED, path | {holder}, budget):
                    return True
                self.uncolour(edge)
                self.assign(holder, c)
        return False

    def _chain_starts(self, side: int, v: int, alpha: int, beta: int) -> list[int]:
        """Copies of vertex ``v`` on ``side`` holding an alpha edge and a free beta slot."""
        occ = self._occ[side]
        return [
            i
            for i in range(self._depth)
            if occ[self._index(v, i, beta)] == _FREE and occ[self._index(v, i, alpha)] >= 0
        ]

    def _chain(self, start: int, v: int, copy: int, alpha: int, beta: int) -> list[int] | None:
        """The alpha/beta chain from copy ``copy`` of vertex ``v`` on side ``start``.

        The chain leaves (v, copy) on its alpha edge and alternates beta,
        alpha, ... until a copy lacks the next colour. Flipping it frees alpha
        at (v, copy). In a bipartite graph it never enters a copy on the other
        side that has alpha free (those are entered only by alpha edges), so
        the edge being coloured keeps alpha free at its other end. ``copy``
        must hold an alpha edge and a free beta slot (:meth:`_chain_starts`).
        None when the chain's last copy does not offer the colour its last
        edge would get.
        """
        chain: list[int] = []
        side, vertex, at, want, other = start, v, copy, alpha, beta
        while True:
            found = self._occ[side][self._index(vertex, at, want)]
            if found < 0:
                return None if found == _BLOCKED else chain
            chain.append(found)
            if side == _RIGHT:
                side, vertex = _LEFT, self.left[found]
            else:
                side, vertex = _RIGHT, self.right[found]
            at = self._copy[side][found]
            want, other = other, want

    def _flip(self, chain: list[int], alpha: int, beta: int) -> None:
        """Swap alpha and beta on every edge of ``chain``, each keeping its copies."""
        placed = [(e, self.colour[e], self._copy[_LEFT][e], self._copy[_RIGHT][e]) for e in chain]
        for e, _, _, _ in placed:
            self.uncolour(e)
        for e, c, lcopy, rcopy in placed:
            self._set(e, beta if c == alpha else alpha, lcopy, rcopy)
