"""Behaviour of the 2-tier leaf-spine placement helpers (controller.te.leafspine).

Guards the arithmetic the level search rests on (how many flows a link has
room for at a utilization level, the least level that gives a leaf room for
its flows, the next level at which any link gains room), how placements are
judged (peak utilization, then moves), that the colouring keeps raising the
level until every flow has a spine, keeps previous spines where it can, and
that the general search re-places the flows it is given without counting
them twice. Expected values are worked out by hand or by brute force over
every placement of a few flows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from controller.te.leafspine import (
    NO_SPINE,
    LeafSpineProblem,
    _colour_at_levels,
    _general,
    _max_utilization,
    _next_level,
    _score,
    _slots,
    _water_level,
    solve_leaf_spine,
)

Flow = tuple[int, int]
Grid = Sequence[Sequence[float]] | npt.NDArray[np.float64]


def arr(rows: Grid) -> npt.NDArray[np.float64]:
    return np.asarray(rows, dtype=np.float64)


def ints(values: Sequence[int]) -> npt.NDArray[np.int64]:
    return np.asarray(values, dtype=np.int64)


def problem(
    up: Grid,
    flows: Sequence[Flow],
    *,
    down: Grid | None = None,
    up_bg: Grid | None = None,
    down_bg: Grid | None = None,
    demand: float = 1.0,
    previous: Sequence[int] | None = None,
) -> LeafSpineProblem:
    up_a = arr(up)
    zeros = np.zeros_like(up_a)
    return LeafSpineProblem(
        up_capacity=up_a,
        down_capacity=up_a.copy() if down is None else arr(down),
        up_background=zeros.copy() if up_bg is None else arr(up_bg),
        down_background=zeros.copy() if down_bg is None else arr(down_bg),
        src=ints([a for a, _ in flows]),
        dst=ints([b for _, b in flows]),
        demand=np.full(len(flows), demand),
        previous=ints([NO_SPINE] * len(flows) if previous is None else previous),
    )


def common(p: LeafSpineProblem) -> npt.NDArray[np.bool_]:
    return (p.up_capacity[p.src] > 0) & (p.down_capacity[p.dst] > 0)


def peak(p: LeafSpineProblem, spine: Sequence[int]) -> float:
    """Highest link utilization of a placement, counted link by link."""
    up = p.up_background.copy()
    down = p.down_background.copy()
    for k, s in enumerate(spine):
        if s >= 0:
            up[p.src[k], s] += p.demand[k]
            down[p.dst[k], s] += p.demand[k]
    used = [(up[p.src[k], s], p.up_capacity[p.src[k], s]) for k, s in enumerate(spine) if s >= 0]
    used += [
        (down[p.dst[k], s], p.down_capacity[p.dst[k], s]) for k, s in enumerate(spine) if s >= 0
    ]
    return max((load / cap for load, cap in used), default=0.0)


def best_placements(p: LeafSpineProblem) -> tuple[float, int]:
    """Brute force: the least peak, and the fewest moves among placements reaching it."""
    c = common(p)
    options = [np.flatnonzero(c[k]).tolist() for k in range(len(p.src))]
    scored = []
    for spine in itertools.product(*options):
        moves = sum(1 for k, s in enumerate(spine) if 0 <= p.previous[k] != s)
        scored.append((round(peak(p, spine), 9), moves))
    return min(scored)


# ---------------------------------------------------------------- room per link


def test_slots_are_whole_flows_above_the_background() -> None:
    cap = arr([[10.0, 0.0, 10.0, 10.0]])
    bg = arr([[4.0, 0.0, 9.0, 0.0]])
    # Level 0.8: 8 - 4 = 4 flows; a missing link none; 8 - 9 < 0: none; 8 flows.
    assert _slots(cap, bg, 0.8, 1.0) == [[4, 0, 0, 8]]
    # Flows of rate 2 fit half as often (floor): 2, 0, 0, 4.
    assert _slots(cap, bg, 0.8, 2.0) == [[2, 0, 0, 4]]
    # Level 0.5 with background 9 on a 10 link: 5 - 9 < 0, still no room.
    assert _slots(cap, bg, 0.5, 1.0) == [[1, 0, 0, 5]]


def least_level_by_scan(cap: Sequence[float], bg: Sequence[float], need: int, rate: float) -> float:
    """The least level giving ``need`` flows: one of the levels where a link gains a flow."""
    if need == 0:
        return 0.0
    candidates = sorted(
        (b + k * rate) / c
        for c, b in zip(cap, bg, strict=True)
        if c > 0
        for k in range(1, need + 1)
    )
    for u in candidates:
        room = sum(
            math.floor(max(u * c - b, 0.0) / rate + 1e-9)
            for c, b in zip(cap, bg, strict=True)
            if c > 0
        )
        if room >= need:
            return u
    raise AssertionError("no level is enough")


@pytest.mark.parametrize(
    ("cap", "bg", "need", "rate", "expected"),
    [
        ([10.0, 10.0], [0.0, 0.0], 5, 1.0, 0.3),  # 3 + 3 >= 5, 2 + 2 < 5
        ([10.0, 0.0], [0.0, 0.0], 3, 1.0, 0.3),  # a missing link carries nothing
        ([10.0], [4.0], 2, 1.0, 0.6),  # room starts above the background
        ([10.0], [0.0], 1, 1.0, 0.1),
        ([10.0, 20.0], [0.0, 0.0], 3, 2.0, 0.2),  # 0.2: 1 + 2 flows of 2
        ([10.0, 10.0], [0.0, 0.0], 0, 1.0, 0.0),  # no flows need no level
    ],
)
def test_water_level_by_hand(
    cap: list[float], bg: list[float], need: int, rate: float, expected: float
) -> None:
    level = _water_level(arr([cap]), arr([bg]), ints([need]), rate)
    assert level.shape == (1,)
    assert level[0] == pytest.approx(expected, abs=1e-9)
    assert least_level_by_scan(cap, bg, need, rate) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e9])
def test_water_level_rows_at_once_and_independent_of_units(scale: float) -> None:
    """The level is a ratio: the same in bits/s or Tbit/s; each row on its own."""
    rng = np.random.default_rng(7)
    cap = rng.choice([0.0, 4.0, 10.0, 25.0], size=(6, 4))
    cap[:, 0] = 10.0
    bg = np.where(cap > 0, rng.choice([0.0, 1.0, 3.5], size=cap.shape), 0.0)
    need = rng.integers(0, 9, size=6)
    levels = _water_level(cap * scale, bg * scale, need, 1.5 * scale)
    for row in range(6):
        want = least_level_by_scan(cap[row].tolist(), bg[row].tolist(), int(need[row]), 1.5)
        assert levels[row] == pytest.approx(want, rel=1e-7, abs=1e-12)


# ---------------------------------------------------------------- next level


def two_by_two(
    up: Sequence[Sequence[float]], bg: Sequence[Sequence[float]] | None = None
) -> LeafSpineProblem:
    """Two leaves and two spines, every down link like the up link beside it."""
    return problem(up, [(0, 1)], up_bg=bg, down_bg=bg)


@pytest.mark.parametrize(
    ("up", "bg", "level", "rate", "expected"),
    [
        # 10-link holds 3 at 0.3 (4th at 0.4), 20-link holds 6 (7th at 0.35).
        ([[10.0, 20.0], [10.0, 20.0]], None, 0.3, 1.0, 0.35),
        # From zero, the first flow fits the 20-link at 1/20.
        ([[10.0, 20.0], [10.0, 20.0]], None, 0.0, 1.0, 0.05),
        # Exactly at a step (5 and 10 flows): the next one, not the same level.
        ([[10.0, 20.0], [10.0, 20.0]], None, 0.5, 1.0, 0.55),
        # Rate 2 at 0.5: 2 and 5 flows; the next fit at 6/10 and 12/20.
        ([[10.0, 20.0], [10.0, 20.0]], None, 0.5, 2.0, 0.6),
        # Background 4 on the 10-link: at 0.5 room 1, the next at (4 + 2) / 10;
        # the 20-link (background 9) has room 1 at 0.5, the next at 11/20.
        ([[10.0, 20.0], [10.0, 20.0]], [[4.0, 9.0], [4.0, 9.0]], 0.5, 1.0, 0.55),
        ([[10.0, 20.0], [10.0, 20.0]], [[4.0, 12.0], [4.0, 12.0]], 0.5, 1.0, 0.6),
        # A missing link never gains room.
        ([[10.0, 0.0], [10.0, 0.0]], None, 0.3, 1.0, 0.4),
    ],
)
def test_next_level_by_hand(
    up: list[list[float]],
    bg: list[list[float]] | None,
    level: float,
    rate: float,
    expected: float,
) -> None:
    assert _next_level(two_by_two(up, bg), level, rate) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e9])
@pytest.mark.parametrize("level", [0.0, 0.13, 0.5, 0.91])
def test_next_level_is_where_some_link_first_gains_room(scale: float, level: float) -> None:
    rng = np.random.default_rng(3)
    up = rng.choice([0.0, 3.0, 10.0, 40.0], size=(3, 4)) * scale
    down = rng.choice([0.0, 7.0, 10.0], size=(3, 4)) * scale
    up_bg = np.where(up > 0, rng.choice([0.0, 2.0, 5.0], size=up.shape) * scale, 0.0)
    down_bg = np.where(down > 0, rng.choice([0.0, 1.0], size=down.shape) * scale, 0.0)
    p = problem(up, [(0, 1)], down=down, up_bg=up_bg, down_bg=down_bg)
    rate = 1.5 * scale

    def room(u: float) -> tuple[list[list[int]], list[list[int]]]:
        return _slots(up, up_bg, u, rate), _slots(down, down_bg, u, rate)

    nxt = _next_level(p, level, rate)
    assert level < nxt < math.inf
    assert room(nxt) != room(level)
    for f in (0.001, 0.25, 0.5, 0.75, 0.999):
        assert room(level + f * (nxt - level)) == room(level)


# ---------------------------------------------------------------- judging placements


def test_score_is_peak_utilization_then_moves() -> None:
    # Three leaves, three spines of 10; flows of 3.
    flows = [(0, 1), (0, 2), (1, 2), (1, 0), (2, 0), (2, 1)]
    previous = [0, 1, NO_SPINE, 2, 0, 1]
    spine = [0, 2, 1, NO_SPINE, 1, 0]
    # kept, moved, new (no move), dropped (no move), moved off 0, moved onto 0.
    p = problem([[10.0] * 3] * 3, flows, demand=3.0, previous=previous)
    # Leaf 1's down link from spine 0 carries (0,1) and (2,1): 6 / 10.
    assert _score(p, ints(spine)) == (0.6, 3)
    # The previous placement has one flow per link (the new flow not counted).
    assert _score(p, ints(previous)) == (0.3, 0)
    assert _score(p, ints([NO_SPINE] * 6)) == (0.0, 0)


# ---------------------------------------------------------------- colouring at levels


def test_colouring_raises_the_level_until_every_flow_has_a_spine() -> None:
    """Leaves 0 and 2 reach only spine 0, both send to leaf 1.

    Leaf 1 could spread two flows over two spines (lower bound 1/10), but
    both must come down spine 0, so only level 2/10 places them.
    """
    p = problem([[10.0, 0.0], [10.0, 10.0], [10.0, 0.0]], [(0, 1), (2, 1)])
    flows = ints([0, 1])
    spine, missing = _colour_at_levels(p, flows, 1.0, 0.1)
    assert missing.tolist() == []
    assert spine.tolist() == [0, 0]
    assert best_placements(p) == (0.2, 0)
    sol = solve_leaf_spine(p)
    assert sol.method == "colouring"
    assert sol.max_utilization == pytest.approx(0.2)


def test_resolve_keeps_a_previous_spine_when_moving_another_flow_is_as_cheap() -> None:
    """Leaf 0 sends three flows over three spines; two were both on spine 1.

    One of them must move. Moving the other flow on leaf 0 (off spine 1) costs
    one move; the brute force agrees that one move is the least any optimal
    placement needs, and the flow that kept its spine is the one that asked.
    """
    flows = [(0, 1), (0, 2), (0, 3), (4, 3)]
    previous = [0, 1, 1, 2]
    p = problem([[10.0] * 3] * 5, flows, previous=previous)
    best_peak, best_moves = best_placements(p)
    assert (best_peak, best_moves) == (0.1, 1)
    sol = solve_leaf_spine(p)
    assert sol.max_utilization == pytest.approx(best_peak)
    assert int(sol.moved.sum()) == best_moves
    assert _score(p, sol.spine) == (best_peak, best_moves)


# ---------------------------------------------------------------- general search


def test_general_does_not_count_the_flows_it_places_as_background() -> None:
    # Both flows sit on spine 0 in ``fixed``; re-placing them must see that
    # spine empty, not already carrying them, and spread them.
    p = problem([[10.0, 10.0], [10.0, 10.0]], [(0, 1), (0, 1)])
    out, _ = _general(p, ints([0, 1]), ints([0, 0]), common(p))
    assert sorted(out.tolist()) == [0, 1]
    assert _max_utilization(p, out) == pytest.approx(best_placements(p)[0])


def test_general_places_only_the_given_flows_around_the_fixed_ones() -> None:
    p = problem([[10.0, 10.0], [10.0, 10.0]], [(0, 1), (0, 1), (1, 0)])
    out, _ = _general(p, ints([1]), ints([0, NO_SPINE, 1]), common(p))
    assert out.tolist() == [0, 1, 1]


@pytest.mark.parametrize(("fixed", "previous"), [(0, 1), (1, 0)])
def test_general_keeps_a_flow_where_fixed_puts_it_when_nothing_is_better(
    fixed: int, previous: int
) -> None:
    """``fixed`` is where the flow is now; staying there is no move, so it wins a tie."""
    p = problem([[10.0, 10.0], [10.0, 10.0]], [(0, 1)], previous=[previous])
    out, _ = _general(p, ints([0]), ints([fixed]), common(p))
    assert out.tolist() == [fixed]


def test_the_solver_refuses_ragged_inputs_and_flows_without_demand() -> None:
    good = problem([[1.0, 1.0], [1.0, 1.0]], [(0, 1)])
    ragged = replace(good, dst=ints([1, 0]))
    with pytest.raises(ValueError, match=r"^src, dst, demand and previous must have one entry"):
        solve_leaf_spine(ragged)
    with pytest.raises(ValueError, match=r"^every flow needs a demand above 0$"):
        solve_leaf_spine(problem([[1.0, 1.0], [1.0, 1.0]], [(0, 1)], demand=0.0))


def test_a_flow_moved_onto_spine_zero_counts_as_moved() -> None:
    # Spine 1 lost leaf 1's uplink: the flow that was there can only take spine 0.
    sol = solve_leaf_spine(problem([[1.0, 1.0], [1.0, 0.0]], [(1, 0)], previous=[1]))
    assert sol.spine.tolist() == [0]
    assert sol.moved.tolist() == [True]


def test_flows_inside_one_leaf_need_no_spine_and_bound_nothing() -> None:
    sol = solve_leaf_spine(problem([[1.0, 1.0], [1.0, 1.0]], [(0, 0), (1, 1)]))
    assert sol.spine.tolist() == [NO_SPINE, NO_SPINE]
    assert sol.lower_bound == 0.0 and sol.max_utilization == 0.0
    assert not sol.moved.any() and not sol.unplaced.any()
