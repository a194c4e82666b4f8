"""Bulk bring-up with default forwarding held back, and the hub's garbage-collector policy."""

from __future__ import annotations

from dataclasses import replace

from enginelab import EngineLab
from synthetic import leaf_spine

from controller.engine.engine import EngineConfig
from controller.engine.outputs import EngineOutput
from controller.flowprog.plan import Program


def _bring_up(lab: EngineLab) -> None:
    """Every switch, every cable by LLDP, every host, as discovery would deliver them."""
    for dpid in sorted(lab.name_of):
        lab.connect(dpid)
    for lid in lab.fake.links:
        lab.lldp(lid)
    lab.advance(lab.net.config.edge_grace_s + 0.1)
    lab.learn_all()


def test_held_forwarding_is_compiled_once_and_equals_step_by_step_discovery() -> None:
    held, stepwise = EngineLab(leaf_spine(2, 4)), EngineLab(leaf_spine(2, 4))
    held.engine.hold_forwarding()
    _bring_up(held)
    _bring_up(stepwise)
    # While held, no switch got a forwarding entry beyond what it reported (nothing).
    assert all(not sw.flows for sw in held.fake.switches.values())
    assert held.undelivered() != []
    out = held.engine.release_forwarding(now=held.now)
    assert len(out.programs) == 1 and "host-learned" in out.programs[0].reason
    held.run(out)
    assert held.undelivered() == []
    assert held.fake.hashes() == stepwise.fake.hashes()
    # Nothing held any more: a second release recomputes nothing.
    assert held.engine.release_forwarding(now=held.now).programs == []


def test_changes_after_the_release_are_programmed_at_once_again() -> None:
    lab = EngineLab(leaf_spine(2, 4))
    lab.engine.hold_forwarding()
    _bring_up(lab)
    lab.run(lab.engine.release_forwarding(now=lab.now))
    before = lab.fake.hashes()
    lab.set_cable("leaf1", "spine1", up=False)
    assert lab.fake.hashes() != before  # the port-down recomputed at once
    assert lab.undelivered() == []


def _heap(lab: EngineLab, times: list[float]) -> list[str | None]:
    seen = []
    for t in times:
        lab.now = t
        out: EngineOutput = lab.engine.tick(now=t)
        seen.append(out.heap)
    return seen


def test_the_collector_is_frozen_once_per_poll_interval_and_fully_collected_rarely() -> None:
    config = EngineConfig(poll_interval_s=1.0, heap_collect_s=5.0)
    lab = EngineLab(leaf_spine(2, 2), config=config)
    work = _heap(lab, [1.0, 1.25, 1.5, 2.0, 2.5, 3.1, 4.0, 5.0, 6.0, 6.5, 7.0])
    assert work == [
        "freeze",  # the first tick: what startup built
        None,
        None,
        "freeze",
        None,
        "freeze",  # at least a poll interval after the last one (3.1 + 1 > 4.0)
        None,
        "freeze",
        "collect",  # heap_collect_s after the start
        None,
        "freeze",
    ]


def test_a_rebuilt_engine_asks_for_a_full_collection_and_the_policy_can_be_off() -> None:
    lab = EngineLab(leaf_spine(2, 2), config=EngineConfig(heap_collect_s=600.0))
    assert _heap(lab, [1.0, 2.0]) == ["freeze", "freeze"]
    lab.engine.join_cluster(may_program=lambda now: True)
    lab.run(lab.engine.set_role("leader", generation=1, now=3.0))  # a takeover rebuilds
    assert _heap(lab, [3.0]) == ["collect"]
    off = EngineLab(leaf_spine(2, 2), config=replace(EngineConfig(), heap_freeze=False))
    assert _heap(off, [1.0, 2.0, 700.0]) == [None, None, None]


def test_merged_outputs_keep_urgent_programs_in_order() -> None:
    first, second = Program(reason="a"), Program(reason="b")
    out = EngineOutput(urgent=[first]).merge(EngineOutput(urgent=[second]))
    assert out.urgent == [first, second] and out.programs == []
    assert EngineOutput(urgent=[first]) and not EngineOutput()


def test_merged_outputs_keep_the_strongest_heap_work() -> None:
    out = EngineOutput(heap="freeze").merge(EngineOutput(heap="collect"))
    assert out.heap == "collect"
    assert EngineOutput(heap="collect").merge(EngineOutput(heap="freeze")).heap == "collect"
    assert EngineOutput().merge(EngineOutput(heap="freeze")).heap == "freeze"
