"""The rebalancer on constructed hot spots: Hedera-style global first fit, and the joint
round over measured elephants where first fit corners itself."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from synthetic import Fabric, five_tuple, leaf_spine

from controller.errors import InvalidArgument
from controller.fabric.model import LinkId
from controller.policy.model import FlowMatch, Policy, PolicyParams, Strategy
from controller.routing.fabricstate import FabricState
from controller.te.engineer import TrafficEngineer

MBIT = 1e6
RATES = [40 * MBIT, 30 * MBIT, 20 * MBIT, 10 * MBIT]


def policy(
    strategy: Strategy, *, threshold: float = 0.8, hold: float = 2.0, **kw: object
) -> Policy:
    params = PolicyParams(congestion_threshold=threshold, min_move_interval_s=hold)
    base = Policy(name="ai", priority=10, match=(FlowMatch(ip_proto=17),), params=params)
    return replace(base, strategy=strategy, **kw)


def hot_spine1(
    pol: Policy, *, spines: int = 2, max_moves: int = 8
) -> tuple[Fabric, TrafficEngineer, list[int]]:
    """Four flows leaf1 -> leaf2 all on spine1 (placed at t=0), measured at RATES."""
    fab = leaf_spine(spines, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(max_moves_per_round=max_moves, visibility_s=3.0)
    # Other spines look full while placing, so every flow lands on spine1.
    busy = {
        lid: 100 * MBIT
        for s in fab.spines[1:]
        for lid in (fab.link("leaf1", s), fab.link(s, "leaf2"))
    }
    ids = []
    for i in range(len(RATES)):
        placed = te.place(
            five_tuple(i),
            dscp=26,
            ingress=fab.host_port("leaf1"),
            egress=fab.host_port("leaf2"),
            policy=pol,
            view=fab.view(load=busy),
            now=0.0,
            demand_bps=10 * MBIT,
        )
        assert fab.names[placed.flow.path.switches[1]] == "spine1"
        ids.append(placed.flow.flow_id)
    te.update_rates(dict(zip(ids, RATES, strict=True)), now=5.0)
    return fab, te, ids


def spine1_load(fab: Fabric, **others: float) -> dict[LinkId, float]:
    load = {fab.link("leaf1", "spine1"): sum(RATES), fab.link("spine1", "leaf2"): sum(RATES)}
    for spine, bps in others.items():
        load[fab.link("leaf1", spine)] = bps
        load[fab.link(spine, "leaf2")] = bps
    return load


def test_moves_the_fewest_flows_largest_first() -> None:
    fab, te, ids = hot_spine1(policy(Strategy.SHORTEST, threshold=0.8))
    outcome = te.rebalance(fab.view(load=spine1_load(fab)), now=10.0)
    assert [(m.flow_id, m.reason) for m in outcome] == [(ids[0], "rebalance")]
    assert outcome.hot == (fab.link("leaf1", "spine1"), fab.link("spine1", "leaf2"))
    assert fab.names[outcome.moves[0].new_path.switches[1]] == "spine2"

    fab, te, ids = hot_spine1(policy(Strategy.SHORTEST, threshold=0.5), spines=3)
    outcome = te.rebalance(fab.view(load=spine1_load(fab)), now=10.0, reason="congestion")
    assert [m.flow_id for m in outcome] == [ids[0], ids[1]]  # 100 -> 60 -> 30 Mbit/s
    assert {m.reason for m in outcome} == {"congestion"}


def test_respects_max_moves_per_round() -> None:
    fab, te, ids = hot_spine1(policy(Strategy.SHORTEST, threshold=0.5), max_moves=1)
    outcome = te.rebalance(fab.view(load=spine1_load(fab)), now=10.0)
    assert [m.flow_id for m in outcome] == [ids[0]]


def test_respects_min_move_interval() -> None:
    fab, te, ids = hot_spine1(policy(Strategy.SHORTEST, hold=30.0))
    held = te.rebalance(fab.view(load=spine1_load(fab)), now=10.0)
    assert held.moves == () and set(held.held) == set(ids)
    later = te.rebalance(fab.view(load=spine1_load(fab)), now=31.0)
    assert [m.flow_id for m in later] == [ids[0]]
    # The moved flow is itself held now: a new hot spot cannot bounce it back at once.
    flipped = {
        fab.link("leaf1", "spine2"): 95 * MBIT,
        fab.link("spine2", "leaf2"): 95 * MBIT,
        fab.link("leaf1", "spine1"): 10 * MBIT,
    }
    again = te.rebalance(fab.view(load=flipped), now=40.0)
    assert again.moves == () and ids[0] in again.held


def test_never_moves_pinned_flows() -> None:
    pinned = policy(Strategy.PINNED, pinned_path=("spine1",))
    fab, te, _ = hot_spine1(pinned)
    outcome = te.rebalance(fab.view(load=spine1_load(fab)), now=10.0)
    assert outcome.moves == () and outcome.hot


def test_no_move_when_nothing_fits() -> None:
    fab, te, ids = hot_spine1(policy(Strategy.SHORTEST))
    view = fab.view(load=spine1_load(fab, spine2=90 * MBIT))
    outcome = te.rebalance(view, now=10.0)
    assert outcome.moves == ()
    assert set(outcome.stuck) == set(ids)
    assert all(getattr(te.flow(i), "moves", None) == 0 for i in ids)


def test_target_follows_the_flows_strategy_order() -> None:
    # spine2 fits but is busier than spine3: least-utilized picks spine3, shortest spine2.
    for strategy, expected in ((Strategy.LEAST_UTILIZED, "spine3"), (Strategy.SHORTEST, "spine2")):
        fab, te, ids = hot_spine1(policy(strategy), spines=3)
        view = fab.view(load=spine1_load(fab, spine2=30 * MBIT, spine3=10 * MBIT))
        outcome = te.rebalance(view, now=10.0)
        assert [m.flow_id for m in outcome] == [ids[0]], strategy
        assert fab.names[outcome.moves[0].new_path.switches[1]] == expected, strategy


def test_one_round_does_not_overfill_its_target() -> None:
    fab, te, ids = hot_spine1(policy(Strategy.SHORTEST, threshold=0.5), spines=3)
    view = fab.view(load=spine1_load(fab, spine2=10 * MBIT, spine3=10 * MBIT))
    outcome = te.rebalance(view, now=10.0)
    # 40 fits on spine2 (10 -> 50); 30 then no longer does and goes to spine3.
    assert [(m.flow_id, fab.names[m.new_path.switches[1]]) for m in outcome] == [
        (ids[0], "spine2"),
        (ids[1], "spine3"),
    ]


def test_hot_argument_restricts_the_links_examined() -> None:
    fab, te, _ = hot_spine1(policy(Strategy.SHORTEST))
    view = fab.view(load=spine1_load(fab))
    assert te.rebalance(view, now=10.0, hot=[fab.link("leaf1", "spine2")]).moves == ()
    assert len(te.rebalance(view, now=10.0, hot=[fab.link("spine1", "leaf2")])) == 1


def test_recent_moves_count_until_counters_catch_up() -> None:
    fab, te, ids = hot_spine1(policy(Strategy.SHORTEST, threshold=0.5), spines=3, max_moves=1)
    stale = fab.view(load=spine1_load(fab))
    assert [m.flow_id for m in te.rebalance(stale, now=10.0)] == [ids[0]]
    # Counters still show 100 Mbit/s on spine1 and nothing on spine2, but the
    # move took 40 off spine1 and put it on spine2: the next round moves one
    # more flow (to spine3, as 30 no longer fits on spine2), then none.
    second = te.rebalance(stale, now=11.0)
    assert [m.flow_id for m in second] == [ids[1]]
    assert te.rebalance(stale, now=12.0).moves == ()


def test_rejects_an_unknown_reason() -> None:
    fab, te, _ = hot_spine1(policy(Strategy.SHORTEST))
    with pytest.raises(InvalidArgument) as err:
        te.rebalance(fab.view(), now=1.0, reason="whim")
    assert err.value.field == "reason"


def _place_on(te: TrafficEngineer, fab: Fabric, i: int, src: str, dst: str, spine: str) -> int:
    """Place flow ``i`` src -> dst, forced onto ``spine`` (the others look full)."""
    busy = {}
    for other in fab.spines:
        if other != spine:
            for lid in (fab.link(src, other), fab.link(other, dst)):
                busy[lid] = 100 * MBIT
    placed = te.place(
        five_tuple(i),
        dscp=26,
        ingress=fab.host_port(src),
        egress=fab.host_port(dst),
        policy=policy(Strategy.LEAST_UTILIZED),
        view=fab.view(load=busy),
        now=0.0,
        demand_bps=1 * MBIT,
    )
    assert fab.names[placed.flow.path.switches[1]] == spine
    return placed.flow.flow_id


def test_a_lone_elephant_filling_its_link_is_not_moved() -> None:
    """A link hot only because one flow fills it is not congestion: moving the flow
    would only make another link hot (ping-pong)."""
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    flow = _place_on(te, fab, 1, "leaf1", "leaf2", "spine1")
    te.update_rates({flow: 97 * MBIT}, now=5.0)
    load = {fab.link("leaf1", "spine1"): 97 * MBIT, fab.link("spine1", "leaf2"): 97 * MBIT}
    outcome = te.rebalance(fab.view(load=load), now=10.0)
    assert outcome.moves == () and outcome.hot == ()
    # Background traffic on the same link makes it contended: then the flow moves,
    # and an idle spine takes it even though it alone exceeds the threshold.
    load = {lid: 100 * MBIT for lid in load}
    te.update_rates({flow: 40 * MBIT}, now=6.0)
    outcome = te.rebalance(fab.view(load=load), now=10.0, reason="congestion")
    assert [(m.flow_id, m.reason) for m in outcome] == [(flow, "congestion")]
    assert fab.names[outcome.moves[0].new_path.switches[1]] == "spine2"


def _ring_deadlock(max_moves: int) -> tuple[Fabric, TrafficEngineer, list[int], dict]:
    fab = leaf_spine(2, 3, capacity_bps=20 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, max_moves_per_round=max_moves)
    a = _place_on(te, fab, 1, "leaf1", "leaf2", "spine1")
    b = _place_on(te, fab, 2, "leaf1", "leaf3", "spine1")
    c = _place_on(te, fab, 3, "leaf3", "leaf2", "spine2")
    d = _place_on(te, fab, 4, "leaf2", "leaf3", "spine2")
    te.update_rates({a: 10 * MBIT, b: 10 * MBIT, c: 19 * MBIT, d: 19 * MBIT}, now=5.0)
    load = {
        fab.link("leaf1", "spine1"): 20 * MBIT,
        fab.link("spine1", "leaf2"): 10 * MBIT,
        fab.link("spine1", "leaf3"): 10 * MBIT,
        fab.link("leaf3", "spine2"): 19 * MBIT,
        fab.link("spine2", "leaf2"): 19 * MBIT,
        fab.link("leaf2", "spine2"): 19 * MBIT,
        fab.link("spine2", "leaf3"): 19 * MBIT,
    }
    return fab, te, [a, b, c, d], load


def test_two_flows_trade_spines_when_single_moves_are_stuck() -> None:
    """Ring-like deadlock: a and b collided on leaf1 -> spine1; each one's other spine is
    full towards its destination (c and d hold it). Moving c to spine1 frees spine2 for a."""
    fab, te, (a, b, c, d), load = _ring_deadlock(max_moves=8)
    outcome = te.rebalance(fab.view(load=load), now=10.0, reason="congestion")
    moved = {m.flow_id: fab.names[m.new_path.switches[1]] for m in outcome}
    assert len(moved) == 2, moved
    # One colliding flow went to spine2, and the flow that blocked it to spine1
    # (the blocker first, so the room exists when the stuck flow arrives).
    pairs = {(a, c), (b, d)}
    order = tuple(m.flow_id for m in outcome)
    assert (order[1], order[0]) in pairs, order
    assert moved[order[1]] == "spine2" and moved[order[0]] == "spine1"


def test_a_trade_needs_room_for_two_moves_in_the_round() -> None:
    fab, te, ids, load = _ring_deadlock(max_moves=1)
    outcome = te.rebalance(fab.view(load=load), now=10.0, reason="congestion")
    assert outcome.moves == ()
    assert set(outcome.stuck) >= {ids[0]}


def test_hash_strategies_are_not_rebalanced_and_holds_grow_with_moves() -> None:
    fab, te, ids = hot_spine1(policy(Strategy.LEAST_UTILIZED, threshold=0.8))
    ecmp = policy(Strategy.ECMP, threshold=0.8)
    te.policies_changed(lambda ft, dscp: ecmp, fab.view(), now=20.0)
    load: dict[LinkId, float] = {}
    for i, rate in zip(ids, RATES, strict=True):
        flow = te.flow(i)
        assert flow is not None
        for lid in flow.path.links:
            load[lid] = load.get(lid, 0.0) + 1.2 * rate
    assert max(load.values()) > 0.8 * 100 * MBIT  # the hash left a hot link
    outcome = te.rebalance(fab.view(load=load), now=60.0)
    assert outcome.moves == ()  # an ECMP policy keeps the hash's choice

    from controller.te.rebalance import hold_down

    pol = policy(Strategy.LEAST_UTILIZED, hold=2.0)
    fab, te, ids = hot_spine1(pol)
    flow = te.flow(ids[0])
    assert flow is not None
    assert hold_down(flow, pol) == 2.0
    assert hold_down(replace(flow, moves=3), pol) == 16.0
    assert hold_down(replace(flow, moves=50), pol) == 64.0


# Four leaves each sending to the other three, one flow per pair at 90 % of the link
# rate, three spines: every leaf sends and receives as many flows as there are spines,
# so a placement with every flow on links of its own exists (Koenig). This one, as
# per-flow placement can leave it, has six links carrying two flows; a single move
# or a trade of two cannot reach a collision-free placement from it.
CORNERED = (
    ("leaf1", "leaf2", "spine2"),
    ("leaf1", "leaf3", "spine2"),
    ("leaf1", "leaf4", "spine1"),
    ("leaf2", "leaf3", "spine2"),
    ("leaf2", "leaf4", "spine3"),
    ("leaf2", "leaf1", "spine2"),
    ("leaf3", "leaf4", "spine2"),
    ("leaf3", "leaf1", "spine2"),
    ("leaf3", "leaf2", "spine2"),
    ("leaf4", "leaf1", "spine2"),
    ("leaf4", "leaf2", "spine3"),
    ("leaf4", "leaf3", "spine1"),
)


# The same pairs placed otherwise: first fit finds no single move nor trade at all.
TIGHT = ("spine1", "spine3", "spine1", "spine1", "spine2", "spine1")
TIGHT += ("spine1", "spine2", "spine3", "spine3", "spine2", "spine2")


def _cornered(
    *,
    joint: bool,
    max_moves: int = 16,
    policies: dict[int, Policy] | None = None,
    spines: tuple[str, ...] = tuple(spine for _, _, spine in CORNERED),
) -> tuple[Fabric, TrafficEngineer, list[int]]:
    """The CORNERED pairs on ``spines``, each flow measured at 90 Mbit/s on 100 Mbit/s links."""
    fab = leaf_spine(3, 4, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, max_moves_per_round=max_moves, joint_rebalance=joint)
    ids = []
    for i, ((src, dst, _), spine) in enumerate(zip(CORNERED, spines, strict=True)):
        busy = {}
        for other in fab.spines:
            if other != spine:
                for lid in (fab.link(src, other), fab.link(other, dst)):
                    busy[lid] = 100 * MBIT
        pol = (policies or {}).get(i, policy(Strategy.LEAST_UTILIZED))
        placed = te.place(
            five_tuple(i),
            dscp=26,
            ingress=fab.host_port(src),
            egress=fab.host_port(dst),
            policy=pol,
            view=fab.view(load=busy),
            now=0.0,
            demand_bps=90 * MBIT,
        )
        assert fab.names[placed.flow.path.switches[1]] == spine
        ids.append(placed.flow.flow_id)
    te.update_rates(dict.fromkeys(ids, 90 * MBIT), now=5.0)
    return fab, te, ids


def _link_loads(te: TrafficEngineer) -> dict[LinkId, float]:
    load: dict[LinkId, float] = {}
    for flow in te.snapshot():
        for lid in flow.path.links:
            load[lid] = load.get(lid, 0.0) + flow.rate_bps
    return load


def _view(fab: Fabric, te: TrafficEngineer, kind: str) -> Any:
    view = fab.view(load=_link_loads(te))
    return FabricState.from_view(view) if kind == "state" else view


def _shared_links(te: TrafficEngineer) -> int:
    return sum(1 for bps in _link_loads(te).values() if bps > 100 * MBIT)


@pytest.mark.parametrize("kind", ["view", "state"])
def test_an_undeclared_cornered_pattern_is_collision_free_after_one_round(kind: str) -> None:
    fab, te, _ = _cornered(joint=False)
    assert _shared_links(te) == 6
    first_fit = te.rebalance(_view(fab, te, kind), now=10.0)
    assert first_fit.stuck and _shared_links(te) > 0  # first fit alone stays cornered

    fab, te, ids = _cornered(joint=True)
    outcome = te.rebalance(_view(fab, te, kind), now=10.0)
    assert _shared_links(te) == 0  # every flow has its links to itself, after ONE round
    assert outcome.stuck == () and {m.reason for m in outcome} == {"rebalance"}
    assert all("joint re-placement" in m.detail for m in outcome)
    assert len(outcome.moves) < len(ids)  # flows already well placed stay
    # The next round finds nothing to do.
    assert te.rebalance(_view(fab, te, kind), now=30.0).moves == ()


def test_the_joint_round_moves_no_held_pinned_or_hashed_flow() -> None:
    # Unconstrained, the joint round moves flows 1, 5, 7 and 8 of CORNERED. Pin 1 to
    # the spine it is on, hold 5 and 7 (moved recently, by their policy's clock), and
    # put 2 and 3 under ECMP (their hash picks the spines they are on).
    pinned = policy(Strategy.PINNED, pinned_path=("spine2",), fallback=Strategy.LEAST_UTILIZED)
    held = policy(Strategy.LEAST_UTILIZED, hold=30.0)
    ecmp = policy(Strategy.ECMP)
    keep = {1: pinned, 5: held, 7: held, 2: ecmp, 3: ecmp}
    fab, te, ids = _cornered(joint=True, policies=keep)
    before = {ids[k]: te.flow(ids[k]) for k in keep}
    outcome = te.rebalance(_view(fab, te, "view"), now=10.0)
    assert outcome.moves and all("joint re-placement" in m.detail for m in outcome)
    assert {ids[5], ids[7]} <= set(outcome.held)
    assert not {m.flow_id for m in outcome} & set(before)
    assert all(te.flow(i) == flow for i, flow in before.items())


def test_a_joint_plan_larger_than_the_budget_makes_only_moves_that_fit_alone() -> None:
    fab, te, _ = _cornered(joint=False, max_moves=2, spines=TIGHT)
    stuck = te.rebalance(_view(fab, te, "view"), now=10.0)
    assert stuck.moves == () and stuck.stuck  # first fit has nothing at all
    fab, te, _ = _cornered(joint=True, max_moves=2, spines=TIGHT)
    shared_before = _shared_links(te)
    peak_before = max(_link_loads(te).values())
    outcome = te.rebalance(_view(fab, te, "view"), now=10.0)
    assert len(outcome.moves) == 2
    assert all("joint re-placement" in m.detail for m in outcome)
    loads = _link_loads(te)
    # Each move went where it fitted: no link it joined carries more than the
    # plan allows (90 % alone), and nothing got worse than before.
    for move in outcome:
        for lid in set(move.new_path.links) - set(move.old_path.links):
            assert loads[lid] <= 90 * MBIT
    assert max(loads.values()) <= peak_before
    assert _shared_links(te) < shared_before


def test_a_large_herd_is_cut_to_the_elephants_around_the_stuck_flows() -> None:
    from controller.te.elephants import elephants, near

    fab, te, ids = _cornered(joint=False)
    table = te._table  # the engineer's own table, read only
    herd = elephants(table, {i: policy(Strategy.LEAST_UTILIZED) for i in ids}, fab.view(), now=10.0)
    assert [f.flow_id for f in herd] == ids
    assert near(herd, table, [ids[0]], 100) == herd  # small enough: all of it
    cut = near(herd, table, [ids[0]], 4)  # flow 0 runs leaf1 -> leaf2
    assert len(cut) == 4
    ends = {fab.dpid("leaf1"), fab.dpid("leaf2")}
    assert all(f.path.ingress in ends or f.path.egress in ends for f in cut)
    assert [f.flow_id for f in cut] == sorted(f.flow_id for f in cut)
