"""The rebalancer's decisions on hand-built hot spots (all links 100 Mbit/s).

Every scenario places flows on chosen spines, sets measured rates and link
loads, runs one rebalance round through :class:`TrafficEngineer` and checks
which flows moved where, in which order, with which explanation, and which
were left stuck or held. Each is built so that a planner that got one rule
wrong (hottest link first, thresholds per link, the round's own bookkeeping,
which flows may move, the hold-down) would answer differently.
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


def policy(
    strategy: Strategy = Strategy.LEAST_UTILIZED,
    *,
    name: str = "ai",
    threshold: float = 0.8,
    hold: float = 2.0,
    **kw: object,
) -> Policy:
    params = PolicyParams(congestion_threshold=threshold, min_move_interval_s=hold)
    base = Policy(name=name, priority=10, match=(FlowMatch(ip_proto=17),), params=params)
    return replace(base, strategy=strategy, **kw)


LU = policy()


def put(
    te: TrafficEngineer,
    fab: Fabric,
    i: int,
    src: str,
    dst: str,
    via: str | tuple[str, ...],
    *,
    pol: Policy = LU,
    now: float = 0.0,
) -> int:
    """Place flow ``i`` src -> dst under ``pol`` on the path through ``via`` (a spine, or
    the middle switches): while placing, every other link is drained."""
    hops = (src, *((via,) if isinstance(via, str) else via), dst)
    wanted = {fab.link(a, b) for a, b in itertools.pairwise(hops)}
    others = [attrs["link"] for _, _, attrs in fab.graph.edges(data=True)]
    placed = te.place(
        five_tuple(i),
        dscp=26,
        ingress=fab.host_port(src),
        egress=fab.host_port(dst),
        policy=pol,
        view=fab.view(drained=[lid for lid in others if lid not in wanted]),
        now=now,
        demand_bps=1 * MBIT,
    )
    assert fab.path_names(placed.flow.path.switches) == hops
    return placed.flow.flow_id


def on(fab: Fabric, te: TrafficEngineer, fid: int) -> str:
    flow = te.flow(fid)
    assert flow is not None
    return fab.names[flow.path.switches[1]]


def loads(te: TrafficEngineer, extra: dict[LinkId, float] | None = None) -> dict[LinkId, float]:
    """What the counters would show: every tracked flow's rate on its links, plus ``extra``."""
    out: dict[LinkId, float] = dict(extra or {})
    for flow in te.snapshot():
        for lid in flow.path.links:
            out[lid] = out.get(lid, 0.0) + flow.load_bps
    return out


def rebalance(te: TrafficEngineer, view: NetworkView, now: float = 10.0) -> Outcome:
    return te.rebalance(view, now=now, reason="congestion")


# ---------------------------------------------------------------- which link first
def test_the_hottest_link_is_relieved_first_when_the_round_allows_one_move() -> None:
    fab = leaf_spine(3, 4, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, max_moves_per_round=1)
    warm = [
        put(te, fab, 1, "leaf1", "leaf2", "spine1"),
        put(te, fab, 2, "leaf1", "leaf2", "spine1"),
    ]
    hot = [put(te, fab, 3, "leaf3", "leaf4", "spine1"), put(te, fab, 4, "leaf3", "leaf4", "spine1")]
    te.update_rates(dict.fromkeys(warm, 43 * MBIT) | dict.fromkeys(hot, 48 * MBIT), now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te)))
    # leaf3's and leaf4's spine1 links (96%) come before leaf1's and leaf2's (86%).
    assert outcome.hot[:2] == (fab.link("leaf3", "spine1"), fab.link("spine1", "leaf4"))
    assert set(outcome.hot[2:]) == {fab.link("leaf1", "spine1"), fab.link("spine1", "leaf2")}
    assert [m.flow_id for m in outcome] == [hot[0]]
    assert outcome.moves[0].detail == f"off {fab.link('leaf3', 'spine1')} at 48% after the move"


# ------------------------------------------------------------ thresholds per link
def test_a_relocated_flow_brings_its_strict_threshold_to_its_new_links() -> None:
    """s (70, threshold 50%) leaves the hottest link for spine2. l (15, threshold 90%)
    must leave a hot link too; spine2 now carries s, so it may only fill spine2 up to
    50%: 70 + 15 there is too much, and l is stuck rather than piled onto s."""
    fab = leaf_spine(3, 3, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, joint_rebalance=False)  # first fit's own rules
    strict = policy(name="strict", threshold=0.5)
    lenient = policy(name="lenient", threshold=0.9)
    s = put(te, fab, 1, "leaf1", "leaf2", "spine1", pol=strict)
    f = put(te, fab, 2, "leaf1", "leaf2", "spine1", pol=lenient)
    lone = put(te, fab, 3, "leaf3", "leaf2", "spine1", pol=lenient)
    te.update_rates({s: 70 * MBIT, f: 28 * MBIT, lone: 15 * MBIT}, now=1.0)
    background = {
        fab.link("leaf3", "spine1"): 80 * MBIT,  # l's uplink: 95% with l
        fab.link("spine3", "leaf2"): 80 * MBIT,  # spine3 cannot take l either
        fab.link("spine1", "leaf2"): -70 * MBIT,  # keep spine1 -> leaf2 below its threshold
    }
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [(s, "spine2")]
    assert lone in outcome.stuck


def test_a_link_carrying_a_strict_flow_takes_no_more_than_its_threshold() -> None:
    fab = leaf_spine(2, 3, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, joint_rebalance=False)  # first fit's own rules
    strict = policy(name="strict", threshold=0.5)
    lenient = policy(name="lenient", threshold=0.9)
    resident = put(te, fab, 1, "leaf3", "leaf2", "spine2", pol=strict)
    mover = put(te, fab, 2, "leaf1", "leaf2", "spine1", pol=lenient)
    other = put(te, fab, 3, "leaf1", "leaf2", "spine1", pol=lenient)
    te.update_rates({resident: 40 * MBIT, mover: 30 * MBIT, other: 65 * MBIT}, now=1.0)
    # spine2 -> leaf2 at 40 + 30 = 70% would suit the lenient flow but not the strict
    # one already there (50%): nothing moves.
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert outcome.moves == () and set(outcome.stuck) == {mover, other}


def test_where_first_fit_is_stuck_beside_a_strict_flow_the_joint_round_lowers_the_peak() -> None:
    # The scenario above with the joint round on: first fit would leave 95% on
    # spine1 -> leaf2; re-placing the elephants together lowers the peak to 70%,
    # which puts the strict flow's link over its own 50% (one link over its
    # threshold instead of two, and it says so).
    fab = leaf_spine(2, 3, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    strict = policy(name="strict", threshold=0.5)
    lenient = policy(name="lenient", threshold=0.9)
    resident = put(te, fab, 1, "leaf3", "leaf2", "spine2", pol=strict)
    mover = put(te, fab, 2, "leaf1", "leaf2", "spine1", pol=lenient)
    other = put(te, fab, 3, "leaf1", "leaf2", "spine1", pol=lenient)
    te.update_rates({resident: 40 * MBIT, mover: 30 * MBIT, other: 65 * MBIT}, now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [(mover, "spine2")]
    assert outcome.moves[0].detail == (
        "joint re-placement of 3 elephant(s): peak 70%, 1 link(s) over threshold "
        "(first fit: 95%, 2)"
    )


# ------------------------------------------------------ the round's own bookkeeping
def test_flows_moved_in_one_round_add_up_on_their_shared_target() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, joint_rebalance=False)  # first fit's own rules
    lenient = policy(name="lenient", threshold=0.8)
    strict = policy(name="strict", threshold=0.15)
    ids = [put(te, fab, i, "leaf1", "leaf2", "spine1", pol=lenient) for i in range(3)]
    small = put(te, fab, 3, "leaf1", "leaf2", "spine1", pol=strict)
    rates = dict(zip(ids, (40 * MBIT, 30 * MBIT, 20 * MBIT), strict=True))
    te.update_rates(rates | {small: 10 * MBIT}, now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te)))
    # 40 and 30 fit on spine2 (70% < 80%); 20 more would make 90%.
    assert [m.flow_id for m in outcome] == ids[:2]
    assert set(outcome.stuck) == {ids[2], small}


def test_a_flow_moved_earlier_in_the_round_steers_the_next_ones_choice() -> None:
    fab = leaf_spine(3, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    lenient = policy(name="lenient", threshold=0.9)
    strict = policy(name="strict", threshold=0.5)
    big = put(te, fab, 1, "leaf1", "leaf2", "spine1", pol=lenient)
    mid = put(te, fab, 2, "leaf1", "leaf2", "spine1", pol=lenient)
    small = put(te, fab, 3, "leaf1", "leaf2", "spine1", pol=strict)
    te.update_rates({big: 40 * MBIT, mid: 30 * MBIT, small: 25 * MBIT}, now=1.0)
    background = {fab.link("leaf1", "spine3"): 10 * MBIT}
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    # big takes idle spine2; then spine2 (40) looks busier than spine3 (10) to mid.
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [
        (big, "spine2"),
        (mid, "spine3"),
    ]


def test_recent_placements_steer_the_rebalancer_too() -> None:
    fab = leaf_spine(3, 3, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=30.0)
    a = put(te, fab, 1, "leaf1", "leaf2", "spine1")
    b = put(te, fab, 2, "leaf1", "leaf2", "spine1")
    te.update_rates({a: 50 * MBIT, b: 45 * MBIT}, now=1.0)
    # Just placed on spine2, measured nowhere yet: 30 Mbit/s reserved there.
    fresh = te.place(
        five_tuple(9),
        dscp=26,
        ingress=fab.host_port("leaf3"),
        egress=fab.host_port("leaf2"),
        policy=policy(Strategy.PINNED, pinned_path=("spine2",)),
        view=fab.view(),
        now=9.0,
        demand_bps=30 * MBIT,
    )
    assert on(fab, te, fresh.flow.flow_id) == "spine2"
    measured = loads(te)
    for lid in fresh.flow.path.links:
        measured[lid] -= 30 * MBIT  # the counters do not show it yet
    outcome = rebalance(te, fab.view(load=measured))
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [(a, "spine3")]


# ------------------------------------------------------------ which flows may move
def test_a_fallen_back_pinned_flow_moves_only_if_its_fallback_balances_by_load() -> None:
    for fallback, moves in ((Strategy.LEAST_UTILIZED, True), (Strategy.ECMP, False)):
        fab = leaf_spine(3, 2, capacity_bps=100 * MBIT)
        te = TrafficEngineer(visibility_s=0.0)
        pinned = policy(Strategy.PINNED, pinned_path=("spine3",), fallback=fallback)
        cut = fab.cable("spine3", "leaf2")
        view = fab.view(graph=fab.graph_without(links=cut))
        ids = []
        for i in range(2):
            placed = te.place(
                five_tuple(i),
                dscp=26,
                ingress=fab.host_port("leaf1"),
                egress=fab.host_port("leaf2"),
                policy=pinned,
                view=replace(view, drained=frozenset(fab.cable("leaf1", "spine2"))),
                now=0.0,
                demand_bps=1 * MBIT,
            )
            assert placed.flow.fell_back and on(fab, te, placed.flow.flow_id) == "spine1"
            ids.append(placed.flow.flow_id)
        te.update_rates(dict.fromkeys(ids, 45 * MBIT), now=1.0)
        outcome = rebalance(te, replace(view, load_bps=loads(te)))
        assert bool(outcome.moves) is moves, fallback
        assert outcome.hot  # hot either way


def test_an_unmovable_elephant_does_not_stop_smaller_flows_leaving() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    pinned = put(
        te, fab, 1, "leaf1", "leaf2", "spine1", pol=policy(Strategy.PINNED, pinned_path=("spine1",))
    )
    ecmp = put(te, fab, 2, "leaf1", "leaf2", "spine1", pol=policy(Strategy.ECMP, name="e"))
    small = put(te, fab, 3, "leaf1", "leaf2", "spine1")
    te.update_rates({pinned: 50 * MBIT, ecmp: 30 * MBIT, small: 15 * MBIT}, now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [(small, "spine2")]


def test_a_flow_measured_idle_is_never_moved() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    idle = put(te, fab, 1, "leaf1", "leaf2", "spine1")
    busy = put(te, fab, 2, "leaf1", "leaf2", "spine1")
    te.update_rates({idle: 0.0, busy: 60 * MBIT}, now=1.0)
    background = {fab.link("leaf1", "spine1"): 35 * MBIT}
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    assert [m.flow_id for m in outcome] == [busy]
    assert idle not in outcome.stuck and on(fab, te, idle) == "spine1"


def test_the_hold_down_ends_exactly_after_min_move_interval() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    a = put(te, fab, 1, "leaf1", "leaf2", "spine1", now=8.0)
    b = put(te, fab, 2, "leaf1", "leaf2", "spine1", now=8.0)
    te.update_rates({a: 50 * MBIT, b: 45 * MBIT}, now=9.0)
    early = rebalance(te, fab.view(load=loads(te)), now=9.5)
    assert early.moves == () and set(early.held) == {a, b}
    exact = rebalance(te, fab.view(load=loads(te)), now=10.0)  # placed at 8, hold 2 s
    assert [m.flow_id for m in exact] == [a]


def test_a_flow_held_on_two_hot_links_is_reported_once() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    a = put(te, fab, 1, "leaf1", "leaf2", "spine1", now=9.0)
    b = put(te, fab, 2, "leaf1", "leaf2", "spine1", now=9.0)
    te.update_rates({a: 50 * MBIT, b: 45 * MBIT}, now=9.5)
    outcome = rebalance(te, fab.view(load=loads(te)), now=10.0)
    assert len(outcome.hot) == 2
    assert sorted(outcome.held) == sorted({a, b})


def test_a_flow_on_two_hot_links_moves_once() -> None:
    fab = leaf_spine(3, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    a = put(te, fab, 1, "leaf1", "leaf2", "spine1")
    b = put(te, fab, 2, "leaf1", "leaf2", "spine1")
    te.update_rates({a: 50 * MBIT, b: 45 * MBIT}, now=1.0)
    # spine1 -> leaf2 also carries 40 of someone else's: still hot after a leaves.
    background = {fab.link("spine1", "leaf2"): 40 * MBIT}
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    moved = [m.flow_id for m in outcome]
    assert moved == [a, b] and len(set(moved)) == len(moved)


# ------------------------------------------------------------------- thresholds
def test_a_link_exactly_at_its_threshold_is_not_hot() -> None:
    fab = leaf_spine(2, 4, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    a = put(te, fab, 1, "leaf1", "leaf2", "spine1")
    b = put(te, fab, 2, "leaf1", "leaf2", "spine1")
    # A stricter policy elsewhere, on a quiet link.
    quiet = put(te, fab, 3, "leaf3", "leaf4", "spine2", pol=policy(name="s", threshold=0.5))
    te.update_rates({a: 50 * MBIT, b: 30 * MBIT, quiet: 1 * MBIT}, now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert outcome.hot == () and outcome.moves == ()


def test_moving_stops_once_the_link_is_exactly_at_its_threshold() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    ids = [put(te, fab, i, "leaf1", "leaf2", "spine1") for i in range(5)]
    te.update_rates(dict.fromkeys(ids, 20 * MBIT), now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert [m.flow_id for m in outcome] == [ids[0]]  # 100% -> 80%: not above 80%


def test_the_strictest_policy_sets_how_hot_is_hot() -> None:
    fab = leaf_spine(2, 4, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    strict = policy(name="strict", threshold=0.5)
    lenient = policy(name="lenient", threshold=0.9)
    a = put(te, fab, 1, "leaf1", "leaf2", "spine1", pol=strict)
    b = put(te, fab, 2, "leaf1", "leaf2", "spine1", pol=strict)
    far = put(te, fab, 3, "leaf3", "leaf4", "spine2", pol=lenient)  # placed last
    te.update_rates({a: 40 * MBIT, b: 30 * MBIT, far: 10 * MBIT}, now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te)))  # spine1 at 70% > 50%
    assert [m.flow_id for m in outcome] == [a]


# ------------------------------------------------------------------ idle and lone
def test_a_nearly_idle_link_takes_an_elephant_that_alone_exceeds_the_threshold() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    big = put(te, fab, 1, "leaf1", "leaf2", "spine1")
    other = put(te, fab, 2, "leaf1", "leaf2", "spine1")
    te.update_rates({big: 85 * MBIT, other: 14 * MBIT}, now=1.0)
    background = {fab.link("leaf1", "spine2"): 2 * MBIT}  # 2%: idle enough
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [(big, "spine2")]


def test_a_lone_elephant_with_a_little_company_is_not_contended() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    big = put(te, fab, 1, "leaf1", "leaf2", "spine1")
    te.update_rates({big: 88 * MBIT}, now=1.0)
    background = {fab.link("leaf1", "spine1"): 6 * MBIT}  # 94% in all, 6% besides it
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    assert outcome.hot == () and outcome.moves == ()


# -------------------------------------------------------------- two-flow trades
def ring(
    *, c_now: float = 0.0, c_policy: Policy = LU, max_moves: int = 8
) -> tuple[Fabric, TrafficEngineer, dict[str, int]]:
    """a and b (10 each) collided on leaf1 -> spine1 (20 Mbit/s links); spine2, where
    each could go, is full towards its destination with c (leaf3 -> leaf2) and d
    (leaf2 -> leaf3), which could take spine1 once a or b left it."""
    fab = leaf_spine(2, 3, capacity_bps=20 * MBIT)
    te = TrafficEngineer(visibility_s=0.0, max_moves_per_round=max_moves)
    ids = {
        "a": put(te, fab, 1, "leaf1", "leaf2", "spine1"),
        "b": put(te, fab, 2, "leaf1", "leaf3", "spine1"),
        "c": put(te, fab, 3, "leaf3", "leaf2", "spine2", pol=c_policy, now=c_now),
        "d": put(te, fab, 4, "leaf2", "leaf3", "spine2"),
    }
    rates = {"a": 10 * MBIT, "b": 10 * MBIT, "c": 19 * MBIT, "d": 19 * MBIT}
    te.update_rates({ids[k]: rates[k] for k in ids}, now=c_now + 0.1)
    return fab, te, ids


def traded(fab: Fabric, te: TrafficEngineer, outcome: Outcome, ids: dict[str, int]) -> list:
    names = {v: k for k, v in ids.items()}
    return [(names[m.flow_id], on(fab, te, m.flow_id)) for m in outcome]


def test_a_blocking_flow_makes_room_and_says_for_whom() -> None:
    fab, te, ids = ring(max_moves=2)
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert traded(fab, te, outcome, ids) == [("c", "spine1"), ("a", "spine2")]
    assert outcome.moves[0].detail == (
        f"makes room on {fab.link('spine2', 'leaf2')} for flow {ids['a']}"
    )


def test_a_blocking_flow_inside_its_hold_down_does_not_trade() -> None:
    fab, te, ids = ring(c_now=9.5)
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert traded(fab, te, outcome, ids) == [("d", "spine1"), ("b", "spine2")]
    assert ids["a"] in outcome.stuck


def test_a_blocking_flow_whose_hold_down_just_ended_trades() -> None:
    fab, te, ids = ring(c_now=8.0)  # hold 2 s, round at t = 10
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert traded(fab, te, outcome, ids) == [("c", "spine1"), ("a", "spine2")]


def test_a_blocking_flow_of_a_hashing_policy_does_not_trade() -> None:
    fab, te, ids = ring(c_policy=policy(Strategy.ECMP, name="hash"))
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert traded(fab, te, outcome, ids) == [("d", "spine1"), ("b", "spine2")]


def test_the_largest_movable_blocker_makes_room() -> None:
    for held in (False, True):
        fab = leaf_spine(2, 3, capacity_bps=20 * MBIT)
        te = TrafficEngineer(visibility_s=0.0)
        a = put(te, fab, 1, "leaf1", "leaf2", "spine1")
        b = put(te, fab, 2, "leaf1", "leaf3", "spine1")
        big = put(te, fab, 3, "leaf3", "leaf2", "spine2", now=9.5 if held else 0.0)
        small = put(te, fab, 4, "leaf3", "leaf2", "spine2")
        rates = {a: 10 * MBIT, b: 10 * MBIT, big: 6 * MBIT, small: 5 * MBIT}
        te.update_rates(rates, now=9.6)
        outcome = rebalance(te, fab.view(load=loads(te)))
        blocker = small if held else big
        assert [m.flow_id for m in outcome] == [blocker, a], held
        assert on(fab, te, blocker) == "spine1" and on(fab, te, a) == "spine2"


# ------------------------------------------------------------- three tiers
def test_a_path_sharing_the_flows_own_uplink_must_fit_beyond_it() -> None:
    fab = three_tier(pods=2, leaves_per_pod=1, aggs_per_pod=2, spines=2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    shortest = policy(Strategy.SHORTEST)
    f = put(te, fab, 1, "leaf1-1", "leaf2-1", ("agg1-1", "spine1", "agg2-1"), pol=shortest)
    te.update_rates({f: 40 * MBIT}, now=1.0)
    background = {
        fab.link("spine1", "agg2-1"): 50 * MBIT,  # the hot link
        fab.link("agg2-2", "leaf2-1"): 90 * MBIT,  # the next sorted path ends here
    }
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    assert [fab.path_names(m.new_path.switches) for m in outcome] == [
        ("leaf1-1", "agg1-1", "spine2", "agg2-1", "leaf2-1")
    ]


def test_a_flow_is_not_counted_against_links_it_already_uses() -> None:
    fab = three_tier(pods=2, leaves_per_pod=1, aggs_per_pod=2, spines=2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    f = put(te, fab, 1, "leaf1-1", "leaf2-1", ("agg1-1", "spine1", "agg2-1"))
    te.update_rates({f: 30 * MBIT}, now=1.0)
    background = {
        fab.link("spine1", "agg2-1"): 55 * MBIT,  # hot: 85%
        fab.link("leaf1-1", "agg1-2"): 20 * MBIT,  # the other uplink is in use
    }
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    (move,) = outcome.moves
    # Its own uplink carries only itself: 30% with it, less than 50% on the other.
    assert fab.path_names(move.new_path.switches)[1] == "agg1-1"


def test_an_idle_flow_beside_an_unmovable_elephant_is_left_alone() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    pinned = policy(Strategy.PINNED, pinned_path=("spine1",))
    elephant = put(te, fab, 1, "leaf1", "leaf2", "spine1", pol=pinned)
    idle = put(te, fab, 2, "leaf1", "leaf2", "spine1")
    te.update_rates({elephant: 50 * MBIT, idle: 0.0}, now=1.0)
    background = {fab.link("leaf1", "spine1"): 40 * MBIT}
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    assert outcome.hot and outcome.moves == () and outcome.stuck == ()


def test_a_link_keeps_the_threshold_of_its_strict_resident_after_a_flow_joins() -> None:
    """T (spine2) carries a strict pinned flow (50%). m1 joins it (40% in all); m2
    would take it to 60%: fine for m2's own 90%, not for the resident's 50%."""
    fab = leaf_spine(2, 3, capacity_bps=100 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    lenient = policy(name="lenient", threshold=0.9)
    pinned_strict = policy(Strategy.PINNED, name="pin2", threshold=0.5, pinned_path=("spine2",))
    resident = put(te, fab, 1, "leaf3", "leaf2", "spine2", pol=pinned_strict)
    anchor = put(
        te,
        fab,
        2,
        "leaf1",
        "leaf2",
        "spine1",
        pol=policy(Strategy.PINNED, name="pin", threshold=0.5, pinned_path=("spine1",)),
    )
    m1 = put(te, fab, 3, "leaf1", "leaf2", "spine1", pol=lenient)
    m2 = put(te, fab, 4, "leaf1", "leaf2", "spine1", pol=lenient)
    rates = {resident: 10 * MBIT, anchor: 35 * MBIT, m1: 30 * MBIT, m2: 20 * MBIT}
    te.update_rates(rates, now=1.0)
    outcome = rebalance(te, fab.view(load=loads(te)))
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [(m1, "spine2")]
    assert m2 in outcome.stuck


def test_the_rebalancer_ranks_targets_with_the_flows_own_rate() -> None:
    fab = leaf_spine(3, 2, capacity_bps=100 * MBIT)
    capacity = dict(fab.capacity)
    for lid in fab.links_of("spine3"):
        capacity[lid] = 400 * MBIT
    te = TrafficEngineer(visibility_s=0.0)
    f = put(te, fab, 1, "leaf1", "leaf2", "spine1")
    g = put(te, fab, 2, "leaf1", "leaf2", "spine1")
    te.update_rates({f: 60 * MBIT, g: 30 * MBIT}, now=1.0)
    background = {fab.link("leaf1", "spine2"): 10 * MBIT, fab.link("leaf1", "spine3"): 100 * MBIT}
    view = NetworkView(
        graph=fab.graph, capacity=capacity, load_bps=loads(te, background), names=fab.names
    )
    outcome = rebalance(te, view)
    # Alone spine2 looks emptier (10% vs 25%); with f's 60 it is 70% vs 40%.
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [(f, "spine3")]


def test_a_trade_looks_past_a_path_blocked_twice() -> None:
    fab = leaf_spine(3, 3, capacity_bps=20 * MBIT)
    te = TrafficEngineer(visibility_s=0.0)
    shortest = policy(Strategy.SHORTEST)
    a = put(te, fab, 1, "leaf1", "leaf2", "spine1", pol=shortest)
    b = put(te, fab, 2, "leaf1", "leaf3", "spine1", pol=shortest)
    blocker = put(te, fab, 3, "leaf3", "leaf2", "spine3")
    te.update_rates({a: 10 * MBIT, b: 10 * MBIT, blocker: 19 * MBIT}, now=1.0)
    # spine2 is full both ways for a (two blocked links); spine3 only towards leaf2.
    background = {fab.link("leaf1", "spine2"): 19 * MBIT, fab.link("spine2", "leaf2"): 19 * MBIT}
    outcome = rebalance(te, fab.view(load=loads(te, background)))
    assert [(m.flow_id, on(fab, te, m.flow_id)) for m in outcome] == [
        (blocker, "spine1"),
        (a, "spine3"),
    ]
