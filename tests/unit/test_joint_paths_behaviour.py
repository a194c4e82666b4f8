"""Joint placement off a 2-tier fabric (controller.te.joint's path search) and the
background the elephant round solves over, on a small 3-tier fabric worked by hand."""

from __future__ import annotations

from collections.abc import Hashable

from synthetic import Fabric, three_tier

from controller.fabric.model import Path
from controller.routing.paths import PathCache
from controller.routing.strategies import NetworkView, usable_candidates
from controller.te.joint import PairDemand, background_without, place_jointly

MBIT = 1e6


def fabric() -> Fabric:
    """Two pods of one leaf and two aggregation switches, two spines: eight paths
    from leaf1-1 to leaf2-1, none of them a 2-tier one."""
    return three_tier(pods=2, leaves_per_pod=1, aggs_per_pod=2, spines=2, capacity_bps=100 * MBIT)


def names(fab: Fabric, path: Path | None) -> tuple[str, ...]:
    assert path is not None
    return fab.path_names(path.switches)


def candidates(fab: Fabric, view: NetworkView) -> list[Path]:
    a, b = fab.dpid("leaf1-1"), fab.dpid("leaf2-1")
    found, _ = usable_candidates(PathCache(view.graph), src=a, dst=b, view=view)
    return found


def pairs(fab: Fabric) -> list[PairDemand]:
    a, b = fab.dpid("leaf1-1"), fab.dpid("leaf2-1")
    return [
        PairDemand("x", a, b, 10 * MBIT),
        PairDemand("y", a, b, 10 * MBIT),
        PairDemand("self", a, a, 10 * MBIT),  # inside one switch
    ]


def test_fresh_pairs_get_disjoint_paths_and_an_in_switch_pair_its_one_switch() -> None:
    fab = fabric()
    plan = place_jointly(pairs(fab), fab.view())
    assert names(fab, plan.path_of("x")) == ("leaf1-1", "agg1-1", "spine2", "agg2-2", "leaf2-1")
    assert names(fab, plan.path_of("y")) == ("leaf1-1", "agg1-2", "spine1", "agg2-1", "leaf2-1")
    assert plan.path_of("self") == Path(switches=(fab.dpid("leaf1-1"),))
    assert plan.moved == () and plan.unplaced == ()
    assert [p.moved for p in plan.placements] == [False, False, False]
    assert plan.max_utilization == 0.1  # 10 Mbit/s alone on 100 Mbit/s links
    assert plan.lower_bound == 0.0 and plan.method == "milp"


def test_the_mixed_integer_program_is_used_only_within_its_size() -> None:
    fab = fabric()
    assert place_jointly(pairs(fab), fab.view(), milp_max_variables=0).method == "local-search"


def test_previous_paths_the_optimum_allows_are_kept() -> None:
    fab = fabric()
    options = candidates(fab, fab.view())
    previous: dict[Hashable, Path] = {"x": options[-1], "y": options[0]}
    plan = place_jointly(pairs(fab), fab.view(), previous=previous)
    assert plan.path_of("x") == options[-1] and plan.path_of("y") == options[0]
    assert plan.moved == ()
    assert [p.moved for p in plan.placements] == [False, False, False]


def test_a_previous_path_that_is_gone_is_replaced_as_if_there_were_none() -> None:
    fab = fabric()
    options = candidates(fab, fab.view())
    gone = options[0]  # leaf1-1 agg1-1 spine1 agg2-1 leaf2-1
    view = fab.view(graph=fab.graph_without(links=[fab.link("agg1-1", "spine1")]))
    fresh = place_jointly(pairs(fab), view)
    plan = place_jointly(pairs(fab), view, previous={"x": gone})
    assert plan.moved == ("x",)
    assert [p.moved for p in plan.placements] == [True, False, False]
    assert plan.placements == tuple(
        p if p.key != "x" else type(p)(p.key, p.path, True) for p in fresh.placements
    )
    assert fab.link("agg1-1", "spine1") not in (plan.path_of("x") or gone).links


def test_the_background_is_the_measured_load_without_the_pairs_own_share() -> None:
    fab = fabric()
    options = candidates(fab, fab.view())
    first, second = options[0], options[-1]
    load = dict.fromkeys(first.links, 30 * MBIT)
    load.update(dict.fromkeys(second.links, 25 * MBIT))
    view = fab.view(load=load)
    a, b = fab.dpid("leaf1-1"), fab.dpid("leaf2-1")
    flows = [PairDemand("new", a, b, 10 * MBIT), PairDemand("old", a, b, 20 * MBIT)]
    quiet = background_without(view, flows, {"old": first})
    assert {lid: quiet[lid] for lid in first.links} == dict.fromkeys(first.links, 10 * MBIT)
    assert {lid: quiet[lid] for lid in second.links} == dict.fromkeys(second.links, 25 * MBIT)
    # Never below 0, also on links the counters do not show yet.
    tiny = [PairDemand("tiny", a, b, 0.5)]
    assert background_without(fab.view(), tiny, {"tiny": first}) == dict.fromkeys(first.links, 0.0)
