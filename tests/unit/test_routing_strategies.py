"""Each routing strategy on synthetic fabrics (leaf-spine, 3-tier, asymmetric, drained)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from synthetic import GBIT, Fabric, asymmetric, five_tuple, leaf_spine, three_tier

from controller.errors import InvalidArgument
from controller.fabric.model import LinkId, Path
from controller.policy.model import Policy, Strategy
from controller.routing.paths import PathCache
from controller.routing.strategies import (
    Choice,
    FlowRequest,
    NetworkView,
    choose_path,
    rank_paths,
    usable_candidates,
)


def policy(strategy: Strategy, **kw: Any) -> Policy:
    return Policy(name="ai", priority=10, strategy=strategy, **kw)


def choose(
    fab: Fabric,
    strategy: Strategy,
    *,
    src: str = "leaf1",
    dst: str = "leaf2",
    i: int = 0,
    view: NetworkView | None = None,
    pol: Policy | None = None,
    seed: int = 0,
    extra: dict[LinkId, float] | None = None,
    demand: float = 0.0,
) -> Choice:
    view = view or fab.view()
    paths = PathCache(view.graph)
    request = FlowRequest(five_tuple(i), fab.dpid(src), fab.dpid(dst), demand)
    candidates, _ = usable_candidates(paths, src=request.ingress, dst=request.egress, view=view)
    return choose_path(
        strategy,
        candidates,
        flow=request,
        view=view,
        policy=pol or policy(strategy),
        seed=seed,
        extra_load=extra or {},
        paths=paths,
    )


def via(fab: Fabric, choice: Choice) -> tuple[str, ...]:
    return fab.path_names(choice.path.switches)


def test_shortest_takes_the_first_sorted_path() -> None:
    fab = leaf_spine(2, 4)
    assert via(fab, choose(fab, Strategy.SHORTEST)) == ("leaf1", "spine1", "leaf2")


def test_ecmp_is_deterministic_per_seed_and_spreads_over_spines() -> None:
    fab = leaf_spine(4, 4)
    first = [choose(fab, Strategy.ECMP, i=i, seed=3).path for i in range(200)]
    again = [choose(fab, Strategy.ECMP, i=i, seed=3).path for i in range(200)]
    other = [choose(fab, Strategy.ECMP, i=i, seed=4).path for i in range(200)]
    assert first == again
    assert first != other
    spines = Counter(p.switches[1] for p in first)
    assert len(spines) == 4
    assert min(spines.values()) > 25  # hash ECMP is roughly even, not exact


def test_least_utilized_avoids_the_loaded_spine_and_counts_extra_load() -> None:
    fab = leaf_spine(2, 4)
    hot = fab.link("leaf1", "spine1")
    loaded = fab.view(load={hot: 5 * GBIT})
    assert via(fab, choose(fab, Strategy.LEAST_UTILIZED, view=loaded))[1] == "spine2"
    # Load that counters do not show yet steers just the same.
    extra = {fab.link("spine2", "leaf2"): 6 * GBIT}
    assert via(fab, choose(fab, Strategy.LEAST_UTILIZED, view=loaded, extra=extra))[1] == "spine1"


def test_least_utilized_ties_break_on_sum_then_order() -> None:
    fab = leaf_spine(3, 2)
    load = {
        fab.link("leaf1", "spine1"): 4 * GBIT,
        fab.link("spine1", "leaf2"): 4 * GBIT,
        fab.link("leaf1", "spine2"): 4 * GBIT,  # same peak, smaller sum
        fab.link("leaf1", "spine3"): 4 * GBIT,
        fab.link("spine3", "leaf2"): 1 * GBIT,
    }
    choice = choose(fab, Strategy.LEAST_UTILIZED, view=fab.view(load=load))
    assert via(fab, choice)[1] == "spine2"
    assert "40%" in choice.reason
    even = choose(fab, Strategy.LEAST_UTILIZED)  # all idle: sorted order decides
    assert via(fab, even)[1] == "spine1"


def test_widest_prefers_residual_capacity_where_least_utilized_prefers_low_ratio() -> None:
    fab = asymmetric()  # spine1 at 10 Gbit/s, spine2 at 40 Gbit/s
    load = {fab.link("leaf1", "spine1"): 2 * GBIT, fab.link("leaf1", "spine2"): 20 * GBIT}
    view = fab.view(load=load)
    assert via(fab, choose(fab, Strategy.WIDEST, view=view))[1] == "spine2"
    assert via(fab, choose(fab, Strategy.LEAST_UTILIZED, view=view))[1] == "spine1"


def test_unknown_capacity_still_compares_loads() -> None:
    fab = leaf_spine(2, 2)
    view = NetworkView(
        graph=fab.graph, load_bps={fab.link("leaf1", "spine1"): 1e6}, names=fab.names
    )
    assert via(fab, choose(fab, Strategy.LEAST_UTILIZED, view=view))[1] == "spine2"


def test_weighted_split_follows_the_weights() -> None:
    fab = leaf_spine(3, 2)
    pol = policy(Strategy.WEIGHTED, weights=(("spine1", 3.0), ("spine2", 1.0), ("spine3", 0.0)))
    n = 4000
    counts = Counter(
        via(fab, choose(fab, Strategy.WEIGHTED, i=i, pol=pol, seed=11))[1] for i in range(n)
    )
    assert counts["spine3"] == 0  # weight 0 excludes
    assert counts["spine1"] / n == pytest.approx(0.75, abs=0.03)
    assert counts["spine2"] / n == pytest.approx(0.25, abs=0.03)


def test_weighted_accepts_dpids_and_all_zero_falls_back_to_hashing() -> None:
    fab = leaf_spine(2, 2)
    by_dpid = policy(Strategy.WEIGHTED, weights=((f"{fab.dpid('spine1'):016x}", 0.0),))
    assert {via(fab, choose(fab, Strategy.WEIGHTED, i=i, pol=by_dpid))[1] for i in range(50)} == {
        "spine2"
    }
    zero = policy(Strategy.WEIGHTED, weights=(("spine1", 0.0), ("spine2", 0.0)))
    choice = choose(fab, Strategy.WEIGHTED, pol=zero)
    assert "weighs 0" in choice.reason


def test_pinned_path_is_followed_and_completed_from_ingress_to_egress() -> None:
    fab = three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2)
    pol = policy(Strategy.PINNED, pinned_path=("agg1-2", "spine2"))
    choice = choose(fab, Strategy.PINNED, src="leaf1-1", dst="leaf2-1", pol=pol)
    assert not choice.fell_back
    assert via(fab, choice) == ("leaf1-1", "agg1-2", "spine2", "agg2-1", "leaf2-1")


def test_pinned_falls_back_when_its_hop_is_down_drained_or_unknown() -> None:
    fab = leaf_spine(2, 2)
    pol = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.SHORTEST)
    ok = choose(fab, Strategy.PINNED, pol=pol)
    assert (via(fab, ok), ok.fell_back) == (("leaf1", "spine1", "leaf2"), False)

    down = fab.view(graph=fab.graph_without(links=fab.cable("spine1", "leaf2")))
    broken = choose(fab, Strategy.PINNED, pol=pol, view=down)
    assert broken.fell_back and broken.strategy is Strategy.SHORTEST
    assert via(fab, broken) == ("leaf1", "spine2", "leaf2")
    assert "spine1 to egress leaf2" in broken.reason

    full = policy(Strategy.PINNED, pinned_path=("leaf1", "spine1", "leaf2"))
    drained = fab.view(drained=[fab.link("spine1", "leaf2")])
    choice = choose(fab, Strategy.PINNED, pol=full, view=drained)
    assert choice.fell_back and "spine1 -> leaf2 is drained" in choice.reason

    ghost = policy(Strategy.PINNED, pinned_path=("spine9",))
    assert "'spine9' is not in the fabric" in choose(fab, Strategy.PINNED, pol=ghost).reason


def test_pinned_path_that_would_repeat_a_switch_falls_back() -> None:
    fab = leaf_spine(2, 3)
    # leaf2 -> spine1 -> leaf1 pinned for a flow entering at leaf1: leaf1 twice.
    pol = policy(Strategy.PINNED, pinned_path=("leaf3", "spine1", "leaf1"))
    choice = choose(fab, Strategy.PINNED, pol=pol)
    assert choice.fell_back
    assert "no usable path from ingress leaf1 to pinned switch leaf3" in choice.reason


def test_drained_links_are_excluded_unless_every_candidate_is_drained() -> None:
    fab = leaf_spine(2, 2)
    one = fab.view(drained=[fab.link("leaf1", "spine1")])
    assert via(fab, choose(fab, Strategy.SHORTEST, view=one))[1] == "spine2"
    both = fab.view(drained=[fab.link("leaf1", "spine1"), fab.link("leaf1", "spine2")])
    paths = PathCache(fab.graph)
    kept, note = usable_candidates(paths, src=fab.dpid("leaf1"), dst=fab.dpid("leaf2"), view=both)
    assert len(kept) == 2 and "drained" in note
    none, note = usable_candidates(
        paths,
        src=fab.dpid("leaf1"),
        dst=fab.dpid("leaf2"),
        view=both,
        avoid=frozenset(both.drained),
    )
    assert none == [] and "no surviving path" in note


def test_drained_shortest_paths_take_a_detour() -> None:
    fab = asymmetric()
    view = fab.view(drained=fab.cable("leaf1", "spine1"))
    choice = choose(fab, Strategy.SHORTEST, dst="leaf3", view=view)
    assert via(fab, choice) == ("leaf1", "spine2", "leaf2", "spine1", "leaf3")


def test_rank_paths_orders_by_strategy() -> None:
    fab = leaf_spine(3, 2)
    load = {fab.link("leaf1", "spine1"): 6 * GBIT, fab.link("leaf1", "spine2"): 3 * GBIT}
    view = fab.view(load=load)
    cands = PathCache(fab.graph).paths(fab.dpid("leaf1"), fab.dpid("leaf2"))
    request = FlowRequest(five_tuple(1), fab.dpid("leaf1"), fab.dpid("leaf2"))
    ranked = rank_paths(
        Strategy.LEAST_UTILIZED,
        cands,
        flow=request,
        view=view,
        policy=policy(Strategy.LEAST_UTILIZED),
        seed=0,
    )
    assert [fab.names[p.switches[1]] for p in ranked] == ["spine3", "spine2", "spine1"]
    ecmp = rank_paths(
        Strategy.ECMP, cands, flow=request, view=view, policy=policy(Strategy.ECMP), seed=0
    )
    first = choose_path(
        Strategy.ECMP, cands, flow=request, view=view, policy=policy(Strategy.ECMP), seed=0
    )
    assert ecmp[0] == first.path and sorted(ecmp) == sorted(cands)


def test_no_candidates_is_a_precise_error() -> None:
    fab = leaf_spine(2, 2)
    request = FlowRequest(five_tuple(1), fab.dpid("leaf1"), fab.dpid("leaf2"))
    with pytest.raises(InvalidArgument) as err:
        choose_path(
            Strategy.ECMP,
            [],
            flow=request,
            view=fab.view(),
            policy=policy(Strategy.ECMP),
            seed=0,
        )
    assert err.value.field == "candidates"


def test_one_switch_flow_gets_the_one_switch_path() -> None:
    fab = leaf_spine(2, 2)
    for strategy in (Strategy.ECMP, Strategy.LEAST_UTILIZED, Strategy.WIDEST, Strategy.WEIGHTED):
        choice = choose(fab, strategy, dst="leaf1")
        assert choice.path == Path(switches=(fab.dpid("leaf1"),))


def test_down_and_drained_links_together_leave_a_drained_detour_over_nothing() -> None:
    fab = asymmetric()
    view = fab.view(drained=[fab.link("spine2", "leaf2")])
    found, note = usable_candidates(
        PathCache(fab.graph),
        src=fab.dpid("leaf1"),
        dst=fab.dpid("leaf3"),
        view=view,
        avoid=frozenset(fab.cable("leaf1", "spine1")),
    )
    assert [fab.path_names(p.switches) for p in found] == [
        ("leaf1", "spine2", "leaf2", "spine1", "leaf3")
    ]
    assert "keeping drained links" in note
