"""Behaviour of the slot-capacitated edge colouring (controller.te.kempe).

Guards what the leaf-spine placement relies on: a colouring never puts more
edges of one colour on a vertex than its slots allow (a blocked slot is never
used, not even by a Kempe chain flip), an edge that finds no colour free at
both ends gets one by moving as few other edges as possible (a short sequence
of moves first, otherwise the shortest Kempe chain), a preferred colour is
kept when it is free or costs no more moves than another, a failed attempt
changes nothing, and malformed inputs are refused with a clear message. The
expected answers are worked out by hand or by brute force over all
colourings of small multigraphs.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from controller.te.kempe import UNCOLOURED, SlotColouring

Edge = tuple[int, int]


def overfull(
    edges: Sequence[Edge],
    colour: Sequence[int],
    slots_left: Sequence[Sequence[int]],
    slots_right: Sequence[Sequence[int]],
) -> list[tuple[str, int, int]]:
    """The (side, vertex, colour) triples holding more edges than their slots."""
    left = Counter((u, c) for (u, _), c in zip(edges, colour, strict=True) if c != UNCOLOURED)
    right = Counter((v, c) for (_, v), c in zip(edges, colour, strict=True) if c != UNCOLOURED)
    bad = [("L", u, c) for (u, c), n in left.items() if n > slots_left[u][c]]
    bad += [("R", v, c) for (v, c), n in right.items() if n > slots_right[v][c]]
    return bad


def uniform(vertices: int, colours: int, slots: int = 1) -> list[list[int]]:
    return [[slots] * colours for _ in range(vertices)]


@dataclass
class Builder:
    """Edges with the colours they start with, on vertices numbered as they appear."""

    edges: list[Edge] = field(default_factory=list)
    colours: list[int] = field(default_factory=list)
    lefts: int = 0
    rights: int = 0

    def left(self) -> int:
        self.lefts += 1
        return self.lefts - 1

    def right(self) -> int:
        self.rights += 1
        return self.rights - 1

    def edge(self, u: int, v: int, c: int) -> int:
        self.edges.append((u, v))
        self.colours.append(c)
        return len(self.edges) - 1

    def path(self, side: str, start: int, length: int, first: int) -> tuple[list[int], int]:
        """An alternating 0/1 path of ``length`` edges from ``start`` on ``side``.

        Returns the edge ids and the far end vertex (on the side the last edge
        reaches there).
        """
        ids = []
        at_left = side == "L"
        vertex, c = start, first
        for _ in range(length):
            if at_left:
                nxt = self.right()
                ids.append(self.edge(vertex, nxt, c))
            else:
                nxt = self.left()
                ids.append(self.edge(nxt, vertex, c))
            at_left, vertex, c = not at_left, nxt, 1 - c
        return ids, vertex

    def colouring(
        self,
        slots_left: Sequence[Sequence[int]],
        slots_right: Sequence[Sequence[int]],
        colours: int,
    ) -> SlotColouring:
        col = SlotColouring(
            self.edges, colours=colours, slots_left=slots_left, slots_right=slots_right
        )
        for e, c in enumerate(self.colours):
            if c != UNCOLOURED:
                assert col.assign(e, c), f"edge {e} cannot start on colour {c}"
        return col


# ---------------------------------------------------------------- construction


def test_refuses_no_colours() -> None:
    with pytest.raises(ValueError, match="at least one colour"):
        SlotColouring([], colours=0, slots_left=[], slots_right=[])


@pytest.mark.parametrize("row", [[], [1], [1, 1, 1]])
def test_refuses_a_slots_row_of_the_wrong_length(row: list[int]) -> None:
    with pytest.raises(ValueError, match=f"has {len(row)} entries, expected 2"):
        SlotColouring([(0, 0)], colours=2, slots_left=[row], slots_right=[[1, 1]])


def test_no_vertices_and_no_edges_is_a_valid_empty_colouring() -> None:
    col = SlotColouring([], colours=3, slots_left=[], slots_right=[])
    assert col.colour == []


# ---------------------------------------------------------------- direct colours


@pytest.mark.parametrize("prefer", [1, 2])
def test_preferred_colour_wins_when_free_at_both_ends(prefer: int) -> None:
    col = SlotColouring([(0, 0)], colours=3, slots_left=uniform(1, 3), slots_right=uniform(1, 3))
    assert col.colour_edge(0, prefer=prefer)
    assert col.colour == [prefer]


def test_disjoint_edges_on_an_empty_fabric_are_spread_over_the_colours() -> None:
    # Three edges with no vertex in common: every colour is free for each, and
    # the module promises to spread such ties instead of filling colour 0.
    edges = [(0, 0), (1, 1), (2, 2)]
    col = SlotColouring(edges, colours=3, slots_left=uniform(3, 3), slots_right=uniform(3, 3))
    for e in range(len(edges)):
        assert col.colour_edge(e)
    assert len(set(col.colour)) > 1


# ---------------------------------------------------------------- short move sequences


def one_move_instance() -> Builder:
    """Edge 3 = (L0, R0) finds no common colour; any colour costs one move.

    L0 holds colours 0 (to R1) and 1 (to R2), R0 holds colour 2 (from L1);
    each holder can move to a colour free at both its ends.
    """
    b = Builder()
    l0, l1 = b.left(), b.left()
    r0, r1, r2 = b.right(), b.right(), b.right()
    b.edge(l0, r1, 0)
    b.edge(l0, r2, 1)
    b.edge(l1, r0, 2)
    b.edge(l0, r0, UNCOLOURED)
    return b


@pytest.mark.parametrize("prefer", [UNCOLOURED, 0, 1, 2])
def test_one_move_makes_room_and_keeps_the_preferred_colour(prefer: int) -> None:
    b = one_move_instance()
    sl, sr = uniform(b.lefts, 3), uniform(b.rights, 3)
    col = b.colouring(sl, sr, 3)
    assert col.colour_edge(3, prefer=prefer) is True
    assert UNCOLOURED not in col.colour
    assert overfull(b.edges, col.colour, sl, sr) == []
    moved = [e for e in range(3) if col.colour[e] != b.colours[e]]
    assert len(moved) == 1
    if prefer != UNCOLOURED:
        assert col.colour[3] == prefer


def min_changes(
    edges: Sequence[Edge],
    before: Sequence[int],
    edge: int,
    colours: int,
    slots_left: Sequence[Sequence[int]],
    slots_right: Sequence[Sequence[int]],
) -> int | None:
    """Brute force: fewest other coloured edges to change so ``edge`` gets a colour."""
    best: int | None = None
    others = [e for e in range(len(edges)) if e != edge and before[e] != UNCOLOURED]
    for choice in itertools.product(range(colours), repeat=len(others) + 1):
        colour = list(before)
        for e, c in zip(others, choice, strict=False):
            colour[e] = c
        colour[edge] = choice[-1]
        if overfull(edges, colour, slots_left, slots_right):
            continue
        changes = sum(1 for e in others if colour[e] != before[e])
        if best is None or changes < best:
            best = changes
    return best


def colourable_instance(
    seed: int,
) -> tuple[np.random.Generator, list[list[int]], list[list[int]], list[Edge]]:
    """Slots 0-2 on 3 + 3 vertices, 3 colours, and up to 8 edges that have a full colouring.

    Each edge is drawn together with a colour that still has a slot at both
    ends, so a colouring of every edge exists (the colours are then forgotten).
    """
    rng = np.random.default_rng(seed)
    sl = rng.choice([0, 1, 1, 2], size=(3, 3)).tolist()
    sr = rng.choice([0, 1, 1, 2], size=(3, 3)).tolist()
    room_l, room_r = [list(r) for r in sl], [list(r) for r in sr]
    edges: list[Edge] = []
    for _ in range(40):
        c = int(rng.integers(3))
        us = [u for u in range(3) if room_l[u][c] > 0]
        vs = [v for v in range(3) if room_r[v][c] > 0]
        if len(edges) == 8 or not us or not vs:
            continue
        u, v = int(rng.choice(us)), int(rng.choice(vs))
        room_l[u][c] -= 1
        room_r[v][c] -= 1
        edges.append((u, v))
    return rng, sl, sr, edges


@pytest.mark.parametrize("seed", range(60))
def test_colour_edge_moves_as_few_edges_as_brute_force(seed: int) -> None:
    """After a random greedy start, each left-over edge is coloured with the fewest moves.

    A failure (allowed with uneven slots) must leave every colour as it was.
    """
    rng, sl, sr, edges = colourable_instance(seed)
    col = SlotColouring(edges, colours=3, slots_left=sl, slots_right=sr)
    for e in rng.permutation(len(edges)).tolist():
        for c in rng.permutation(3).tolist():
            if col.assign(e, int(c)):
                break
    for e in range(len(edges)):
        if col.colour[e] != UNCOLOURED:
            continue
        before = list(col.colour)
        ok = col.colour_edge(e)
        assert overfull(edges, col.colour, sl, sr) == []
        if not ok:
            assert col.colour == before
            continue
        changed = [f for f in range(len(edges)) if f != e and col.colour[f] != before[f]]
        assert len(changed) == min_changes(edges, before, e, 3, sl, sr)
        assert all(before[f] != UNCOLOURED for f in changed)


# ---------------------------------------------------------------- Kempe chains


def two_paths(left_len: int, right_len: int) -> tuple[Builder, list[int], list[int], int, int, int]:
    """Edge (L0, R0) between two alternating 0/1 paths too long to move one by one.

    L0 holds colour 0 (the first edge, id 0, of a path of ``left_len`` edges),
    R0 holds colour 1 (first edge of a path of ``right_len`` edges), so no
    colour is free at both ends and only flipping one whole path helps.
    Returns the builder, both paths' edge ids, their far ends and the edge.
    """
    b = Builder()
    l0, r0 = b.left(), b.right()
    p, p_end = b.path("L", l0, left_len, 0)
    q, q_end = b.path("R", r0, right_len, 1)
    x = b.edge(l0, r0, UNCOLOURED)
    assert p[0] == 0
    return b, p, q, p_end, q_end, x


@pytest.mark.parametrize(("left_len", "right_len"), [(13, 14), (14, 13), (13, 16), (15, 14)])
def test_long_kempe_chain_flips_the_shorter_path_only(left_len: int, right_len: int) -> None:
    b, p, q, _, _, x = two_paths(left_len, right_len)
    sl, sr = uniform(b.lefts, 2), uniform(b.rights, 2)
    col = b.colouring(sl, sr, 2)
    assert col.colour_edge(x) is True
    assert UNCOLOURED not in col.colour
    assert overfull(b.edges, col.colour, sl, sr) == []
    shorter, longer = (p, q) if left_len < right_len else (q, p)
    assert all(col.colour[e] != b.colours[e] for e in shorter)
    assert all(col.colour[e] == b.colours[e] for e in longer)


def test_kempe_chain_ending_on_a_blocked_slot_is_not_flipped() -> None:
    # The left path is shorter, but its last edge would need colour 1 at its far
    # end, whose link for colour 1 is down: only the right path can flip.
    b, p, q, p_end, _, x = two_paths(13, 14)
    sl, sr = uniform(b.lefts, 2), uniform(b.rights, 2)
    last_colour_after_flip = 1 - b.colours[p[-1]]
    assert last_colour_after_flip == 1
    sr[p_end] = [1, 0]  # 13 edges: the path ends on a right vertex
    col = b.colouring(sl, sr, 2)
    assert col.colour_edge(x) is True
    assert UNCOLOURED not in col.colour
    assert overfull(b.edges, col.colour, sl, sr) == []
    assert [col.colour[e] for e in p] == [b.colours[e] for e in p]
    assert all(col.colour[e] != b.colours[e] for e in q)


def test_no_usable_chain_fails_and_changes_nothing() -> None:
    b, p, q, p_end, q_end, x = two_paths(13, 14)
    sl, sr = uniform(b.lefts, 2), uniform(b.rights, 2)
    sr[p_end] = [1, 0]  # the left path's last edge would need colour 1 there
    # The right path's 14th edge (colour 0) would turn 1 at its far (right) end.
    assert b.colours[q[-1]] == 0
    sr[q_end] = [1, 0]
    col = b.colouring(sl, sr, 2)
    before = list(col.colour)
    assert col.colour_edge(x) is False
    assert col.colour == before
    # Nothing was left half-done: the other edges can still be moved as normal.
    col.uncolour(p[0])
    assert col.colour_edge(x) is True
    assert overfull(b.edges, col.colour, sl, sr) == []


def test_the_one_usable_chain_among_many_blocked_ones_is_found() -> None:
    """Ten colours; (L0, R0) has colours 0-4 free only at L0 and 5-9 only at R0.

    Every other neighbour of L0 and R0 may use just the colour it has, so 50
    of the 51 candidate chains end at once on a blocked slot and no short
    sequence of moves helps. The one exception: L0's colour 8 edge starts a
    4/8 path of 13 edges whose far end has room, so flipping it frees 8.
    """
    colours = 10
    only = [[1 if c == k else 0 for c in range(colours)] for k in range(colours)]
    b = Builder()
    sl: list[list[int]] = []
    sr: list[list[int]] = []
    l0, r0 = b.left(), b.right()
    sl.append([1] * colours)
    sr.append([1] * colours)
    for c in range(5):  # R0 holds 0-4 from leaves that can use nothing else
        b.edge(b.left(), r0, c)
        sl.append(only[c])
    four_eight = [1 if k in (4, 8) else 0 for k in range(colours)]
    chain: list[int] = []
    vertex = -1
    for c in range(5, 10):  # L0 holds 5-9 to leaves that can use nothing else
        r = b.right()
        e = b.edge(l0, r, c)
        sr.append(four_eight if c == 8 else only[c])
        if c == 8:  # ... except the one at the start of the 4/8 path
            chain, vertex = [e], r
    at_left, c = False, 4
    for _ in range(12):  # the 4/8 path behind L0's colour 8 edge
        if at_left:
            nxt = b.right()
            sr.append(four_eight)
            chain.append(b.edge(vertex, nxt, c))
        else:
            nxt = b.left()
            sl.append(four_eight)
            chain.append(b.edge(nxt, vertex, c))
        at_left, vertex, c = not at_left, nxt, 4 if c == 8 else 8
    x = b.edge(l0, r0, UNCOLOURED)
    col = b.colouring(sl, sr, colours)
    assert col.colour_edge(x) is True
    assert col.colour[x] == 8
    assert overfull(b.edges, col.colour, sl, sr) == []
    changed = [e for e in range(x) if col.colour[e] != b.colours[e]]
    assert changed == sorted(chain)
    assert len(chain) == 13


def test_assign_refuses_a_coloured_edge_and_a_full_slot() -> None:
    edges = [(0, 0), (0, 1)]
    col = SlotColouring(edges, colours=2, slots_left=[[1, 0]], slots_right=uniform(2, 2))
    assert col.assign(0, 0) is True
    with pytest.raises(ValueError, match="already coloured"):
        col.assign(0, 1)
    assert col.assign(1, 0) is False  # left 0 has one slot for colour 0, now used
    assert col.assign(1, 1) is False  # and none for colour 1
    assert col.colour == [0, UNCOLOURED]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("colours", "slots"), [(2, 1), (3, 1), (3, 2)])
def test_uniform_slots_colour_every_edge_up_to_the_koenig_bound(
    seed: int, colours: int, slots: int
) -> None:
    """No vertex has more than ``slots * colours`` edges: every edge gets a colour."""
    rng = np.random.default_rng(seed)
    n, bound = 5, slots * colours
    degree_left, degree_right = [0] * n, [0] * n
    edges: list[Edge] = []
    for _ in range(400):
        u, v = int(rng.integers(n)), int(rng.integers(n))
        if degree_left[u] < bound and degree_right[v] < bound:
            edges.append((u, v))
            degree_left[u] += 1
            degree_right[v] += 1
    assert max(degree_left) == bound  # the bound is reached, not just respected
    sl, sr = uniform(n, colours, slots), uniform(n, colours, slots)
    col = SlotColouring(edges, colours=colours, slots_left=sl, slots_right=sr)
    for e in range(len(edges)):
        assert col.colour_edge(e) is True
        assert overfull(edges, col.colour, sl, sr) == []
    assert UNCOLOURED not in col.colour
