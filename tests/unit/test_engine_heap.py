"""The hub's collector policy: a poll round that froze is frozen again once its replies are in."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from enginelab import EngineLab
from synthetic import leaf_spine

from controller.engine.engine import EngineConfig
from controller.engine.heap import HeapPolicy
from controller.engine.outputs import FlowStatsRequest, PortStatsRequest, TablePart, TableRead
from controller.southbound.collector import MIDDLE_THRESHOLD, failure_reaction, tend_heap
from controller.telemetry import PortCounters


def test_the_last_reply_of_a_freezing_round_freezes_again() -> None:
    heap = HeapPolicy(enabled=True, interval_s=1.0, collect_s=600.0, now=0.0)
    requests = [PortStatsRequest(1), FlowStatsRequest(1, cookie=0, mask=0), PortStatsRequest(2)]
    assert heap.tick(0.0, [*requests, TableRead(3, TablePart.FLOWS)]) == "freeze"
    assert heap.answered("port", 1) is None
    assert heap.answered("flow", 2) is None  # not asked in this round
    assert heap.answered("port", 2) is None
    assert heap.answered("flow", 1) == "freeze"  # the round is complete
    assert heap.answered("port", 1) is None  # once per round
    # A tick that does not freeze starts no round; the next freezing one does.
    assert heap.tick(0.5, [PortStatsRequest(1)]) is None
    assert heap.answered("port", 1) is None
    assert heap.tick(1.0, [PortStatsRequest(1)]) == "freeze"
    assert heap.answered("port", 1) == "freeze"


def test_a_round_without_stats_requests_freezes_at_the_tick_only() -> None:
    heap = HeapPolicy(enabled=True, interval_s=1.0, collect_s=2.0, now=0.0)
    assert heap.tick(0.0) == "freeze"
    assert heap.answered("port", 1) is None
    assert heap.tick(2.0, [PortStatsRequest(1)]) == "collect"
    assert heap.answered("port", 1) == "freeze"  # what the replies made, after the collection


def test_a_newer_round_replaces_one_whose_switch_never_answered() -> None:
    heap = HeapPolicy(enabled=True, interval_s=1.0, collect_s=600.0, now=0.0)
    assert heap.tick(0.0, [PortStatsRequest(1), PortStatsRequest(2)]) == "freeze"
    assert heap.answered("port", 1) is None  # switch 2 stays silent
    assert heap.tick(1.0, [PortStatsRequest(1)]) == "freeze"
    assert heap.answered("port", 1) == "freeze"


def test_the_policy_off_never_asks() -> None:
    heap = HeapPolicy(enabled=False, interval_s=1.0, collect_s=1.0, now=0.0)
    assert heap.tick(5.0, [PortStatsRequest(1)]) is None
    assert heap.answered("port", 1) is None


def test_the_engine_freezes_when_the_last_stats_reply_of_the_round_is_in() -> None:
    lab = EngineLab(leaf_spine(2, 2), config=EngineConfig(poll_interval_s=1.0))
    for dpid in sorted(lab.name_of):
        lab.connect(dpid)
    lab.engine.tick(now=5.0)  # freezes; every switch's first poll is due within 1 s
    lab.now = 6.2
    out = lab.engine.tick(now=lab.now)
    polled = [r.dpid for r in out.requests if isinstance(r, PortStatsRequest)]
    assert out.heap is not None and polled
    heaps = [
        lab.engine.port_stats(dpid, [(1, PortCounters())], more=False, now=lab.now).heap
        for dpid in polled
    ]
    assert heaps == [None] * (len(polled) - 1) + ["freeze"]


@pytest.fixture
def collector() -> Iterator[None]:
    """No automatic collection during the test (explicit ones still run); the
    interpreter's collector as it was afterwards, whatever the test did to it."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()
    if enabled:
        gc.enable()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_shim_freezes_with_a_lazier_middle_generation_and_collects_frozen_cycles(
    collector: None,
) -> None:
    gc.set_threshold(700, 10, 10)
    tend_heap(None)
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0
    garbage = weakref.ref(_Cycle())  # unreachable at once, kept alive by its cycle
    tend_heap("freeze")
    assert gc.get_threshold() == (700, MIDDLE_THRESHOLD, 10)
    assert MIDDLE_THRESHOLD > 10
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert garbage() is not None  # frozen: out of the collector's sight
    tend_heap("collect")
    assert garbage() is None  # unfrozen, collected, the rest frozen again
    assert gc.get_freeze_count() > 0


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The collector on with nothing frozen; afterwards as it was."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.unfreeze()
    gc.enable()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()
    if not enabled:
        gc.disable()


def test_a_failure_reaction_runs_with_the_collector_paused_and_freezes_what_it_left(
    collector_on: None,
) -> None:
    seen = []
    with failure_reaction(True):
        seen.append(gc.isenabled())
        made = [_Cycle() for _ in range(10)]
    assert seen == [False]
    assert gc.isenabled()
    assert gc.get_freeze_count() > len(made)  # what the reaction left is out of sight
    assert all(gc.is_tracked(c) for c in made)


def test_without_the_policy_a_failure_reaction_leaves_the_collector_alone(
    collector_on: None,
) -> None:
    with failure_reaction(False):
        assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.disable()  # off already (someone else's choice): it stays off, nothing frozen
    with failure_reaction(True):
        assert not gc.isenabled()
    assert not gc.isenabled() and gc.get_freeze_count() == 0


def test_a_failing_reaction_still_turns_the_collector_back_on(collector_on: None) -> None:
    with pytest.raises(RuntimeError, match="boom"), failure_reaction(True):
        raise RuntimeError("boom")
    assert gc.isenabled()


@pytest.mark.parametrize("tend", [True, False])
def test_the_driver_calls_failure_reactions_as_the_shim_does(
    collector_on: None, tend: bool
) -> None:
    lab = EngineLab(leaf_spine(2, 2))
    lab.tend_heap = tend
    for dpid in sorted(lab.name_of):
        lab.connect(dpid)
    enabled: list[bool] = []
    engine = lab.engine
    for name in ("switch_disconnected", "port_status"):
        call = getattr(engine, name)

        def spy(*args: object, _call: object = call, **kwargs: object) -> object:
            enabled.append(gc.isenabled())
            return _call(*args, **kwargs)  # type: ignore[operator]

        setattr(engine, name, spy)
    lab.set_port(lab.fabric.link("leaf1", "spine1").src, up=False)
    lab.disconnect(lab.fabric.dpid("spine2"))
    assert enabled == [not tend, not tend]
    assert gc.isenabled()
