"""The rebalancing schedule: periodic rounds, and retries booked while congestion waits."""

from __future__ import annotations

import pytest
from synthetic import leaf_spine
from test_rebalance_behaviour import policy, put

from controller.engine.rounds import LAG_POLLS, RoundSchedule, releases
from controller.te.engineer import TrafficEngineer

PERIOD = 2.0


def started(at: float = 10.0, *, gap: float = 0.5) -> RoundSchedule:
    s = RoundSchedule(gap=gap)
    assert s.due(at, PERIOD) == "periodic"
    return s


def test_the_first_tick_runs_a_round_then_one_per_period() -> None:
    s = started(10.0)
    assert s.due(11.9, PERIOD) is None
    assert s.due(12.0, PERIOD) == "periodic"
    assert s.next_at == 14.0


def test_a_retry_comes_when_the_last_held_flow_may_move() -> None:
    s = started(10.0)
    assert s.retry([10.7, 11.2, 10.9]) == 11.2  # one round sees them all
    assert s.due(11.1, PERIOD) is None
    assert s.due(11.2, PERIOD) == "retry"
    assert s.due(11.3, PERIOD) is None  # a retry runs once
    assert s.next_at == 12.0  # and leaves the periodic round where it was


def test_a_retry_keeps_a_poll_interval_from_the_last_round() -> None:
    s = started(10.0, gap=0.5)
    assert s.retry([10.1]) == 10.5
    assert s.due(10.5, PERIOD) == "retry"
    assert s.retry([10.6]) == pytest.approx(11.0)  # a poll after the retry itself


def test_a_lagging_planner_is_retried_once_the_next_poll_answered() -> None:
    s = started(10.0, gap=0.5)
    assert s.retry([], lag_from=10.2) == pytest.approx(10.2 + LAG_POLLS * 0.5)
    # Held flows released later than that win.
    s.retry_at = None
    assert s.retry([11.5], lag_from=10.2) == 11.5


def test_nothing_is_booked_without_a_cause_or_after_the_periodic_round() -> None:
    s = started(10.0)
    assert s.retry([]) is None
    assert s.retry([12.0]) is None  # the periodic round at 12.0 comes first
    assert s.retry([13.0]) is None
    assert s.retry_at is None


def test_the_earlier_of_two_retries_is_kept() -> None:
    s = started(10.0)
    assert s.retry([11.5]) == 11.5
    assert s.retry([11.0]) == 11.0
    assert s.retry([11.8]) == 11.0


def test_the_periodic_round_cancels_a_pending_retry() -> None:
    s = started(10.0, gap=0.5)
    s.next_at = 11.0
    s.retry([10.9])
    assert s.due(11.0, PERIOD) == "periodic"
    assert s.retry_at is None


def test_releases_are_the_ends_of_the_flows_hold_downs() -> None:
    fab = leaf_spine(2, 3, capacity_bps=100e6)
    te = TrafficEngineer(visibility_s=0.0)
    pol = policy(hold=2.0)
    ids = [
        put(te, fab, 0, "leaf1", "leaf2", "spine1", pol=pol, now=1.0),
        put(te, fab, 1, "leaf3", "leaf2", "spine2", pol=pol, now=1.5),
    ]
    # Placed at 1.0 and 1.5, held 2 s; a flow whose hold has ended may move now.
    assert releases(te, ids, now=2.0) == [3.0, 3.5]
    assert releases(te, ids, now=3.2) == [3.2, 3.5]
    assert releases(te, [*ids, 999], now=2.0) == [3.0, 3.5]  # an unknown flow: none
