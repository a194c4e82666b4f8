"""The compiled scoring of the fast path gives the numpy code's answers.

``fastpath.choose`` scores least-utilized and widest columns with
:mod:`controller.routing.kernels` unless per-link deltas adjust the load; with
deltas (even empty ones) the numpy code answers. Both must agree exactly:
column, key and candidate count, on ties, negative recent load, drained and
blocked links, unequal capacities and candidate orders that are not position
order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import GBIT, five_tuple, leaf_spine
from te_workload import shuffled_leaf_spine

from controller.policy.model import Policy, Strategy
from controller.routing import fastpath, kernels
from controller.routing.fabricstate import FabricState
from controller.routing.slotarrays import PairRows

STRATEGIES = (Strategy.LEAST_UTILIZED, Strategy.WIDEST)


def _state(shuffled: bool, spines: int, leaves: int, seed: int) -> FabricState:
    fab = (
        shuffled_leaf_spine(spines, leaves, seed=seed)
        if shuffled
        else leaf_spine(spines, leaves, capacity_bps=10 * GBIT)
    )
    return FabricState.from_view(fab.view())


def _pairs(state: FabricState) -> Iterator[PairRows]:
    """The rows of every pair of switches the fast path answers for."""
    dpids = sorted({lid.src.dpid for lid in state.layout.index})
    for src in dpids:
        for dst in dpids:
            rows = state.rows(src, dst)
            if rows is not None:
                yield rows


@settings(max_examples=150, deadline=None)
@given(
    shuffled=st.booleans(),
    spines=st.integers(2, 6),
    leaves=st.integers(2, 5),
    seed=st.integers(0, 1000),
    data=st.data(),
)
def test_the_kernel_answers_as_the_numpy_code(
    shuffled: bool, spines: int, leaves: int, seed: int, data: st.DataObject
) -> None:
    state = _state(shuffled, spines, leaves, seed)
    links = list(state.layout.index)
    rng = np.random.default_rng(seed)
    # Loads in coarse steps, so that keys and sums tie often; some capacities differ.
    steps = st.integers(0, 4).map(lambda k: k * 2.5 * GBIT)
    state.set_loads({lid: data.draw(steps) for lid in links})
    for lid in links:
        if data.draw(st.integers(0, 9)) == 0:
            state.set_capacity(lid, 40 * GBIT)
        if data.draw(st.integers(0, 14)) == 0:
            state.set_drained(lid, True)
    state.rows(0, 0)  # lays the arrays out after the changes
    recent = np.asarray(
        [data.draw(st.sampled_from([0.0, 0.0, 1.25 * GBIT, -2.5 * GBIT])) for _ in links]
        + [0.0] * (state.layout.size - len(links))
    )
    blocked = rng.random(state.layout.size) < 0.1 if data.draw(st.booleans()) else None
    demand = data.draw(st.sampled_from([0.0, 1.0 * GBIT, 2.5 * GBIT]))
    compared = 0
    for rows in _pairs(state):
        for strategy in STRATEGIES:
            policy = Policy(name="p", priority=1, strategy=strategy)
            args = (strategy, state, rows, five_tuple(1), demand, policy, 1, recent)
            compiled = fastpath.choose(*args, (), blocked)
            numpy_code = fastpath.choose(*args, ({},), blocked)
            assert compiled == numpy_code, (rows.src, rows.dst, strategy)
            compared += 1
    assert compared > 0


def test_ties_go_to_the_lower_sum_then_the_candidate_order() -> None:
    penalised = np.array([1.0, 1.0, 1.0, 3.0, 2.0, 3.0])  # up: 0..2, down: 3..5
    capacity = np.full(6, 4.0)
    zeros = np.zeros(6)
    in_order = np.arange(3)
    # Keys (peak utilization): 0.75, 0.5, 0.75 -> column 1.
    assert kernels.pick(
        penalised, zeros, capacity, slice(0, 3), slice(3, 6), 3, 0.0, False, in_order, True, None
    ) == (1, 0.5, 3)
    # Column 1 blocked: columns 0 and 2 tie on key and sum -> the first by rank.
    blocked = np.array([False, True, False, False, False, False])
    reverse = np.array([2, 1, 0])
    got = kernels.pick(
        penalised, zeros, capacity, slice(0, 3), slice(3, 6), 3, 0.0, False, reverse, False, blocked
    )
    assert got == (2, 0.75, 2)
    got = kernels.pick(
        penalised, zeros, capacity, slice(0, 3), slice(3, 6), 3, 0.0, False, in_order, True, blocked
    )
    assert got == (0, 0.75, 2)
    # Widest: the largest bottleneck residual (column 1: min(3, 2) = 2).
    assert kernels.pick(
        penalised, zeros, capacity, slice(0, 3), slice(3, 6), 3, 0.0, True, in_order, True, None
    ) == (1, -2.0, 3)


def test_no_finite_column_is_no_choice() -> None:
    penalised = np.array([np.inf, 1.0, 1.0, np.inf])
    got = kernels.pick(
        penalised,
        np.zeros(4),
        np.ones(4),
        slice(0, 2),
        slice(2, 4),
        2,
        0.0,
        False,
        np.arange(2),
        True,
        None,
    )
    assert got[0] == -1 and got[2] == 0


def test_strided_rows_read_their_own_slots() -> None:
    # Rows interleaved (step 2): up at slots 0 and 2, down at 1 and 3.
    penalised = np.array([0.0, 3.0, 2.0, 0.0])
    best, top, _ = kernels.pick(
        penalised,
        np.zeros(4),
        np.full(4, 4.0),
        slice(0, 4, 2),
        slice(1, 4, 2),
        2,
        0.0,
        False,
        np.arange(2),
        True,
        None,
    )
    # up (0, 2), down (3, 0): keys 0.75, 0.5. Read with step 1 they would tie at 0.75.
    assert (best, top) == (1, 0.5)


@settings(max_examples=60, deadline=None)
@given(spines=st.integers(2, 6), leaves=st.integers(2, 5), seed=st.integers(0, 1000))
def test_a_delta_on_a_blocked_column_changes_no_answer(spines: int, leaves: int, seed: int) -> None:
    """Why a flow leaving a lost spine is chosen without taking its own load off
    its path (``TrafficEngineer._reroute``): every link of that path is avoided,
    so its column is blocked, and a delta there moves no other column's score."""
    state = _state(True, spines, leaves, seed)
    links = list(state.layout.index)
    rng = np.random.default_rng(seed)
    state.set_loads({lid: float(rng.integers(0, 5)) * 2.5 * GBIT for lid in links})
    state.rows(0, 0)
    recent = np.zeros(state.layout.size)
    compared = 0
    for rows in _pairs(state):
        column = int(rng.integers(0, len(rows.middles)))
        own = fastpath.slots(rows, column)
        blocked = np.zeros(state.layout.size, dtype=bool)
        blocked[list(own)] = True
        delta = {state.layout.links[s]: -7.5 * GBIT for s in own}
        for strategy in STRATEGIES:
            policy = Policy(name="p", priority=1, strategy=strategy)
            args = (strategy, state, rows, five_tuple(1), GBIT, policy, 1, recent)
            without = fastpath.choose(*args, (), blocked)
            assert fastpath.choose(*args, (delta,), blocked) == without
            assert without is None or without[0] != column
            compared += 1
    assert compared > 0
