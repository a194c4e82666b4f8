"""The rebalancer's two-flow trade (first fit's depth-2 move) at its edges.

Guards three rules of the trade: a link the stuck flow would fill exactly to
its threshold does not block it; a link blocks it at the strictest threshold
of the flows already on it (so a strict resident is the one to make room);
and the flow is never traded onto another path through the hot link it is
leaving. Rounds run with first fit only, on hand-built loads.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from synthetic import Fabric, five_tuple, leaf_spine, three_tier

from controller.fabric.model import LinkId
from controller.policy.model import FlowMatch, Policy, PolicyParams, Strategy
from controller.routing.strategies import NetworkView
from controller.te.engineer import TrafficEngineer
from controller.te.results import Outcome

MBIT = 1e6


def policy(*, name: str = "ai", threshold: float = 0.8) -> Policy:
    params = PolicyParams(congestion_threshold=threshold, min_move_interval_s=2.0)
    base = Policy(name=name, priority=10, match=(FlowMatch(ip_proto=17),), params=params)
    return replace(base, strategy=Strategy.LEAST_UTILIZED)


LU = policy()


def put(
    te: TrafficEngineer, fab: Fabric, i: int, hops: tuple[str, ...], *, pol: Policy = LU
) -> int:
    """Place flow ``i`` on the path through ``hops`` (every other link drained meanwhile)."""
    wanted = {fab.link(a, b) for a, b in itertools.pairwise(hops)}
    others = [attrs["link"] for _, _, attrs in fab.graph.edges(data=True)]
    placed = te.place(
        five_tuple(i),
        dscp=26,
        ingress=fab.host_port(hops[0]),
        egress=fab.host_port(hops[-1]),
        policy=pol,
        view=fab.view(drained=[lid for lid in others if lid not in wanted]),
        now=0.0,
        demand_bps=1 * MBIT,
    )
    assert fab.path_names(placed.flow.path.switches) == hops
    return placed.flow.flow_id


def via(fab: Fabric, te: TrafficEngineer, fid: int) -> tuple[str, ...]:
    flow = te.flow(fid)
    assert flow is not None
    return fab.path_names(flow.path.switches)


def loads(te: TrafficEngineer, extra: dict[LinkId, float]) -> dict[LinkId, float]:
    """What the counters would show: every tracked flow's rate on its links, plus ``extra``."""
    out = dict(extra)
    for flow in te.snapshot():
        for lid in flow.path.links:
            out[lid] = out.get(lid, 0.0) + flow.load_bps
    return out


def rebalance(te: TrafficEngineer, view: NetworkView) -> Outcome:
    return te.rebalance(view, now=10.0, reason="congestion")


def test_a_link_filled_exactly_to_the_threshold_does_not_block_a_trade() -> None:
    """a and b (10 each) share leaf1 -> spine1 (20 Mbit/s links, threshold 80%).
    spine2 is full towards leaf2 with c, which can take spine1 once a leaves it;
    leaf1 -> spine2 already carries 6, so a there makes exactly 16 = 80%."""
    fab = leaf_spine(2, 3, capacity_bps=20 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, joint_rebalance=False)
    a = put(te, fab, 1, ("leaf1", "spine1", "leaf2"))
    b = put(te, fab, 2, ("leaf1", "spine1", "leaf3"))
    c = put(te, fab, 3, ("leaf3", "spine2", "leaf2"))
    te.update_rates({a: 10 * MBIT, b: 10 * MBIT, c: 19 * MBIT}, now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te, {fab.link("leaf1", "spine2"): 6 * MBIT})))
    assert [(m.flow_id, via(fab, te, m.flow_id)[1]) for m in outcome][:2] == [
        (c, "spine1"),
        (a, "spine2"),
    ]


def test_a_strict_resident_blocks_at_its_own_threshold_and_makes_room() -> None:
    """a and b (10 each) share leaf1 -> spine1 (20 Mbit/s). spine3 is full towards
    leaf2. leaf1 -> spine2 carries only e (2, threshold 50%): a there would make 12,
    under a's 80% but over e's 50%, so that link blocks a, and e (free to go by
    spine3 to leaf3) makes room."""
    fab = leaf_spine(3, 3, capacity_bps=20 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, joint_rebalance=False)
    a = put(te, fab, 1, ("leaf1", "spine1", "leaf2"))
    b = put(te, fab, 2, ("leaf1", "spine1", "leaf2"))
    e = put(te, fab, 3, ("leaf1", "spine2", "leaf3"), pol=policy(name="strict", threshold=0.5))
    te.update_rates({a: 10 * MBIT, b: 10 * MBIT, e: 2 * MBIT}, now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te, {fab.link("spine3", "leaf2"): 19 * MBIT})))
    assert [(m.flow_id, via(fab, te, m.flow_id)[1]) for m in outcome] == [
        (e, "spine3"),
        (a, "spine2"),
    ]
    assert outcome.moves[0].detail == f"makes room on {fab.link('leaf1', 'spine2')} for flow {a}"


def test_a_trade_never_keeps_the_flow_on_the_hot_link() -> None:
    """f's uplink leaf1-1 -> agg1-1 is hot (f and background). Every path by agg1-2
    is blocked twice; the path by agg1-1, spine2 and agg2-1 is blocked only by g
    (which could take f's spine1), but it still crosses the hot uplink: no
    trade, f is stuck."""
    fab = three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, joint_rebalance=False)
    f = put(te, fab, 1, ("leaf1-1", "agg1-1", "spine1", "agg2-1", "leaf2-1"))
    g = put(te, fab, 2, ("leaf1-2", "agg1-1", "spine2", "agg2-2", "leaf2-2"))
    te.update_rates({f: 40 * MBIT, g: 70 * MBIT}, now=1.0)
    background = {
        fab.link("leaf1-1", "agg1-1"): 50 * MBIT,
        fab.link("leaf1-1", "agg1-2"): 90 * MBIT,
        fab.link("agg1-2", "spine1"): 90 * MBIT,
        fab.link("agg1-2", "spine2"): 90 * MBIT,
    }
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    assert fab.link("leaf1-1", "agg1-1") in outcome.hot
    assert outcome.moves == ()
    assert f in outcome.stuck
