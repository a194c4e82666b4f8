"""The joint round of the rebalancer (controller.te.elephants) on hand-built views.

Flows are put straight into a :class:`FlowTable` on small leaf-spine fabrics
whose measured load is exactly the sum of the flows (plus any background), and
first fit's plan is given by hand, so every expected answer (which flows are
elephants, which move where, in which order, which stay stuck) can be worked
out on paper. The load bookkeeping helpers are checked at their boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

import networkx as nx
import pytest
from synthetic import Fabric, five_tuple, leaf_spine, three_tier

from controller.fabric.model import Dpid, LinkId, Path
from controller.policy.model import FlowMatch, Policy, PolicyParams, Strategy
from controller.routing.paths import PathCache
from controller.routing.strategies import NetworkView
from controller.te import elephants as elephants_module
from controller.te.elephants import (
    _better,
    _Loads,
    _on_hot,
    _thresholds,
    elephants,
    near,
    plan_joint,
)
from controller.te.flowtable import FlowTable, TrackedFlow
from controller.te.joint import PairDemand, rebalance_elephants
from controller.te.rebalance import RebalancePlan, Relocation

MBIT = 1e6


def policy(
    threshold: float = 0.8, strategy: Strategy = Strategy.LEAST_UTILIZED, hold: float = 2.0
) -> Policy:
    params = PolicyParams(congestion_threshold=threshold, min_move_interval_s=hold)
    match = (FlowMatch(ip_proto=17),)
    return Policy(name="ai", priority=10, match=match, params=params, strategy=strategy)


def route(fab: Fabric, *names: str) -> Path:
    return Path.of_links([fab.link(a, b) for a, b in pairwise(names)])


class Lab:
    """A leaf-spine fabric, a flow table, the flows' policies and the measured load."""

    def __init__(
        self, spines: int, leaves: int, capacity_bps: float = 100 * MBIT, fab: Fabric | None = None
    ) -> None:
        self.fab = fab or leaf_spine(spines, leaves, capacity_bps=capacity_bps)
        self.table = FlowTable()
        self.policy_of: dict[int, Policy] = {}
        self.load: dict[LinkId, float] = {}

    def add(
        self,
        fid: int,
        src: str,
        spine: str,
        dst: str,
        rate: float,
        *,
        measured: bool = True,
        pol: Policy | None = None,
    ) -> TrackedFlow:
        return self.add_path(fid, route(self.fab, src, spine, dst), rate, measured, pol)

    def add_path(
        self, fid: int, path: Path, rate: float, measured: bool = True, pol: Policy | None = None
    ) -> TrackedFlow:
        src, dst = self.fab.names[path.ingress], self.fab.names[path.egress]
        flow = TrackedFlow(
            flow_id=fid,
            five_tuple=five_tuple(fid),
            dscp=26,
            policy="ai",
            ingress=self.fab.host_port(src),
            egress=self.fab.host_port(dst),
            path=path,
            placed_at=0.0,
            demand_bps=rate,
            rate_bps=rate if measured else 0.0,
            measured=measured,
        )
        self.table.add(flow)
        self.policy_of[fid] = pol or policy()
        for lid in path.links:
            self.load[lid] = self.load.get(lid, 0.0) + rate
        return flow

    def background(self, spine: str, bps: float, src: str = "leaf1", dst: str = "leaf2") -> None:
        for lid in (self.fab.link(src, spine), self.fab.link(spine, dst)):
            self.load[lid] = self.load.get(lid, 0.0) + bps

    def links(self, spine: str, src: str = "leaf1", dst: str = "leaf2") -> list[LinkId]:
        return [self.fab.link(src, spine), self.fab.link(spine, dst)]

    def view(self, drained: Iterable[LinkId] = (), graph: nx.DiGraph | None = None) -> NetworkView:
        return self.fab.view(load=self.load, drained=drained, graph=graph)

    def plan(
        self,
        stuck: Sequence[int],
        *,
        hot: Iterable[LinkId] = (),
        relocations: Sequence[Relocation] = (),
        max_moves: int = 8,
        extra: dict[LinkId, float] | None = None,
        view: NetworkView | None = None,
        paths: PathCache | None = None,
    ) -> RebalancePlan | None:
        greedy = RebalancePlan(
            relocations=tuple(relocations), hot=tuple(hot), stuck=tuple(stuck), held=()
        )
        return plan_joint(
            table=self.table,
            policy_of=self.policy_of,
            view=view or self.view(),
            extra=extra or {},
            greedy=greedy,
            now=10.0,
            max_moves=max_moves,
            paths=paths,
        )

    def moves(self, plan: RebalancePlan | None) -> list[tuple[int, str]] | None:
        """(flow, spine it goes to) per relocation, in plan order; None for no plan."""
        if plan is None:
            return None
        return [(r.flow_id, self.fab.names[r.path.switches[1]]) for r in plan.relocations]


def two_on_spine1(rate: float = 60 * MBIT) -> Lab:
    lab = Lab(2, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", rate)
    lab.add(2, "leaf1", "spine1", "leaf2", rate)
    return lab


# --------------------------------------------------------------- which flows count


def test_an_elephant_is_a_flow_of_at_least_a_tenth_of_its_narrowest_link() -> None:
    lab = Lab(2, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 50 * MBIT, measured=False)  # not measured yet
    lab.add(2, "leaf1", "spine1", "leaf2", 10 * MBIT)  # exactly a tenth: an elephant
    lab.add(3, "leaf1", "spine2", "leaf2", 9.99 * MBIT)  # just under: a mouse
    lab.add(4, "leaf1", "spine2", "leaf2", 60 * MBIT)
    lab.add(5, "leaf1", "spine2", "leaf2", 5 * MBIT)  # a mouse
    herd = elephants(lab.table, lab.policy_of, lab.view(), now=10.0)
    assert [f.flow_id for f in herd] == [2, 4]


def test_flows_without_a_policy_held_or_hashed_are_not_elephants() -> None:
    lab = Lab(2, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 50 * MBIT, pol=policy(hold=30.0))  # held
    lab.add(2, "leaf1", "spine1", "leaf2", 50 * MBIT, pol=policy(strategy=Strategy.ECMP))
    lab.add(3, "leaf1", "spine1", "leaf2", 50 * MBIT)
    lab.add(4, "leaf1", "spine1", "leaf2", 50 * MBIT)
    del lab.policy_of[3]
    herd = elephants(lab.table, lab.policy_of, lab.view(), now=10.0)
    assert [f.flow_id for f in herd] == [4]


def _spread(lab: Lab) -> list[TrackedFlow]:
    """Four elephants on a 4-leaf fabric: 1 leaf1->leaf2 (stuck), 2 leaf3->leaf4 (far),
    3 leaf3->leaf1 (ends at leaf1), 4 leaf2->leaf3 (starts at leaf2)."""
    lab.add(1, "leaf1", "spine1", "leaf2", 30 * MBIT)
    lab.add(2, "leaf3", "spine1", "leaf4", 50 * MBIT)
    lab.add(3, "leaf3", "spine1", "leaf1", 20 * MBIT)
    lab.add(4, "leaf2", "spine1", "leaf3", 40 * MBIT)
    return elephants(lab.table, lab.policy_of, lab.view(), now=10.0)


def test_a_herd_exactly_at_the_limit_is_kept_whole() -> None:
    lab = Lab(2, 4)
    herd = _spread(lab)
    assert near(herd, lab.table, [1], 4) == herd


def test_a_herd_over_the_limit_keeps_the_flows_touching_the_stuck_ones_ends() -> None:
    lab = Lab(2, 4)
    herd = _spread(lab)
    assert [f.flow_id for f in near(herd, lab.table, [1], 3)] == [1, 3, 4]
    # The largest of them first, then back in flow id order.
    assert [f.flow_id for f in near(herd, lab.table, [1], 2)] == [1, 4]
    # A stuck flow that ended meanwhile contributes no ends.
    assert [f.flow_id for f in near(herd, lab.table, [99, 3], 2)] == [2, 4]


def test_the_elephant_bound_cuts_the_joint_solve_to_the_stuck_flows_neighbourhood(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = Lab(2, 4)
    lab.add(1, "leaf1", "spine1", "leaf2", 60 * MBIT)
    lab.add(2, "leaf1", "spine1", "leaf2", 60 * MBIT)
    lab.add(3, "leaf3", "spine1", "leaf4", 60 * MBIT)  # collided too, but far away
    lab.add(4, "leaf3", "spine1", "leaf4", 60 * MBIT)
    monkeypatch.setattr(elephants_module, "MAX_ELEPHANTS", 2)
    plan = lab.plan([1])
    assert lab.moves(plan) == [(2, "spine2")]
    monkeypatch.setattr(elephants_module, "MAX_ELEPHANTS", 4)
    assert lab.moves(lab.plan([1])) == [(2, "spine2"), (4, "spine2")]


# ------------------------------------------------------------------ plan_joint


def test_of_two_colliding_elephants_exactly_one_moves_to_the_free_spine() -> None:
    lab = two_on_spine1()
    plan = lab.plan([1, 2])
    assert plan is not None
    assert lab.moves(plan) == [(2, "spine2")]
    assert plan.relocations[0].path == route(lab.fab, "leaf1", "spine2", "leaf2")
    assert plan.stuck == () and plan.held == ()
    assert plan.relocations[0].detail == (
        "joint re-placement of 2 elephant(s): peak 60%, 0 link(s) over threshold "
        "(first fit: 120%, 2)"
    )
    # Deterministic: the same inputs give the same plan.
    assert lab.plan([1, 2]) == plan


def test_nothing_stuck_or_no_budget_means_no_joint_round() -> None:
    lab = two_on_spine1()
    assert lab.plan([]) is None
    assert lab.plan([1, 2], max_moves=0) is None
    assert lab.moves(lab.plan([1, 2], max_moves=1)) == [(2, "spine2")]


def test_a_round_of_one_move_reports_the_flows_left_on_the_hot_link() -> None:
    lab = Lab(3, 2)
    for fid in (1, 2, 3):
        lab.add(fid, "leaf1", "spine1", "leaf2", 45 * MBIT)
    plan = lab.plan([1, 2, 3], max_moves=1)
    assert plan is not None
    assert lab.moves(plan) == [(2, "spine2")]
    # spine1 keeps 90 Mbit/s of two flows: 1 and 3 still share a hot link.
    assert plan.stuck == (1, 3)
    full = lab.plan([1, 2, 3])
    assert full is not None and full.stuck == ()
    assert sorted(lab.moves(full) or []) == [(2, "spine2"), (3, "spine3")]


def test_moves_are_made_largest_first_and_a_drained_path_is_never_kept() -> None:
    # leaf1 -> spine1 is drained: all three flows must leave it, each to a spine of
    # its own, and none goes back although spine1 would have room.
    lab = Lab(4, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 20 * MBIT)
    lab.add(2, "leaf1", "spine1", "leaf2", 40 * MBIT)
    lab.add(3, "leaf1", "spine1", "leaf2", 30 * MBIT)
    view = lab.view(drained=[lab.fab.link("leaf1", "spine1")])
    plan = lab.plan([1, 2, 3], view=view)
    assert lab.moves(plan) == [(2, "spine2"), (3, "spine4"), (1, "spine3")]
    # The budget cuts the same order.
    plan = lab.plan([1, 2, 3], view=view, max_moves=2)
    assert lab.moves(plan) == [(2, "spine2"), (3, "spine4")]
    assert plan is not None and plan.stuck == ()


def test_a_down_link_makes_its_path_dead_so_the_flow_is_not_sent_back() -> None:
    lab = Lab(4, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 20 * MBIT)
    lab.add(2, "leaf1", "spine1", "leaf2", 40 * MBIT)
    lab.add(3, "leaf1", "spine1", "leaf2", 30 * MBIT)
    graph = lab.fab.graph_without(links=[lab.fab.link("leaf1", "spine1")])
    plan = lab.plan([1, 2, 3], view=lab.view(graph=graph))
    assert plan is not None
    assert [r.flow_id for r in plan.relocations] == [2, 3, 1]
    assert all(lab.fab.link("leaf1", "spine1") not in r.path.links for r in plan.relocations)


def test_moves_the_optimum_does_not_need_are_undone_smallest_flow_first() -> None:
    # 40 + 35 + 30 Mbit/s on spine1 (105 %): the optimum spreads them, but under
    # the 80 % threshold two may share spine1; the smallest (30) goes back
    # first, so the 40 and 35 cannot both stay.
    lab = Lab(3, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 40 * MBIT)
    lab.add(2, "leaf1", "spine1", "leaf2", 35 * MBIT)
    lab.add(3, "leaf1", "spine1", "leaf2", 30 * MBIT)
    plan = lab.plan([1, 2, 3])
    assert lab.moves(plan) == [(1, "spine3")]


def test_a_plan_that_is_only_cosmetic_is_undone_entirely() -> None:
    # 30 + 30 on spine1 is under threshold: whatever the solver spreads, both go back.
    lab = two_on_spine1(30 * MBIT)
    assert lab.plan([1, 2]) is None


def test_recent_placements_count_as_load_for_the_joint_solve() -> None:
    # spine2 measures 20 Mbit/s plus 30 of recent placements counters do not show
    # yet (50 in all); spine3 measures 40. A 45 Mbit/s flow goes to spine3.
    lab = Lab(3, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 45 * MBIT)
    lab.add(2, "leaf1", "spine1", "leaf2", 45 * MBIT)
    lab.background("spine2", 20 * MBIT)
    lab.background("spine3", 40 * MBIT)
    extra = dict.fromkeys(lab.links("spine2"), 30 * MBIT)
    assert lab.moves(lab.plan([1, 2], extra=extra)) == [(2, "spine3")]
    assert lab.moves(lab.plan([1, 2])) == [(2, "spine2")]


def test_recent_load_alone_on_a_spine_weighs_exactly_as_much_as_measured_load() -> None:
    # spine2: 40 Mbit/s only as recent placements; spine3: 40 measured. A tie,
    # broken the same way as when both are measured.
    lab = Lab(3, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 45 * MBIT)
    lab.add(2, "leaf1", "spine1", "leaf2", 45 * MBIT)
    lab.background("spine3", 40 * MBIT)
    extra = dict.fromkeys(lab.links("spine2"), 40 * MBIT)
    assert lab.moves(lab.plan([1, 2], extra=extra)) == [(2, "spine2")]
    lab.background("spine2", 40 * MBIT)
    assert lab.moves(lab.plan([1, 2])) == [(2, "spine2")]


def test_first_fit_relieving_a_hotter_link_elsewhere_keeps_its_plan() -> None:
    # 45 + 45 on spine1 (90 %, hot). First fit moved mouse 3 off spine3, which
    # carries 93 Mbit/s of background besides it (98 %; its policy allows 100 %).
    # The joint plan leaves spine3 at 98 %: worse than first fit's 93 %.
    lab = Lab(3, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 45 * MBIT)
    lab.add(2, "leaf1", "spine1", "leaf2", 45 * MBIT)
    lab.add(3, "leaf1", "spine3", "leaf2", 5 * MBIT, pol=policy(threshold=1.0))
    lab.background("spine3", 93 * MBIT)
    to_spine2 = Relocation(3, route(lab.fab, "leaf1", "spine2", "leaf2"), "first fit")
    assert lab.plan([1, 2], hot=lab.links("spine1"), relocations=[to_spine2]) is None
    # Without that relocation the joint plan wins (spine1 90 % -> 45 %).
    assert lab.moves(lab.plan([1, 2], hot=lab.links("spine1"))) == [(2, "spine2")]


def _ring(leaves: int = 3) -> Lab:
    """a (1) and b (2) collided on leaf1 -> spine1; c (3) and d (4) fill spine2 towards
    leaf2 and leaf3: b can reach spine2 only if d makes room on spine1 (a trade)."""
    lab = Lab(2, leaves, capacity_bps=20 * MBIT)
    lab.add(1, "leaf1", "spine1", "leaf2", 10 * MBIT)
    lab.add(2, "leaf1", "spine1", "leaf3", 10 * MBIT)
    lab.add(3, "leaf3", "spine2", "leaf2", 19 * MBIT)
    lab.add(4, "leaf2", "spine2", "leaf3", 19 * MBIT)
    return lab


def test_a_trade_is_made_when_the_whole_plan_fits_the_budget_exactly() -> None:
    lab = _ring()
    assert lab.moves(lab.plan([1, 2], max_moves=2)) == [(4, "spine1"), (2, "spine2")]
    assert lab.plan([1, 2], max_moves=1) is None  # a trade needs both moves


def test_moves_that_fit_alone_come_before_a_trade() -> None:
    lab = _ring(leaves=4)
    lab.add(5, "leaf4", "spine1", "leaf1", 10 * MBIT)
    lab.add(6, "leaf4", "spine1", "leaf1", 10 * MBIT)
    plan = lab.plan([1, 2, 5, 6], max_moves=3)
    assert lab.moves(plan) == [(5, "spine2"), (4, "spine1"), (2, "spine2")]
    assert plan is not None and plan.stuck == ()
    # Two moves allowed: only the move that fits alone; the trade waits.
    plan = lab.plan([1, 2, 5, 6], max_moves=2)
    assert lab.moves(plan) == [(5, "spine2")]
    assert plan is not None and plan.stuck == (1, 2)


class _CountingCache(PathCache):
    def __init__(self, graph: nx.DiGraph) -> None:
        super().__init__(graph)
        self.asked = 0

    def paths(self, src: Dpid, dst: Dpid) -> list[Path]:
        self.asked += 1
        return super().paths(src, dst)


def test_the_callers_path_cache_is_used_off_a_two_tier_fabric() -> None:
    fab = three_tier(pods=2, leaves_per_pod=1, aggs_per_pod=2, spines=2, capacity_bps=100 * MBIT)
    a, b = fab.dpid("leaf1-1"), fab.dpid("leaf2-1")
    cache = _CountingCache(fab.graph)
    pairs = [PairDemand("x", a, b, 10 * MBIT), PairDemand("y", b, a, 10 * MBIT)]
    plan = rebalance_elephants(pairs, fab.view(), current={}, paths=cache)
    assert cache.asked >= 2 and not plan.unplaced


def test_the_joint_round_off_a_two_tier_fabric_searches_the_callers_paths() -> None:
    fab = three_tier(pods=2, leaves_per_pod=1, aggs_per_pod=2, spines=2, capacity_bps=100 * MBIT)
    lab = Lab(0, 0, fab=fab)
    shared = route(fab, "leaf1-1", "agg1-1", "spine1", "agg2-1", "leaf2-1")
    lab.add_path(1, shared, 60 * MBIT)
    lab.add_path(2, shared, 60 * MBIT)
    cache = _CountingCache(fab.graph)
    plan = lab.plan([1, 2], paths=cache)
    assert plan is not None and [r.flow_id for r in plan.relocations] == [1]
    assert not set(plan.relocations[0].path.links) & set(shared.links)
    assert cache.asked >= 1


# ------------------------------------------------------- bookkeeping at boundaries


def _loads(
    lab: Lab, load: dict[LinkId, float], thresholds: dict[LinkId, float] | None = None
) -> _Loads:
    return _Loads(lab.fab.view(), dict(load), dict(thresholds or {}))


def test_moving_adds_and_removes_exactly_the_flows_load_on_links_not_yet_counted() -> None:
    lab = Lab(2, 2)
    flow = lab.add(1, "leaf1", "spine1", "leaf2", 30 * MBIT)
    loads = _loads(lab, {})
    new = route(lab.fab, "leaf1", "spine2", "leaf2")
    loads.move(flow, flow.path, new)
    for lid in flow.path.links:
        assert loads.load[lid] == -30 * MBIT
        assert loads.utilization(lid) == 0.0
    for lid in new.links:
        assert loads.load[lid] == 30 * MBIT
        assert loads.utilization(lid) == 0.3
    assert _loads(lab, {}).utilization(new.links[0]) == 0.0
    assert _loads(lab, {new.links[0]: 0.5}).utilization(new.links[0]) == 0.5 / (100 * MBIT)


def test_a_move_fits_up_to_exactly_its_limit_on_links_it_joins() -> None:
    lab = Lab(2, 3)
    flow = lab.add(1, "leaf1", "spine1", "leaf2", 50 * MBIT)
    up, down = lab.fab.link("leaf1", "spine1"), lab.fab.link("spine1", "leaf3")
    other = route(lab.fab, "leaf1", "spine1", "leaf3")  # shares the uplink with the flow
    thr = {up: 0.8, down: 0.8}
    # The shared uplink is not joined: only spine1 -> leaf3 counts.
    assert _loads(lab, {up: 500 * MBIT, down: 30 * MBIT}, thr).fits(flow, flow.path, other, 0.5)
    assert not _loads(lab, {up: 0.0, down: 31 * MBIT}, thr).fits(flow, flow.path, other, 0.5)
    # The limit is the plan's peak if higher than the threshold.
    assert _loads(lab, {down: 40 * MBIT}, thr).fits(flow, flow.path, other, 0.9)
    # Links nobody uses take up to 100 %; a link absent from the loads carries 0.
    assert _loads(lab, {down: 50 * MBIT}).fits(flow, flow.path, other, 0.0)
    assert not _loads(lab, {down: 51 * MBIT}).fits(flow, flow.path, other, 0.0)
    assert _loads(lab, {}).fits(flow, flow.path, other, 0.0)
    big = lab.add(2, "leaf1", "spine2", "leaf2", 100 * MBIT)
    assert _loads(lab, {}).fits(big, big.path, other, 0.0)
    huge = lab.add(3, "leaf2", "spine2", "leaf3", 101 * MBIT)
    assert not _loads(lab, {}).fits(huge, huge.path, other, 0.0)


def test_the_score_is_the_peak_and_the_links_strictly_over_their_threshold() -> None:
    lab = Lab(2, 2)
    a, b = lab.fab.link("leaf1", "spine1"), lab.fab.link("spine1", "leaf2")
    c = lab.fab.link("leaf1", "spine2")
    loads = _loads(lab, {a: 80 * MBIT, b: 150 * MBIT, c: 100 * MBIT / 3}, {a: 0.8})
    # a is exactly at its threshold (not over); b is over the default 100 %.
    assert loads.score([a, b, c]) == (1.5, 1)
    assert loads.score([a]) == (0.8, 0)
    assert loads.score([c]) == (0.333333333, 0)
    assert loads.score([]) == (0.0, 0)
    assert _loads(lab, {b: 100 * MBIT}).score([b]) == (1.0, 0)


def test_a_link_exactly_one_epsilon_over_its_threshold_is_not_over() -> None:
    lab = Lab(2, 2)
    lid = lab.fab.link("leaf1", "spine1")
    view = NetworkView(graph=lab.fab.graph, capacity={lid: 1.0})
    loads = _Loads(view, {lid: 0.5 + 1e-9}, {lid: 0.5})
    assert loads.score([lid]) == (0.500000001, 0)
    # A move landing exactly on the limit fits (at 100 Mbit/s the tolerance is
    # below float resolution, so check it on a 1 bit/s link).
    flow = lab.add(1, "leaf2", "spine2", "leaf1", 0.25)
    onto = Path.of_links([lid, lab.fab.link("spine1", "leaf2")])
    assert _Loads(view, {lid: 0.25}, {lid: 0.5}).fits(flow, flow.path, onto, 0.0)
    assert not _Loads(view, {lid: 0.26}, {lid: 0.5}).fits(flow, flow.path, onto, 0.0)


def test_a_flow_is_on_a_hot_link_only_with_company_above_the_contention_share() -> None:
    lab = Lab(2, 2)
    flow = lab.add(1, "leaf1", "spine1", "leaf2", 50 * MBIT)
    up, down = flow.path.links
    thr = {up: 0.8, down: 0.8}
    assert _on_hot(None, _loads(lab, {up: 95 * MBIT}, thr)) is False
    assert _on_hot(flow, _loads(lab, {up: 95 * MBIT}, thr)) is True
    assert _on_hot(flow, _loads(lab, {down: 95 * MBIT}, thr)) is True
    # Exactly at the threshold is not hot.
    assert _on_hot(flow, _loads(lab, {up: 80 * MBIT}, thr)) is False
    # Hot, but the company is exactly 10 % of the link: not contended.
    assert _on_hot(flow, _loads(lab, {up: 60 * MBIT}, {up: 0.5})) is False
    assert _on_hot(flow, _loads(lab, {up: 60.1 * MBIT}, {up: 0.5})) is True
    # Alone on the link, with a trickle of company.
    assert _on_hot(flow, _loads(lab, {up: 51 * MBIT}, {up: 0.5})) is False
    # Without a recorded threshold a link is hot only over 100 %.
    assert _on_hot(flow, _loads(lab, {up: 95 * MBIT})) is False
    assert _on_hot(flow, _loads(lab, {up: 120 * MBIT})) is True
    assert _on_hot(flow, _loads(lab, {up: 120 * MBIT}, {down: 0.8})) is True
    assert _on_hot(flow, _loads(lab, {}, thr)) is False


def test_on_hot_boundary_is_strict_at_one_epsilon() -> None:
    lab = Lab(2, 2)
    flow = lab.add(1, "leaf1", "spine1", "leaf2", 0.25)
    up = flow.path.links[0]
    view = NetworkView(graph=lab.fab.graph, capacity={up: 1.0})
    assert _on_hot(flow, _Loads(view, {up: 0.5 + 1e-9}, {up: 0.5})) is False
    assert _on_hot(flow, _Loads(view, {up: 0.6}, {up: 0.5})) is True


def test_a_joint_plan_must_lower_the_peak_by_the_gain_or_clear_links() -> None:
    assert _better((0.5, 3), (0.9, 0))
    assert not _better((0.49, 1), (0.5, 1))  # about the gain lower: not enough
    assert _better((0.48, 1), (0.5, 1))
    assert _better((0.0, 0), (0.01, 1))  # exactly the gain apart, fewer over
    assert not _better((0.0, 1), (0.01, 1))
    assert _better((0.5, 0), (0.5, 1))
    assert not _better((0.5, 1), (0.5, 1))
    assert not _better((0.52, 0), (0.5, 1))


def test_a_link_without_flows_has_a_threshold_of_one() -> None:
    lab = Lab(2, 2)
    lab.add(1, "leaf1", "spine1", "leaf2", 50 * MBIT, pol=policy(threshold=0.7))
    lab.add(2, "leaf1", "spine1", "leaf2", 50 * MBIT, pol=policy(threshold=0.6))
    lab.add(3, "leaf1", "spine1", "leaf2", 50 * MBIT)
    del lab.policy_of[3]  # a flow without a policy does not count
    empty = lab.fab.link("leaf1", "spine2")
    up = lab.fab.link("leaf1", "spine1")
    assert _thresholds(lab.table, lab.policy_of, [up, empty]) == {up: 0.6, empty: 1.0}
