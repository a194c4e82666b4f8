"""The min-max assignment solvers (controller.te.minmax) on small hand-made instances.

Guards the contract the joint placement relies on: bad input is refused with
a message naming the problem; every item gets one of its options; the
reported peak is the highest utilization over the links the items use; the
MILP's answer equals a brute force over every assignment (least peak, then
fewest moves off previous options); the local search keeps previous options,
places new items largest first on their least loaded option, moves an item
off the bottleneck (directly or after moving one blocker out of its way)
only when that strictly lowers the bottleneck, and reaches the optimum on
instances built so that each of those rules is needed.
"""

from __future__ import annotations

import itertools
import random
import re
import warnings
from collections.abc import Sequence

import numpy as np
import pytest

from controller.te.minmax import (
    AssignmentProblem,
    AssignmentResult,
    local_search,
    solve_assignment,
    solve_milp,
)

Options = Sequence[Sequence[tuple[int, ...]]]


def problem(
    options: Options,
    demand: Sequence[float],
    *,
    capacity: Sequence[float] | None = None,
    background: Sequence[float] | None = None,
    previous: Sequence[int] | None = None,
) -> AssignmentProblem:
    links = 1 + max((e for opts in options for opt in opts for e in opt), default=-1)
    return AssignmentProblem(
        capacity=np.array(capacity if capacity is not None else [1.0] * links, dtype=np.float64),
        background=np.array(
            background if background is not None else [0.0] * links, dtype=np.float64
        ),
        demand=np.array(demand, dtype=np.float64),
        options=options,
        previous=list(previous) if previous is not None else [-1] * len(options),
    )


def peak_of(p: AssignmentProblem, choice: Sequence[int]) -> float:
    """The highest utilization over the links the chosen options use (0 if none)."""
    load: dict[int, float] = {}
    for k, o in enumerate(choice):
        for e in p.options[k][o]:
            load[e] = load.get(e, float(p.background[e])) + float(p.demand[k])
    return max((v / float(p.capacity[e]) for e, v in load.items()), default=0.0)


def moves_of(p: AssignmentProblem, choice: Sequence[int]) -> int:
    return sum(1 for k, o in enumerate(choice) if 0 <= p.previous[k] != o)


def brute_force(p: AssignmentProblem) -> tuple[float, int]:
    """The least peak over every assignment, and the fewest moves at that peak."""
    scored = [
        (peak_of(p, c), moves_of(p, c))
        for c in itertools.product(*(range(len(o)) for o in p.options))
    ]
    best = min(s for s, _ in scored)
    return best, min(m for s, m in scored if s <= best + 1e-12)


def assert_consistent(p: AssignmentProblem, r: AssignmentResult) -> None:
    """One valid option per item, and the reported peak and moves are the choice's."""
    assert len(r.choice) == len(p.options)
    assert all(0 <= o < len(opts) for o, opts in zip(r.choice, p.options, strict=True))
    assert r.max_utilization == pytest.approx(peak_of(p, r.choice), rel=1e-12)
    assert r.moves == moves_of(p, r.choice)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("p", "message"),
    [
        (problem([[(0,)], [(0,)]], [1.0]), "demand and previous need one entry per item"),
        (
            problem([[(0,)], [(0,)]], [1.0, 1.0], previous=[-1]),
            "demand and previous need one entry per item",
        ),
        (problem([[(0,)], []], [1.0, 1.0]), "item 1 has no option"),
        (
            problem([[(0,), (1, 2)]], [1.0], capacity=[1.0, 1.0, 0.0]),
            "item 0 may use link 2, whose capacity is not above 0",
        ),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_the_problem(
    p: AssignmentProblem, message: str
) -> None:
    for solve in (local_search, solve_milp, solve_assignment):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            solve(p)


# ------------------------------------------------------------- results' fields


def test_nothing_to_place_has_no_peak_and_no_moves() -> None:
    p = problem([], [])
    assert local_search(p) == AssignmentResult([], 0.0, 0, "local-search", False)
    assert solve_milp(p) == AssignmentResult([], 0.0, 0, "milp", True)
    assert solve_assignment(p) == AssignmentResult([], 0.0, 0, "milp", True)


def test_a_single_item_with_a_single_option_is_placed_there() -> None:
    p = problem([[(0, 1)]], [3.0], capacity=[10.0, 4.0], background=[1.0, 0.0])
    for r in (local_search(p), solve_milp(p)):
        assert r is not None
        assert r.choice == [0]
        assert r.max_utilization == 0.75  # 3 on the 4 of link 1


def test_the_peak_counts_only_links_the_items_use() -> None:
    # Link 2 is 90% full with someone else's traffic but no option uses it.
    p = problem([[(0,), (1,)]], [0.25], capacity=[1.0, 1.0, 1.0], background=[0.5, 0.0, 0.9])
    for r in (local_search(p), solve_milp(p)):
        assert r is not None
        assert r.choice == [1] and r.max_utilization == 0.25


def test_moves_count_items_that_had_an_option_and_left_it() -> None:
    # Item 0 must leave its previous option 0 (link 0 is nearly full); item 1 is
    # new, wherever it goes; item 2 stays on its previous option 1.
    p = problem(
        [[(0,), (1,)], [(2,), (3,)], [(4,), (5,)]],
        [0.5, 0.5, 0.5],
        background=[0.9, 0.0, 0.0, 0.0, 0.0, 0.0],
        previous=[0, -1, 1],
    )
    assert brute_force(p) == (0.5, 1)
    heuristic, exact = local_search(p), solve_milp(p)
    assert exact is not None
    for r in (heuristic, exact):
        assert_consistent(p, r)
        assert r.choice[0] == 1 and r.choice[2] == 1
        assert (r.max_utilization, r.moves) == (0.5, 1)
    assert (heuristic.method, heuristic.optimal) == ("local-search", False)
    assert (exact.method, exact.optimal) == ("milp", True)


def test_a_previous_index_beyond_the_options_counts_as_no_previous_option() -> None:
    # Item 0's previous option 2 does not exist (its candidates changed): it is
    # placed like a new item, and nothing else is disturbed by it.
    p = problem(
        [[(0,), (1,)], [(2,), (3,)]], [0.5, 0.5], background=[0.3, 0, 0, 0], previous=[2, 1]
    )
    for r in (local_search(p), solve_milp(p), solve_assignment(p)):
        assert r is not None
        assert r.choice == [1, 1]
        assert r.max_utilization == 0.5


# -------------------------------------------------------------- local search


def test_an_item_leaves_the_bottleneck_for_a_strictly_better_option() -> None:
    p = problem([[(0,), (1,)]], [0.5], background=[0.4, 0.1], previous=[0])
    r = local_search(p)
    assert r.choice == [1] and r.max_utilization == 0.6 and r.moves == 1


def test_a_move_is_judged_without_counting_the_item_twice_on_links_it_keeps() -> None:
    # The item's previous option (0, 1) puts link 0 at 100%; option (2, 1) keeps
    # link 1 (90% with the item on it) and takes it off link 0: peak 90%.
    p = problem(
        [[(0, 1), (2, 1)]],
        [5.0],
        capacity=[10.0, 10.0, 10.0],
        background=[5.0, 4.0, 0.0],
        previous=[0],
    )
    assert brute_force(p) == (0.9, 1)
    r = local_search(p)
    assert r.choice == [1] and r.max_utilization == 0.9


def test_previous_options_are_kept_when_moving_would_not_lower_the_peak() -> None:
    # The shared link 2 sets the peak either way; option 1 is a little emptier
    # elsewhere, which a new item would prefer but is no reason to move.
    p = problem(
        [[(0, 2), (1, 2)], [(2,)]],
        [0.25, 0.5],
        background=[0.25, 0.0, 0.0],
        previous=[0, 0],
    )
    assert brute_force(p) == (0.75, 0)
    r = local_search(p)
    assert r.choice == [0, 0] and r.moves == 0 and r.max_utilization == 0.75


def test_rounding_noise_is_no_reason_to_move() -> None:
    # 0.1 + 0.2 and 0.3 differ only in the last bit: the item stays.
    p = problem([[(0,), (1,)]], [0.5], background=[0.1 + 0.2, 0.3], previous=[0])
    r = local_search(p)
    assert r.choice == [0] and r.moves == 0


def test_a_new_item_takes_the_option_with_the_lowest_utilization() -> None:
    # Item 0 alone sets the peak on link 0 and cannot move. Item 1 (5 units)
    # would fill 50% of link 1 (capacity 10) or 5% of link 2 (capacity 100).
    p = problem(
        [[(0,)], [(1,), (2,)]],
        [9.0, 5.0],
        capacity=[10.0, 10.0, 100.0],
    )
    r = local_search(p)
    assert r.choice == [0, 1]
    assert r.max_utilization == 0.9


def test_a_new_item_with_equal_options_takes_the_first() -> None:
    p = problem([[(0,), (1,)], [(2,), (3,)]], [0.5, 0.25])
    assert local_search(p).choice == [0, 0]


def test_the_larger_item_leaves_the_bottleneck_when_either_would_do() -> None:
    # Link 0: 4 of background, item 0 (2) and item 1 (4): 100%. Item 0 on link 1
    # or item 1 on link 2 would both reach 60%; only moving item 1 also brings
    # link 0 down to 60% in one move (moving item 0 leaves it at 80%).
    p = problem(
        [[(0,), (1,)], [(0,), (2,)]],
        [2.0, 4.0],
        capacity=[10.0, 10.0, 10.0],
        background=[4.0, 4.0, 2.0],
        previous=[0, 0],
    )
    assert brute_force(p) == (0.6, 1)
    r = local_search(p)
    assert r.choice == [0, 1]
    assert (r.max_utilization, r.moves) == (0.6, 1)


def test_bottlenecks_are_relieved_one_after_another() -> None:
    # Links 0 and 1 are both at 100%. Item 0 leaves link 0 for (4, 5); then
    # link 0 has room for item 1 off link 1. Relieving link 1 first cannot work:
    # item 1 can only go where item 0 still is, and item 0's detour shares
    # link 5 with item 1's, so no swap either.
    p = problem(
        [[(0,), (4, 5)], [(1,), (0, 5)]],
        [0.6, 0.5],
        capacity=[1.0, 1.0, 1.0, 1.0, 1.0, 2.0],
        background=[0.4, 0.5, 0.0, 0.0, 0.0, 0.0],
        previous=[0, 0],
    )
    best, _ = brute_force(p)
    assert best == pytest.approx(0.9)
    r = local_search(p)
    assert r.choice == [1, 1]
    assert r.max_utilization == pytest.approx(best)


def test_a_blocker_makes_room_for_an_item_leaving_the_bottleneck() -> None:
    # Item 0 (5) must leave link 0 (100%). Its other option (3, 1) is blocked only
    # by link 1, where item 1 (5) sits at 80%; item 1 can go to link 2 (90%).
    # Neither single move lowers the peak; the swap reaches the optimum, 90%.
    p = problem(
        [[(0,), (3, 1)], [(1,), (2,)]],
        [5.0, 5.0],
        capacity=[10.0, 10.0, 10.0, 10.0],
        background=[5.0, 3.0, 4.0, 0.0],
        previous=[0, 0],
    )
    assert brute_force(p) == (0.9, 2)
    r = local_search(p)
    assert r.choice == [1, 1]
    assert (r.max_utilization, r.moves) == (0.9, 2)


def test_a_swap_looks_past_options_through_the_bottleneck_or_blocked_twice() -> None:
    # Item 0's options in order: its own (0,), one blocked on two links (4, 5),
    # one that also crosses the bottleneck (6, 0), and (3, 1), blocked only by
    # item 1, which can step aside to link 2.
    p = problem(
        [[(0,), (4, 5), (6, 0), (3, 1)], [(1,), (2,)]],
        [5.0, 5.0],
        capacity=[10.0] * 7,
        background=[5.0, 3.0, 4.0, 0.0, 9.0, 9.0, 0.0],
        previous=[0, 0],
    )
    assert brute_force(p) == (0.9, 2)
    r = local_search(p)
    assert r.choice == [3, 1]
    assert (r.max_utilization, r.moves) == (0.9, 2)


def test_a_blocker_whose_leaving_would_not_make_room_is_not_moved() -> None:
    # Link 1 holds items 1 and 2 (1 each) over 8 of background: taking either one
    # away still leaves no room for item 0 (5), so nothing moves.
    p = problem(
        [[(0,), (1,)], [(1,), (2,)], [(1,), (3,)]],
        [5.0, 1.0, 1.0],
        capacity=[10.0] * 4,
        background=[5.0, 8.0, 0.0, 0.0],
        previous=[0, 0, 0],
    )
    r = local_search(p)
    assert r.choice == [0, 0, 0] and r.moves == 0
    assert r.max_utilization == 1.0


def test_new_items_go_in_largest_first() -> None:
    # Item 1 (5) placed first takes (0, 2) at 60%, leaving (2, 3) to item 0 (3) at
    # 80%. Placed the other way round, item 0 takes link 0 (40%) and item 1 is
    # left with 90% either way.
    p = problem(
        [[(2, 3), (0,)], [(0, 2), (3,)]],
        [3.0, 5.0],
        capacity=[10.0] * 4,
        background=[1.0, 0.0, 0.0, 4.0],
    )
    assert brute_force(p) == (0.8, 0)
    r = local_search(p)
    assert r.choice == [0, 0] and r.max_utilization == 0.8


def test_an_item_moved_twice_starts_its_second_move_from_where_it_went() -> None:
    # Item 1 first leaves the bottleneck link 1 for link 2; later links 0 and 2
    # are shared differently, and item 1 goes back to (0, 1): the search must
    # no longer count it on link 2 by then.
    p = problem(
        [[(0, 2), (1, 3)], [(2,), (0, 1)]],
        [5.0, 1.0],
        capacity=[10.0] * 5,
        background=[0.0, 4.0, 1.0, 4.0, 4.0],
        previous=[1, 1],
    )
    assert brute_force(p) == (0.6, 1)
    r = local_search(p)
    assert r.choice == [0, 1]
    assert (r.max_utilization, r.moves) == (0.6, 1)


def test_a_swap_that_would_share_a_link_is_not_made() -> None:
    # Item 0 (link 1, 40%) could take (0, 2) if item 1 left link 0, but item 1's
    # other free option is link 2, which item 0 would then share: 40% again,
    # one more move for nothing.
    p = problem(
        [[(0, 2), (1,)], [(0,), (3,), (2,)]],
        [3.0, 1.0],
        capacity=[10.0] * 4,
        background=[0.0, 1.0, 0.0, 4.0],
        previous=[1, 1],
    )
    assert brute_force(p) == (0.4, 1)
    r = local_search(p)
    assert r.choice == [1, 0]
    assert (r.max_utilization, r.moves) == (0.4, 1)


def test_the_search_goes_on_after_a_swap() -> None:
    # The swap of the test above, then item 2 (95% on link 7) still has an
    # empty link 8 to go to.
    p = problem(
        [[(0,), (3, 1)], [(1,), (2,)], [(7,), (8,)]],
        [5.0, 5.0, 5.0],
        capacity=[10.0] * 9,
        background=[5.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 4.5, 0.0],
        previous=[0, 0, 0],
    )
    assert brute_force(p) == (0.9, 3)
    r = local_search(p)
    assert r.choice == [1, 1, 1]
    assert (r.max_utilization, r.moves) == (0.9, 3)


def test_a_swap_never_moves_an_item_onto_another_option_through_the_bottleneck() -> None:
    # Item 0's option (6, 0) keeps it on link 0; making room on link 6 (item 2
    # stepping aside to link 7) would be a wasted move. (3, 1), after item 1
    # steps aside, is the answer.
    p = problem(
        [[(0,), (6, 0), (3, 1)], [(1,), (2,)], [(6,), (7,)]],
        [5.0, 5.0, 5.0],
        capacity=[10.0] * 8,
        background=[5.0, 3.0, 4.0, 0.0, 0.0, 0.0, 3.0, 4.0],
        previous=[0, 0, 0],
    )
    assert brute_force(p) == (0.9, 2)
    r = local_search(p)
    assert r.choice == [2, 1, 0]
    assert (r.max_utilization, r.moves) == (0.9, 2)


def test_local_search_never_ends_above_the_previous_placements_peak() -> None:
    rng = random.Random(7)
    for _ in range(40):
        p = random_problem(rng, with_previous=True)
        r = local_search(p)
        assert_consistent(p, r)
        assert r.max_utilization <= peak_of(p, p.previous) + 1e-12


# -------------------------------------------------------------------- MILP


def random_problem(
    rng: random.Random, *, with_previous: bool, loaded: bool = True
) -> AssignmentProblem:
    links = rng.randint(3, 6)
    items = rng.randint(1, 4)
    options = [
        [
            tuple(sorted(rng.sample(range(links), rng.randint(1, 2))))
            for _ in range(rng.randint(1, 3))
        ]
        for _ in range(items)
    ]
    return problem(
        options,
        [rng.choice([1.0, 2.0, 3.0, 5.0]) for _ in range(items)],
        capacity=[rng.choice([5.0, 10.0, 20.0]) for _ in range(links)],
        background=[rng.choice([0.0, 1.0, 4.0]) if loaded else 0.0 for _ in range(links)],
        previous=[rng.randrange(len(o)) if with_previous else -1 for o in options],
    )


def test_the_milp_finds_the_least_peak_and_then_the_fewest_moves() -> None:
    rng = random.Random(11)
    for _ in range(30):
        p = random_problem(rng, with_previous=rng.random() < 0.7, loaded=False)
        r = solve_milp(p)
        assert r is not None and r.optimal
        assert_consistent(p, r)
        best, moves = brute_force(p)
        assert r.max_utilization == pytest.approx(best, rel=1e-9)
        assert r.moves == moves


def test_with_background_the_milp_and_the_assignment_find_the_brute_force_optimum() -> None:
    # Backgrounds up to 80 % of a link: often a link no item needs to use is
    # busier than the least peak, which must not bound the answer.
    rng = random.Random(13)
    for _ in range(60):
        p = random_problem(rng, with_previous=rng.random() < 0.7)
        best, moves = brute_force(p)
        for r in (solve_milp(p), solve_assignment(p)):
            assert r is not None and r.method == "milp" and r.optimal
            assert_consistent(p, r)
            assert r.max_utilization == pytest.approx(best, rel=1e-9)
            assert r.moves == moves


def test_background_on_a_link_no_item_uses_does_not_hold_the_milp_back() -> None:
    # Link 0 is 80% full, but item 0 can avoid it. Items 1 and 2 then share
    # link 1 at 60% unless one moves to link 2: the least peak is 30%, not 80%.
    p = problem(
        [[(0,), (3,)], [(1,), (2,)], [(1,), (2,)]],
        [0.1, 0.3, 0.3],
        background=[0.8, 0.0, 0.0, 0.0],
        previous=[-1, 0, 0],
    )
    best, moves = brute_force(p)
    assert best == pytest.approx(0.3) and moves == 1
    for r in (solve_milp(p), solve_assignment(p)):
        assert r is not None and r.method == "milp"
        assert r.choice[0] == 1 and sorted(r.choice[1:]) == [0, 1]
        assert r.max_utilization == pytest.approx(0.3) and r.moves == 1


def test_the_milp_keeps_previous_options_at_a_tiny_utilization() -> None:
    # 1 bit/s on 1 Gbit/s links: the least peak is 1e-9, and keeping the previous
    # options costs nothing.
    p = problem(
        [[(0,), (1,)], [(0,), (1,)]],
        [1.0, 1.0],
        capacity=[1e9, 1e9],
        previous=[1, 0],
    )
    r = solve_milp(p)
    assert r is not None
    assert r.choice == [1, 0] and r.moves == 0 and r.max_utilization == 1e-9


def test_the_solver_is_given_only_options_it_understands() -> None:
    p = problem([[(0,), (1,)], [(0,), (1,)]], [0.5, 0.5], previous=[0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = solve_milp(p)
    assert r is not None and r.moves == 1


def hard_problem() -> AssignmentProblem:
    """Forty items, four 3-link options each, on twelve links: HiGHS needs far
    more than a few milliseconds to prove its optimum."""
    rng = np.random.default_rng(3)
    options = [
        [tuple(sorted(rng.choice(12, 3, replace=False).tolist())) for _ in range(4)]
        for _ in range(40)
    ]
    return AssignmentProblem(
        capacity=np.ones(12),
        background=np.zeros(12),
        demand=rng.uniform(0.1, 1.0, 40),
        options=options,
        previous=[-1] * 40,
    )


def test_an_unproven_milp_answer_is_not_used() -> None:
    p = hard_problem()
    assert solve_milp(p, time_limit_s=0.02) is None
    r = solve_assignment(p, milp_time_limit_s=0.02)
    assert r.method == "local-search" and not r.optimal
    assert_consistent(p, r)


# --------------------------------------------------------- solve_assignment


def test_the_milp_is_tried_up_to_its_size_limit() -> None:
    p = problem([[(0,), (1,)], [(0,), (1,)], [(2,)]], [0.5, 0.5, 0.5])  # 5 binaries
    assert solve_assignment(p, milp_max_variables=5).method == "milp"
    assert solve_assignment(p, milp_max_variables=4).method == "local-search"


def test_the_answer_is_at_least_as_good_as_the_local_search() -> None:
    rng = random.Random(5)
    for _ in range(20):
        p = random_problem(rng, with_previous=True, loaded=False)
        heuristic, best = local_search(p), solve_assignment(p)
        assert best.optimal
        assert best.max_utilization <= heuristic.max_utilization + 1e-9
        assert best.max_utilization == pytest.approx(brute_force(p)[0], rel=1e-9)
