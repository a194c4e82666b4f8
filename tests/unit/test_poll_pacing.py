"""Statistics polls paced by what reading their answers costs the hub (poll_budget).

At 64 x 512 with 100,000 flows one round of answers is more than a second of
the hub's work: with a one-second interval the hub would do nothing else.
The pollers stretch the interval so that a round stays within the budget,
and come back to the configured interval when rounds get cheap again.
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from enginelab import EngineLab
from synthetic import leaf_spine
from test_engine import place, roce_policy

from controller.engine.config import EngineConfig
from controller.engine.outputs import EngineOutput
from controller.engine.polling import StatsPolls
from controller.te.recent import RecentLoad
from controller.telemetry import CapacityConfig

SWITCHES = [1, 2, 3, 4]


def polls(**kw: float) -> StatsPolls:
    return StatsPolls(interval=1.0, rng=random.Random(1), **kw)


def round_of(p: StatsPolls, *, cost: float, now: float) -> None:
    """Every switch answers its port counters, each answer costing ``cost`` seconds;
    then the next tick asks (and re-estimates)."""
    for _ in SWITCHES:
        p.work(cost, port=True)
    p.due(now=now, switches=SWITCHES, ingress=set())


def test_a_round_within_the_budget_keeps_the_configured_interval() -> None:
    p = polls(budget=0.5, max_interval=30.0)
    round_of(p, cost=0.12, now=1.0)  # 0.48 s per round: within half of one second
    assert p.interval == 1.0
    assert p.round_work == pytest.approx(0.48)


def test_an_expensive_round_stretches_the_interval_to_fit_the_budget() -> None:
    p = polls(budget=0.5, max_interval=30.0)
    p.work(0.1, port=False)  # flow counters count as work, not as a switch's answer
    round_of(p, cost=0.3, now=1.0)
    assert p.round_work == pytest.approx(1.3)
    assert p.interval == pytest.approx(2.6)  # 1.3 s of work in 2.6 s: half the hub
    assert p.port.give_up_after == pytest.approx(3 * 2.6 + 2.0)  # patience follows
    # Every switch is then asked about once per stretched interval, not once a second.
    asked: dict[int, list[float]] = {d: [] for d in SWITCHES}
    for step in range(1, 121):
        now = 1.0 + step * 0.25
        for req in p.due(now=now, switches=SWITCHES, ingress=set()).requests:
            asked[req.dpid].append(now)  # type: ignore[union-attr]
            p.port.answered(req.dpid, now, more=False)  # type: ignore[union-attr]
    for times in asked.values():
        gaps = [b - a for a, b in pairwise(times)]
        assert gaps and all(2.6 * 0.9 - 0.25 <= g <= 2.6 * 1.1 + 0.25 for g in gaps)


def test_the_stretch_is_bounded_and_undone_when_rounds_get_cheap() -> None:
    p = polls(budget=0.25, max_interval=5.0)
    round_of(p, cost=1.0, now=1.0)  # 4 s per round would want 16 s
    assert p.interval == 5.0
    round_of(p, cost=0.5, now=2.0)  # 2 s per round: 8 s wanted, still capped
    assert p.interval == 5.0
    round_of(p, cost=0.2, now=3.0)  # 0.8 s: 3.2 s
    assert p.interval == pytest.approx(3.2)
    round_of(p, cost=0.21, now=4.0)  # 3.36 s: a change under 10 % keeps the schedule
    assert p.interval == pytest.approx(3.2)
    round_of(p, cost=0.0675, now=5.0)  # 0.27 s per round: 1.08 s
    assert p.interval == pytest.approx(1.08)
    round_of(p, cost=0.01, now=6.0)  # cheap again: back to the configured second,
    assert p.interval == 1.0  # however close the stretch was
    assert p.port.interval == 1.0 and p.flow.interval == 1.0


def test_no_estimate_before_a_rounds_worth_of_answers() -> None:
    p = polls(budget=0.5, max_interval=30.0)
    p.work(5.0, port=True)  # one switch of four answered, expensively
    p.due(now=1.0, switches=SWITCHES, ingress=set())
    assert p.interval == 1.0 and p.round_work == 0.0
    for _ in SWITCHES[1:]:
        p.work(0.0, port=True)
    p.due(now=2.0, switches=SWITCHES, ingress=set())
    assert p.interval == pytest.approx(10.0)  # 5 s of work per round of four


@pytest.mark.parametrize("budget", [0.0, -0.5, 1.5])
def test_a_budget_outside_0_to_1_is_refused(budget: float) -> None:
    with pytest.raises(ValueError, match="budget"):
        polls(budget=budget)


class WorkClock:
    """A CPU clock where each answer the engine reads costs ``cost`` seconds."""

    def __init__(self) -> None:
        self.cost = 0.0
        self.now = 0.0
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:  # the second reading of a pair: the answer's end
            self.now += self.cost
        return self.now


def test_the_engine_paces_polls_by_the_work_of_their_answers() -> None:
    cfg = EngineConfig(
        capacity=CapacityConfig.from_config(100.0, {}),
        default_demand_bps=100e6,
        poll_interval_s=1.0,
        poll_budget=0.5,
        poll_interval_max_s=30.0,
    )
    lab = EngineLab(leaf_spine(2, 2), config=cfg, policies=(roce_policy(),)).ready()
    clock = WorkClock()
    lab.engine.work_clock = clock
    place(lab, lab.hosts[0], lab.hosts[2])  # a placed flow: its counters are read too
    switches = len(lab.fabric.names)
    clock.cost = 0.3  # each answer (port or flow counters) takes 0.3 s of the hub

    answered: Counter[int] = Counter()  # whole port-stats answers read, per switch
    read = lab.engine.port_stats

    def port_stats(dpid: int, counters: list[Any], *, more: bool, now: float) -> EngineOutput:
        answered[dpid] += not more
        return read(dpid, counters, more=more, now=now)

    lab.engine.port_stats = port_stats  # type: ignore[method-assign]

    def run(seconds: float) -> Counter[int]:
        answered.clear()
        for _ in range(int(seconds / 0.25)):
            lab.advance(0.25)
            lab.tick()
        return Counter(answered)

    run(4.0)
    polls = lab.engine.polls
    assert polls.interval > 1.0
    want = polls.round_work / 0.5
    assert polls.interval == pytest.approx(want)
    assert polls.round_work >= 0.3 * switches  # every switch's port counters, at least
    gauge = lab.metrics.registry.get_sample_value("fabric_poll_interval_seconds")
    assert gauge == pytest.approx(polls.interval)
    work = lab.metrics.registry.get_sample_value("fabric_poll_round_work_seconds")
    assert work == pytest.approx(polls.round_work)
    # A new flow's demand stays counted until its rate is measured: about two polls.
    recent = lab.engine.placer.te.extra_load
    assert isinstance(recent, RecentLoad)
    assert recent.visibility_s == pytest.approx(3 * polls.interval)
    asked = run(12.0)
    per_switch = 12.0 / polls.interval
    assert all(per_switch - 1 <= n <= per_switch + 1 for n in asked.values()), asked
    assert set(asked) == set(lab.fabric.names)  # slower, but every switch still read

    clock.cost = 0.0  # answers cheap again: back to the configured interval
    run(4 * polls.interval)
    assert polls.interval == 1.0
    assert lab.metrics.registry.get_sample_value("fabric_poll_interval_seconds") == 1.0
    assert recent.visibility_s == 3.0
