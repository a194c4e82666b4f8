"""Max-min fair rates on hand-solved cases."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.fluidsim.maxmin import max_min_rates


def solve(
    paths: list[list[int]],
    capacity: list[float],
    *,
    groups: list[int] | None = None,
    caps: list[float] | None = None,
) -> np.ndarray:
    flows = [f for f, links in enumerate(paths) for _ in links]
    links = [link for path in paths for link in path]
    alloc = max_min_rates(
        flow_links=np.array(flows, dtype=np.int64),
        link_of=np.array(links, dtype=np.int64),
        group_of=np.array(groups if groups is not None else range(len(paths)), dtype=np.int64),
        capacity=np.array(capacity, dtype=float),
        group_cap=None if caps is None else np.array(caps, dtype=float),
    )
    assert np.all(alloc.link_load <= np.array(capacity) * (1 + 1e-9))  # feasible
    return alloc.flow_rate


def test_two_flows_split_one_link() -> None:
    assert solve([[0], [0]], [10.0]) == pytest.approx([5.0, 5.0])


def test_a_flow_bottlenecked_elsewhere_leaves_its_share_to_the_others() -> None:
    # f0 on A (10); f1 on A and B (4); f2 on B. B fills first at 2 each, then f0 takes 8.
    assert solve([[0], [0, 1], [1]], [10.0, 4.0]) == pytest.approx([8.0, 2.0, 2.0])


def test_parking_lot_gives_every_flow_half() -> None:
    # One flow crosses three unit links, one short flow per link.
    rates = solve([[0, 1, 2], [0], [1], [2]], [1.0, 1.0, 1.0])
    assert rates == pytest.approx([0.5, 0.5, 0.5, 0.5])


def test_rate_caps_free_capacity_for_others() -> None:
    assert solve([[0], [0]], [10.0], caps=[1.0, np.inf]) == pytest.approx([1.0, 9.0])


def test_a_group_grows_as_one_and_stops_at_its_tightest_link() -> None:
    # Group 0 = flows 0 (link 0, alone) and 1 (link 1, shared with flow 2).
    # Link 1 fills at 5 each: the group stops at 5 on both its flows; link 0
    # keeps 5 spare, which nobody else can use.
    rates = solve([[0], [1], [1]], [10.0, 10.0], groups=[0, 0, 1])
    assert rates == pytest.approx([5.0, 5.0, 5.0])


def test_unequal_capacities_and_three_levels() -> None:
    # f0: link 0 (cap 3) alone with f1; f1 also on link 1 (cap 10) with f2, f3.
    # Level 1: link 0 fills at 1.5 (f0, f1). Then f2, f3 share what is left of
    # link 1: (10 - 1.5) / 2 = 4.25 each.
    rates = solve([[0], [0, 1], [1], [1]], [3.0, 10.0])
    assert rates == pytest.approx([1.5, 1.5, 4.25, 4.25])


def test_a_dead_link_stops_its_flows_at_zero() -> None:
    assert solve([[0], [1]], [0.0, 10.0]) == pytest.approx([0.0, 10.0])


def test_group_caps_must_match_the_groups() -> None:
    with pytest.raises(ValueError):
        solve([[0], [0]], [1.0], caps=[1.0])
