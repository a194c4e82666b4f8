"""What each routing strategy decides and says, on fabrics whose answer is known by hand.

These tests pin the decisions a user sees in ``fabricctl explain`` and in the
event stream: the path, the strategy that chose it, whether a pinned policy
fell back, and the sentence that explains it. Loads are chosen so that a
strategy that ignored one of its inputs (recent placements, the flow's own
demand, capacities, drains, the seed) would pick a different path.
"""

from __future__ import annotations

from typing import Any

import pytest
from synthetic import GBIT, Fabric, asymmetric, five_tuple, leaf_spine, three_tier

from controller.errors import InvalidArgument
from controller.fabric.model import LinkId, Path
from controller.policy.model import Policy, Strategy
from controller.routing.hashing import flow_bucket
from controller.routing.paths import PathCache
from controller.routing.strategies import (
    Choice,
    FlowRequest,
    NetworkView,
    choose_path,
    pinned_route,
    rank_paths,
    usable_candidates,
)


def policy(strategy: Strategy, **kw: Any) -> Policy:
    return Policy(name="ai", priority=10, strategy=strategy, **kw)


def request(
    fab: Fabric, *, src: str = "leaf1", dst: str = "leaf2", i: int = 0, demand: float = 0.0
) -> FlowRequest:
    return FlowRequest(five_tuple(i), fab.dpid(src), fab.dpid(dst), demand)


def candidates(
    fab: Fabric, view: NetworkView, *, src: str = "leaf1", dst: str = "leaf2"
) -> list[Path]:
    found, _ = usable_candidates(
        PathCache(view.graph), src=fab.dpid(src), dst=fab.dpid(dst), view=view
    )
    return found


def choose(
    fab: Fabric,
    strategy: Strategy,
    *,
    view: NetworkView | None = None,
    pol: Policy | None = None,
    extra: dict[LinkId, float] | None = None,
    demand: float = 0.0,
    seed: int = 0,
    i: int = 0,
    src: str = "leaf1",
    dst: str = "leaf2",
) -> Choice:
    view = view or fab.view()
    return choose_path(
        strategy,
        candidates(fab, view, src=src, dst=dst),
        flow=request(fab, src=src, dst=dst, i=i, demand=demand),
        view=view,
        policy=pol or policy(strategy),
        seed=seed,
        extra_load=extra or {},
        paths=PathCache(view.graph),
    )


def rank(
    fab: Fabric,
    strategy: Strategy,
    *,
    view: NetworkView | None = None,
    pol: Policy | None = None,
    extra: dict[LinkId, float] | None = None,
    demand: float = 0.0,
    seed: int = 0,
    i: int = 0,
) -> list[str]:
    """The spines of leaf1 -> leaf2's candidates in ``strategy``'s order."""
    view = view or fab.view()
    ranked = rank_paths(
        strategy,
        candidates(fab, view),
        flow=request(fab, i=i, demand=demand),
        view=view,
        policy=pol or policy(strategy),
        seed=seed,
        extra_load=extra or {},
    )
    return [fab.names[p.switches[1]] for p in ranked]


def spine(fab: Fabric, choice: Choice) -> str:
    return fab.names[choice.path.switches[1]]


# ------------------------------------------------------------ what a choice says
@pytest.mark.parametrize(
    ("strategy", "reason"),
    [
        (Strategy.SHORTEST, "shortest: first of 3 sorted paths"),
        (Strategy.LEAST_UTILIZED, "least-utilized: peak utilization 0% (best of 3)"),
        (Strategy.WIDEST, "widest: bottleneck residual 10000.0 Mbit/s (best of 3)"),
        (Strategy.WEIGHTED, "weighted: rendezvous over 3 of 3 paths with weight > 0"),
    ],
)
def test_every_strategy_names_itself_and_does_not_claim_a_fallback(
    strategy: Strategy, reason: str
) -> None:
    fab = leaf_spine(3, 2)
    choice = choose(fab, strategy)
    assert (choice.strategy, choice.fell_back, choice.reason) == (strategy, False, reason)


def test_ecmp_says_which_hash_bucket_it_took() -> None:
    fab = leaf_spine(3, 2)
    for i in range(6):
        bucket = flow_bucket(five_tuple(i), 3, seed=5)
        choice = choose(fab, Strategy.ECMP, i=i, seed=5)
        assert (choice.strategy, choice.fell_back) == (Strategy.ECMP, False)
        assert choice.reason == f"ecmp: hash bucket {bucket} of 3"
        assert spine(fab, choice) == f"spine{bucket + 1}"


def test_widest_reports_the_bottleneck_residual_in_mbit_per_s() -> None:
    fab = leaf_spine(2, 2, capacity_bps=100e6)
    load = {fab.link("leaf1", "spine1"): 60e6, fab.link("spine2", "leaf2"): 75e6}
    choice = choose(fab, Strategy.WIDEST, view=fab.view(load=load))
    assert spine(fab, choice) == "spine1"
    assert choice.reason == "widest: bottleneck residual 40.0 Mbit/s (best of 2)"


def test_weighted_with_every_weight_zero_hashes_over_all_paths_and_says_so() -> None:
    fab = leaf_spine(3, 2)
    zero = policy(Strategy.WEIGHTED, weights=(("spine1", 0.0), ("spine2", 0.0), ("spine3", 0.0)))
    for i in range(5):
        choice = choose(fab, Strategy.WEIGHTED, pol=zero, i=i, seed=9)
        bucket = flow_bucket(five_tuple(i), 3, seed=9)
        assert spine(fab, choice) == f"spine{bucket + 1}"
        assert (choice.strategy, choice.fell_back) == (Strategy.WEIGHTED, False)
        assert choice.reason == "weighted: every candidate weighs 0; hashed over all 3"


def test_weighted_counts_only_paths_of_positive_weight() -> None:
    fab = leaf_spine(3, 2)
    pol = policy(Strategy.WEIGHTED, weights=(("spine3", 0.0),))
    choice = choose(fab, Strategy.WEIGHTED, pol=pol)
    assert choice.reason == "weighted: rendezvous over 2 of 3 paths with weight > 0"
    assert rank(fab, Strategy.WEIGHTED, pol=pol, i=3) in (
        ["spine1", "spine2"],
        ["spine2", "spine1"],
    )


# ------------------------------------------------------- least-utilized, widest
def test_least_utilized_counts_the_flows_own_demand() -> None:
    """An 8 Gbit/s flow would fill the lightly loaded 10G spine but only half of the
    busier 40G one: with its own demand counted, the big spine is the better place."""
    fab = asymmetric()  # leaf1-leaf2 via spine1 at 10G or via spine2 at 40G
    load = {fab.link("leaf1", "spine1"): 2 * GBIT, fab.link("leaf1", "spine2"): 12 * GBIT}
    view = fab.view(load=load)
    # Without demand: spine1 20% < spine2 30%. With 8 Gbit/s of demand: spine1
    # (2+8)/10 = 100% > spine2 (12+8)/40 = 50%.
    assert spine(fab, choose(fab, Strategy.LEAST_UTILIZED, view=view)) == "spine1"
    big = choose(fab, Strategy.LEAST_UTILIZED, view=view, demand=8 * GBIT)
    assert spine(fab, big) == "spine2"
    assert big.reason == "least-utilized: peak utilization 50% (best of 2)"
    assert rank(fab, Strategy.LEAST_UTILIZED, view=view, demand=8 * GBIT) == ["spine2", "spine1"]


def test_least_utilized_treats_a_negative_estimate_as_idle_not_as_spare_room() -> None:
    fab = leaf_spine(2, 2)
    # A move took 3G off spine2's links that the counters never showed: the
    # estimate goes negative, which must not beat an idle spine1 (sorted first).
    extra = {fab.link("leaf1", "spine2"): -3 * GBIT, fab.link("spine2", "leaf2"): -3 * GBIT}
    assert spine(fab, choose(fab, Strategy.LEAST_UTILIZED, extra=extra)) == "spine1"
    assert spine(fab, choose(fab, Strategy.WIDEST, extra=extra)) == "spine1"
    # And a spine whose estimate went negative is as idle as one with nothing.
    extra = {fab.link("leaf1", "spine1"): -3 * GBIT}
    assert spine(fab, choose(fab, Strategy.LEAST_UTILIZED, extra=extra)) == "spine1"
    assert spine(fab, choose(fab, Strategy.WIDEST, extra=extra)) == "spine1"


def test_least_utilized_compares_the_peak_link_then_the_sum() -> None:
    fab = leaf_spine(3, 2)
    load = {
        # spine1: a hot downlink (70%)
        fab.link("spine1", "leaf2"): 7 * GBIT,
        # spine2: two links at 40%: peak 40%, sum 80%
        fab.link("leaf1", "spine2"): 4 * GBIT,
        fab.link("spine2", "leaf2"): 4 * GBIT,
        # spine3: one link at 40%, one idle: peak 40%, sum 40%
        fab.link("spine3", "leaf2"): 4 * GBIT,
    }
    view = fab.view(load=load)
    assert rank(fab, Strategy.LEAST_UTILIZED, view=view) == ["spine3", "spine2", "spine1"]
    assert spine(fab, choose(fab, Strategy.LEAST_UTILIZED, view=view)) == "spine3"


def test_widest_counts_recent_placements_the_counters_do_not_show_yet() -> None:
    fab = leaf_spine(2, 2)
    measured = fab.view(load={fab.link("leaf1", "spine1"): 2 * GBIT})
    assert spine(fab, choose(fab, Strategy.WIDEST, view=measured)) == "spine2"
    # Two flows just placed on spine2 (8G in all, not measured yet) leave 2G there.
    recent = {fab.link("leaf1", "spine2"): 8 * GBIT}
    assert spine(fab, choose(fab, Strategy.WIDEST, view=measured, extra=recent)) == "spine1"
    assert rank(fab, Strategy.WIDEST, view=measured, extra=recent) == ["spine1", "spine2"]
    # Recent load on the downlink counts just the same.
    recent = {fab.link("spine2", "leaf2"): 8 * GBIT}
    assert spine(fab, choose(fab, Strategy.WIDEST, view=measured, extra=recent)) == "spine1"


def test_widest_breaks_a_bottleneck_tie_by_total_utilization() -> None:
    fab = leaf_spine(2, 2)
    # Both paths keep 4G at their bottleneck (a 6G downlink); spine1's path also
    # carries 3G on its uplink, so spine2 is the less used of the two.
    load = {
        fab.link("leaf1", "spine1"): 3 * GBIT,
        fab.link("spine1", "leaf2"): 6 * GBIT,
        fab.link("spine2", "leaf2"): 6 * GBIT,
    }
    view = fab.view(load=load)
    assert spine(fab, choose(fab, Strategy.WIDEST, view=view)) == "spine2"
    assert rank(fab, Strategy.WIDEST, view=view) == ["spine2", "spine1"]


def test_widest_tie_break_weighs_links_by_their_capacity() -> None:
    fab = asymmetric()  # spine1 at 10G, spine2 at 40G
    # Both keep 5G at the bottleneck. Utilization summed: spine1 (5+4)/10 = 0.9,
    # spine2 35/40 = 0.875, so spine2 is the less utilized.
    load = {
        fab.link("leaf1", "spine1"): 5 * GBIT,
        fab.link("spine1", "leaf2"): 4 * GBIT,
        fab.link("leaf1", "spine2"): 35 * GBIT,
    }
    view = fab.view(load=load)
    assert spine(fab, choose(fab, Strategy.WIDEST, view=view)) == "spine2"


def test_widest_and_least_utilized_use_a_stand_in_for_unknown_capacity() -> None:
    fab = leaf_spine(2, 2)
    load = {fab.link("leaf1", "spine1"): 1e6}
    # Capacity 0 means "unknown": the 1 Gbit/s stand-in keeps loads comparable.
    zero = {lid: 0.0 for lid in fab.capacity}
    view = NetworkView(graph=fab.graph, capacity=zero, load_bps=load, names=fab.names)
    for strategy in (Strategy.WIDEST, Strategy.LEAST_UTILIZED):
        assert spine(fab, choose(fab, strategy, view=view)) == "spine2"
    widest = choose(fab, Strategy.WIDEST, view=view)
    assert widest.reason == "widest: bottleneck residual 1000.0 Mbit/s (best of 2)"
    assert view.capacity_of(fab.link("leaf1", "spine1")) == 1e9
    assert fab.view().capacity_of(fab.link("leaf1", "spine1")) == 10 * GBIT
    small = NetworkView(graph=fab.graph, capacity={fab.link("leaf1", "spine1"): 0.5})
    assert small.capacity_of(fab.link("leaf1", "spine1")) == 0.5


def test_widest_with_a_tiny_known_capacity_is_not_taken_for_unknown() -> None:
    fab = leaf_spine(2, 2)
    cap = dict(fab.capacity)
    cap[fab.link("leaf1", "spine1")] = 1e6  # a 1 Mbit/s link, known
    view = NetworkView(graph=fab.graph, capacity=cap, names=fab.names)
    assert spine(fab, choose(fab, Strategy.WIDEST, view=view)) == "spine2"
    assert spine(fab, choose(fab, Strategy.LEAST_UTILIZED, view=view, demand=1e6)) == "spine2"


# --------------------------------------------------------------- ranking orders
def test_rank_paths_orders_widest_and_weighted_and_keeps_shortest_order() -> None:
    fab = leaf_spine(3, 2)
    load = {fab.link("leaf1", "spine1"): 7 * GBIT, fab.link("leaf1", "spine3"): 2 * GBIT}
    view = fab.view(load=load)
    assert rank(fab, Strategy.WIDEST, view=view) == ["spine2", "spine3", "spine1"]
    assert rank(fab, Strategy.SHORTEST, view=view) == ["spine1", "spine2", "spine3"]
    pol = policy(Strategy.WEIGHTED, weights=(("spine2", 0.0),))
    for i in range(20):
        order = rank(fab, Strategy.WEIGHTED, pol=pol, i=i)
        first = spine(fab, choose(fab, Strategy.WEIGHTED, pol=pol, i=i))
        assert sorted(order) == ["spine1", "spine3"] and order[0] == first


def test_rank_paths_ecmp_starts_at_the_hash_bucket_and_wraps_around() -> None:
    fab = leaf_spine(4, 2)
    for i in range(8):
        bucket = flow_bucket(five_tuple(i), 4, seed=3)
        expected = [f"spine{(bucket + k) % 4 + 1}" for k in range(4)]
        assert rank(fab, Strategy.ECMP, i=i, seed=3) == expected


def test_rank_paths_of_a_pinned_policy_follows_its_fallback() -> None:
    fab = leaf_spine(3, 2)
    view = fab.view(load={fab.link("leaf1", "spine1"): 5 * GBIT})
    pol = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.LEAST_UTILIZED)
    assert rank(fab, Strategy.PINNED, view=view, pol=pol) == ["spine2", "spine3", "spine1"]
    # A pinned fallback cannot recurse: it reads as "shortest".
    loop = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.PINNED)
    assert rank(fab, Strategy.PINNED, view=view, pol=loop) == ["spine1", "spine2", "spine3"]


def test_rank_paths_of_one_candidate_is_that_candidate() -> None:
    fab = asymmetric()
    view = fab.view()
    only = candidates(fab, view, dst="leaf3")
    for strategy in (Strategy.ECMP, Strategy.LEAST_UTILIZED, Strategy.WIDEST, Strategy.SHORTEST):
        ranked = rank_paths(
            strategy,
            only,
            flow=request(fab, dst="leaf3"),
            view=view,
            policy=policy(strategy),
            seed=0,
        )
        assert ranked == only
    assert (
        rank_paths(
            Strategy.WIDEST,
            [],
            flow=request(fab),
            view=view,
            policy=policy(Strategy.WIDEST),
            seed=0,
        )
        == []
    )


def test_an_unsupported_strategy_is_a_precise_error() -> None:
    fab = leaf_spine(2, 2)
    view = fab.view()
    fake: Any = "teleport"
    with pytest.raises(InvalidArgument) as err:
        choose_path(
            fake,
            candidates(fab, view),
            flow=request(fab),
            view=view,
            policy=policy(Strategy.ECMP),
            seed=0,
        )
    assert (err.value.field, err.value.reason) == ("strategy", "unsupported strategy 'teleport'")
    with pytest.raises(InvalidArgument) as err:
        rank_paths(
            fake,
            candidates(fab, view),
            flow=request(fab),
            view=view,
            policy=policy(Strategy.ECMP),
            seed=0,
        )
    assert (err.value.field, err.value.reason) == ("strategy", "unsupported strategy 'teleport'")


def test_no_candidate_error_names_both_switches() -> None:
    fab = leaf_spine(2, 2)
    with pytest.raises(InvalidArgument) as err:
        choose_path(
            Strategy.SHORTEST,
            [],
            flow=request(fab),
            view=fab.view(),
            policy=policy(Strategy.SHORTEST),
            seed=0,
        )
    assert err.value.reason == "no candidate path from leaf1 to leaf2"


# ----------------------------------------------------------------------- pinned
def test_pinned_choice_names_the_pinned_path() -> None:
    fab = leaf_spine(2, 2)
    pol = policy(Strategy.PINNED, pinned_path=("spine2",))
    choice = choose(fab, Strategy.PINNED, pol=pol)
    assert (spine(fab, choice), choice.strategy, choice.fell_back) == (
        "spine2",
        Strategy.PINNED,
        False,
    )
    assert choice.reason == "pinned: leaf1 -> spine2 -> leaf2"


def test_pinned_fallback_uses_the_fallback_strategy_with_recent_load_and_seed() -> None:
    fab = leaf_spine(3, 2)
    down = fab.graph_without(links=fab.cable("leaf1", "spine3"))
    view = fab.view(graph=down, load={fab.link("leaf1", "spine1"): 5 * GBIT})
    pol = policy(Strategy.PINNED, pinned_path=("spine3",), fallback=Strategy.LEAST_UTILIZED)
    choice = choose(fab, Strategy.PINNED, view=view, pol=pol)
    assert (spine(fab, choice), choice.strategy, choice.fell_back) == (
        "spine2",
        Strategy.LEAST_UTILIZED,
        True,
    )
    assert choice.reason == (
        "pinned path impossible (no usable path from pinned switch spine3 to egress leaf2); "
        "fell back to least-utilized: least-utilized: peak utilization 0% (best of 2)"
    )
    # Recent placements steer the fallback too.
    extra = {fab.link("spine2", "leaf2"): 9 * GBIT}
    assert spine(fab, choose(fab, Strategy.PINNED, view=view, pol=pol, extra=extra)) == "spine1"
    # A hashing fallback hashes with the engineer's seed.
    ecmp = policy(Strategy.PINNED, pinned_path=("spine3",), fallback=Strategy.ECMP)
    for i in range(6):
        bucket = flow_bucket(five_tuple(i), 2, seed=4)
        got = choose(fab, Strategy.PINNED, view=view, pol=ecmp, seed=4, i=i)
        assert got.reason.endswith(f"ecmp: hash bucket {bucket} of 2")
    # A weighted fallback follows the policy's weights.
    weighted = policy(
        Strategy.PINNED,
        pinned_path=("spine3",),
        fallback=Strategy.WEIGHTED,
        weights=(("spine1", 0.0),),
    )
    for i in range(6):
        assert spine(fab, choose(fab, Strategy.PINNED, view=view, pol=weighted, i=i)) == "spine2"


def test_pinned_with_a_pinned_fallback_falls_back_to_shortest() -> None:
    fab = leaf_spine(2, 2)
    down = fab.view(graph=fab.graph_without(links=fab.cable("leaf1", "spine1")))
    pol = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.PINNED)
    choice = choose(fab, Strategy.PINNED, view=down, pol=pol)
    assert (spine(fab, choice), choice.strategy, choice.fell_back) == (
        "spine2",
        Strategy.SHORTEST,
        True,
    )


def test_pinned_without_any_candidate_says_why_it_cannot_fall_back() -> None:
    fab = leaf_spine(2, 2)
    pol = policy(Strategy.PINNED, pinned_path=("spine9",))
    with pytest.raises(InvalidArgument) as err:
        choose_path(
            Strategy.PINNED,
            [],
            flow=request(fab),
            view=fab.view(),
            policy=pol,
            seed=0,
        )
    assert err.value.field == "candidates"
    assert err.value.reason == (
        "pinned path impossible (pinned switch 'spine9' is not in the fabric) "
        "and no candidate to fall back on"
    )


def test_pinned_hop_is_checked_in_the_direction_of_travel() -> None:
    """spine1 -> leaf2 down while leaf2 -> spine1 still works: the pinned path
    leaf1 -> spine1 -> leaf2 is broken, and the reverse direction does not hide it."""
    fab = leaf_spine(2, 2)
    pol = policy(Strategy.PINNED, pinned_path=("leaf1", "spine1", "leaf2"))
    one_way = fab.view(graph=fab.graph_without(links=[fab.link("spine1", "leaf2")]))
    route, why = pinned_route(request(fab), view=one_way, policy=pol)
    assert route is None and why == "pinned hop spine1 -> leaf2 is down"
    # The opposite direction down does not concern this flow.
    other_way = fab.view(graph=fab.graph_without(links=[fab.link("leaf2", "spine1")]))
    route, why = pinned_route(request(fab), view=other_way, policy=pol)
    assert route is not None and fab.path_names(route.switches) == ("leaf1", "spine1", "leaf2")
    # Known-down links (not yet out of the graph) count as down, per direction too.
    route, why = pinned_route(
        request(fab), view=fab.view(), policy=pol, avoid=frozenset([fab.link("spine1", "leaf2")])
    )
    assert route is None and why == "pinned hop spine1 -> leaf2 is down"
    route, _ = pinned_route(
        request(fab), view=fab.view(), policy=pol, avoid=frozenset([fab.link("leaf2", "spine1")])
    )
    assert route is not None
    drained = fab.view(drained=[fab.link("leaf2", "spine1")])
    route, _ = pinned_route(request(fab), view=drained, policy=pol)
    assert route is not None


def test_pinned_hop_between_switches_that_are_not_cabled_is_down() -> None:
    fab = leaf_spine(2, 3)
    pol = policy(Strategy.PINNED, pinned_path=("leaf1", "leaf2"))
    route, why = pinned_route(request(fab), view=fab.view(), policy=pol)
    assert route is None and why == "pinned hop leaf1 -> leaf2 is down"


def test_pinned_connectors_avoid_down_links_and_drained_links() -> None:
    fab = three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2)
    pol = policy(Strategy.PINNED, pinned_path=("spine2",))
    flow = request(fab, src="leaf1-1", dst="leaf2-1")
    route, _ = pinned_route(flow, view=fab.view(), policy=pol)
    assert route is not None
    assert fab.path_names(route.switches) == ("leaf1-1", "agg1-1", "spine2", "agg2-1", "leaf2-1")
    # The first connector's first choice is down: the next shortest one is used.
    avoid = frozenset([fab.link("agg1-1", "spine2")])
    route, _ = pinned_route(flow, view=fab.view(), policy=pol, avoid=avoid)
    assert route is not None
    assert fab.path_names(route.switches) == ("leaf1-1", "agg1-2", "spine2", "agg2-1", "leaf2-1")
    # A drained link counts the same for connectors.
    drained = fab.view(drained=[fab.link("spine2", "agg2-1")])
    route, _ = pinned_route(flow, view=drained, policy=pol)
    assert route is not None
    assert fab.path_names(route.switches) == ("leaf1-1", "agg1-1", "spine2", "agg2-2", "leaf2-1")


def test_pinned_route_builds_its_own_paths_for_another_graph() -> None:
    fab = leaf_spine(2, 2)
    pol = policy(Strategy.PINNED, pinned_path=("spine1",))
    down = fab.graph_without(links=[fab.link("spine1", "leaf2")])
    stale = PathCache(fab.graph)  # paths of the fabric before the failure
    route, why = pinned_route(request(fab), view=fab.view(graph=down), policy=pol, paths=stale)
    assert route is None and "spine1 to egress leaf2" in why
    route, _ = pinned_route(request(fab), view=fab.view(), policy=pol)  # no cache given
    assert route is not None and fab.path_names(route.switches) == ("leaf1", "spine1", "leaf2")


def test_pinned_route_of_a_flow_inside_one_pinned_switch() -> None:
    fab = leaf_spine(2, 2)
    pol = policy(Strategy.PINNED, pinned_path=("leaf1",))
    route, why = pinned_route(request(fab, dst="leaf1"), view=fab.view(), policy=pol)
    assert (route, why) == (Path(switches=(fab.dpid("leaf1"),)), "")
    full = policy(Strategy.PINNED, pinned_path=("leaf1", "spine1", "leaf2"))
    route, why = pinned_route(request(fab), view=fab.view(), policy=full)
    assert why == "" and route == Path.of_links(
        (fab.link("leaf1", "spine1"), fab.link("spine1", "leaf2"))
    )


def test_pinned_route_reasons() -> None:
    fab = leaf_spine(2, 2)
    route, why = pinned_route(request(fab), view=fab.view(), policy=policy(Strategy.PINNED))
    assert (route, why) == (None, "the policy names no pinned_path")
    twice = policy(Strategy.PINNED, pinned_path=("leaf1", "spine1", "leaf1"))
    assert pinned_route(request(fab), view=fab.view(), policy=twice) == (
        None,
        "the pinned path repeats a switch",
    )
    by_dpid = policy(Strategy.PINNED, pinned_path=(f"{fab.dpid('spine2'):016x}",))
    route, _ = pinned_route(request(fab), view=fab.view(), policy=by_dpid)
    assert route is not None and fab.path_names(route.switches)[1] == "spine2"
    unknown = policy(Strategy.PINNED, pinned_path=(f"{0xABCDEF:016x}",))
    assert pinned_route(request(fab), view=fab.view(), policy=unknown) == (
        None,
        f"pinned switch '{0xABCDEF:016x}' is not in the fabric",
    )


def test_unnamed_switches_are_labelled_by_dpid() -> None:
    fab = leaf_spine(2, 2)
    view = NetworkView(graph=fab.graph, capacity=fab.capacity)
    dpid = fab.dpid("spine1")
    assert view.label(dpid) == f"{dpid:016x}"
    assert view.dpid_of(f"{dpid:016x}") == dpid
    assert view.dpid_of("not-a-hex-dpid!") is None


# ------------------------------------------------------------------- candidates
def test_usable_candidates_leave_out_drained_paths_without_a_note() -> None:
    fab = leaf_spine(3, 2)
    view = fab.view(drained=[fab.link("spine2", "leaf2")])
    found, note = usable_candidates(
        PathCache(fab.graph), src=fab.dpid("leaf1"), dst=fab.dpid("leaf2"), view=view
    )
    assert [fab.names[p.switches[1]] for p in found] == ["spine1", "spine3"] and note == ""
    found, note = usable_candidates(
        PathCache(fab.graph), src=fab.dpid("leaf1"), dst=fab.dpid("leaf2"), view=fab.view()
    )
    assert len(found) == 3 and note == ""


def test_usable_candidates_take_a_detour_around_down_links_and_say_so() -> None:
    fab = asymmetric()
    found, note = usable_candidates(
        PathCache(fab.graph),
        src=fab.dpid("leaf1"),
        dst=fab.dpid("leaf3"),
        view=fab.view(),
        avoid=frozenset([fab.link("leaf1", "spine1")]),
    )
    assert [fab.path_names(p.switches) for p in found] == [
        ("leaf1", "spine2", "leaf2", "spine1", "leaf3")
    ]
    assert note == "every shortest path crosses a drained or down link; using a detour"


def test_usable_candidates_keep_drained_paths_that_avoid_down_links() -> None:
    fab = leaf_spine(2, 2)
    # Both spines drained, spine1's uplink also down: only the drained spine2 path is left.
    view = fab.view(drained=[fab.link("leaf1", "spine1"), fab.link("leaf1", "spine2")])
    found, note = usable_candidates(
        PathCache(fab.graph),
        src=fab.dpid("leaf1"),
        dst=fab.dpid("leaf2"),
        view=view,
        avoid=frozenset([fab.link("leaf1", "spine1")]),
    )
    assert [fab.names[p.switches[1]] for p in found] == ["spine2"]
    assert note == "every path crosses a drained link; keeping drained links over dropping"


def test_usable_candidates_between_unconnected_switches() -> None:
    fab = leaf_spine(2, 2)
    g = fab.graph.copy()
    g.add_node(0xBEEF)
    found, note = usable_candidates(
        PathCache(g), src=fab.dpid("leaf1"), dst=0xBEEF, view=fab.view(graph=g)
    )
    assert found == [] and note == f"no path from leaf1 to {0xBEEF:016x}"


# ------------------------------------------------------------ missing capacities
def test_links_without_a_known_capacity_compare_against_the_stand_in() -> None:
    fab = leaf_spine(2, 2)
    # Only spine1's links have a known capacity (10G, the uplink 95% used);
    # spine2's links are unknown and carry 100 Mbit/s, 10% of the 1 Gbit/s stand-in.
    up, down = fab.link("leaf1", "spine1"), fab.link("spine1", "leaf2")
    view = NetworkView(
        graph=fab.graph,
        capacity={up: 10 * GBIT, down: 10 * GBIT},
        load_bps={up: 9.5 * GBIT, fab.link("leaf1", "spine2"): 0.1 * GBIT},
        names=fab.names,
    )
    assert view.capacity_of(fab.link("leaf1", "spine2")) == 1e9
    assert view.capacity_of(up) == 10 * GBIT
    assert spine(fab, choose(fab, Strategy.LEAST_UTILIZED, view=view)) == "spine2"
    widest = choose(fab, Strategy.WIDEST, view=view)
    assert spine(fab, widest) == "spine2"
    assert widest.reason == "widest: bottleneck residual 900.0 Mbit/s (best of 2)"


def test_idle_paths_of_different_speeds_tie_and_the_sorted_first_wins() -> None:
    fab = asymmetric()  # spine1 at 10G sorts before spine2 at 40G
    assert spine(fab, choose(fab, Strategy.LEAST_UTILIZED)) == "spine1"
    # A flow with a demand estimate prefers the fast spine, where it weighs less.
    assert spine(fab, choose(fab, Strategy.LEAST_UTILIZED, demand=1 * GBIT)) == "spine2"


def test_widest_tie_break_counts_the_flows_own_demand() -> None:
    fab = asymmetric()
    # Both keep 5G at their bottleneck. Without demand spine1's path is the less
    # utilized (0.5 vs 0.875); a 4G flow weighs 0.4 per 10G link but only 0.1 per
    # 40G link, which turns it around (1.3 vs 1.075).
    load = {fab.link("leaf1", "spine1"): 5 * GBIT, fab.link("leaf1", "spine2"): 35 * GBIT}
    view = fab.view(load=load)
    assert spine(fab, choose(fab, Strategy.WIDEST, view=view)) == "spine1"
    assert spine(fab, choose(fab, Strategy.WIDEST, view=view, demand=4 * GBIT)) == "spine2"


# -------------------------------------------------------------------- weighted
def test_weighted_split_over_three_paths_is_proportional() -> None:
    fab = leaf_spine(3, 2)
    pol = policy(Strategy.WEIGHTED, weights=(("spine1", 1.0), ("spine2", 2.0), ("spine3", 3.0)))
    n = 6000
    counts = {s: 0 for s in fab.spines}
    for i in range(n):
        counts[spine(fab, choose(fab, Strategy.WEIGHTED, pol=pol, i=i, seed=2))] += 1
    assert counts["spine1"] / n == pytest.approx(1 / 6, abs=0.02)
    assert counts["spine2"] / n == pytest.approx(2 / 6, abs=0.02)
    assert counts["spine3"] / n == pytest.approx(3 / 6, abs=0.02)


def test_weighted_switches_left_unnamed_weigh_one() -> None:
    fab = leaf_spine(2, 2)
    pol = policy(Strategy.WEIGHTED, weights=(("spine1", 1.0),))
    n = 3000
    on_spine1 = sum(
        spine(fab, choose(fab, Strategy.WEIGHTED, pol=pol, i=i)) == "spine1" for i in range(n)
    )
    assert on_spine1 / n == pytest.approx(0.5, abs=0.03)


def test_weighted_choice_depends_on_the_seed() -> None:
    fab = leaf_spine(4, 2)
    pol = policy(Strategy.WEIGHTED, weights=(("spine1", 1.0),))
    first = [spine(fab, choose(fab, Strategy.WEIGHTED, pol=pol, i=i, seed=1)) for i in range(64)]
    again = [spine(fab, choose(fab, Strategy.WEIGHTED, pol=pol, i=i, seed=1)) for i in range(64)]
    other = [spine(fab, choose(fab, Strategy.WEIGHTED, pol=pol, i=i, seed=2)) for i in range(64)]
    assert first == again and first != other


def test_weighted_ranking_never_offers_a_path_of_weight_zero() -> None:
    fab = asymmetric()
    view = fab.view()
    only = candidates(fab, view, dst="leaf3")  # one path, through spine1
    pol = policy(Strategy.WEIGHTED, weights=(("spine1", 0.0),))
    ranked = rank_paths(
        Strategy.WEIGHTED, only, flow=request(fab, dst="leaf3"), view=view, policy=pol, seed=0
    )
    assert ranked == []


def test_pinned_choice_honours_links_known_down() -> None:
    fab = leaf_spine(2, 2)
    view = fab.view()
    pol = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.SHORTEST)
    down = frozenset([fab.link("spine1", "leaf2")])
    found, _ = usable_candidates(
        PathCache(fab.graph), src=fab.dpid("leaf1"), dst=fab.dpid("leaf2"), view=view, avoid=down
    )
    choice = choose_path(
        Strategy.PINNED,
        found,
        flow=request(fab),
        view=view,
        policy=pol,
        seed=0,
        paths=PathCache(fab.graph),
        avoid=down,
    )
    assert (spine(fab, choice), choice.fell_back) == ("spine2", True)
