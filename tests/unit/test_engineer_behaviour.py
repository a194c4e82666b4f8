"""The traffic engineer as the hub uses it: what it places, moves, reports and remembers.

Each test drives :class:`TrafficEngineer` through its public calls on a small
fabric and checks what an operator would see: which path a flow takes, which
flows move and why (``Move.reason`` and ``detail`` become events), which are
reported stranded or stuck, and what ``explain`` (``preview``) says.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from synthetic import GBIT, Fabric, asymmetric, five_tuple, leaf_spine

from controller.errors import FailedPrecondition, InvalidArgument
from controller.fabric.model import FiveTuple, LinkId
from controller.policy.model import FlowMatch, Policy, PolicyParams, Strategy
from controller.routing.strategies import Choice, NetworkView
from controller.te.engineer import Placement, TrafficEngineer

AI = FlowMatch(ip_proto=17)
STILL = PolicyParams(min_move_interval_s=0.0)


def policy(strategy: Strategy, name: str = "ai", **kw: object) -> Policy:
    return replace(Policy(name=name, priority=10, match=(AI,)), strategy=strategy, **kw)


def place(
    te: TrafficEngineer,
    fab: Fabric,
    i: int,
    pol: Policy,
    *,
    src: str = "leaf1",
    dst: str = "leaf2",
    now: float = 0.0,
    view: NetworkView | None = None,
    demand: float | None = 1 * GBIT,
    dscp: int = 26,
) -> Placement:
    return te.place(
        five_tuple(i),
        dscp=dscp,
        ingress=fab.host_port(src),
        egress=fab.host_port(dst),
        policy=pol,
        view=view or fab.view(),
        now=now,
        demand_bps=demand,
    )


def preview(
    te: TrafficEngineer,
    fab: Fabric,
    i: int,
    pol: Policy,
    *,
    now: float,
    view: NetworkView | None = None,
    demand: float | None = None,
) -> Choice:
    """What ``te`` would choose for flow ``i`` leaf1 -> leaf2, changing nothing."""
    return te.preview(
        five_tuple(i),
        ingress=fab.dpid("leaf1"),
        egress=fab.dpid("leaf2"),
        policy=pol,
        view=view or fab.view(),
        now=now,
        demand_bps=demand,
    )


def spine_of(fab: Fabric, te: TrafficEngineer, flow_id: int) -> str:
    flow = te.flow(flow_id)
    assert flow is not None
    return fab.names[flow.path.switches[1]]


def down_view(fab: Fabric, links: list[LinkId], **kw: object) -> NetworkView:
    return fab.view(graph=fab.graph_without(links=links), **kw)  # type: ignore[arg-type]


def stranded_flow(te: TrafficEngineer, fab: Fabric) -> tuple[int, list[LinkId]]:
    """A shortest-path flow leaf1 -> leaf2, stranded by every link of leaf2 failing."""
    fid = place(te, fab, 1, policy(Strategy.SHORTEST)).flow.flow_id
    down = fab.links_of("leaf2")
    te.on_links_down(down, down_view(fab, down), now=1.0)
    assert te.stranded() == {fid}
    return fid, down


# ------------------------------------------------------------------ construction
@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"max_moves_per_round": -1}, "max_moves_per_round", "must be >= 0"),
        ({"default_demand_bps": -1.0}, "default_demand_bps", "must be >= 0"),
        ({"rate_alpha": 0.0}, "rate_alpha", "must be in (0, 1]"),
        ({"rate_alpha": 1.5}, "rate_alpha", "must be in (0, 1]"),
        ({"visibility_s": -0.5}, "visibility_s", "must be >= 0"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    kwargs: dict[str, float], field: str, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        TrafficEngineer(**kwargs)  # type: ignore[arg-type]
    assert (err.value.field, err.value.reason) == (field, reason)


def test_zero_moves_per_round_is_allowed_and_moves_nothing() -> None:
    fab = leaf_spine(2, 2, capacity_bps=10 * GBIT)
    te = TrafficEngineer(max_moves_per_round=0, visibility_s=0.0)
    pol = policy(Strategy.LEAST_UTILIZED, params=STILL)
    busy = down_view(fab, fab.cable("leaf1", "spine2"))
    ids = [place(te, fab, i, pol, view=busy, demand=5 * GBIT).flow.flow_id for i in range(2)]
    hot = {fab.link("leaf1", "spine1"): 10 * GBIT, fab.link("spine1", "leaf2"): 10 * GBIT}
    outcome = te.rebalance(fab.view(load=hot), now=10.0)
    assert outcome.moves == () and {spine_of(fab, te, i) for i in ids} == {"spine1"}


def test_a_zero_default_demand_reserves_nothing() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer(default_demand_bps=0.0)
    pol = policy(Strategy.LEAST_UTILIZED)
    a = place(te, fab, 1, pol, demand=None).flow
    b = place(te, fab, 2, pol, demand=None).flow
    assert a.demand_bps == 0.0 and spine_of(fab, te, b.flow_id) == "spine1"


def test_a_rate_alpha_of_one_follows_the_latest_sample() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer(rate_alpha=1.0)
    fid = place(te, fab, 1, policy(Strategy.ECMP)).flow.flow_id
    te.update_rates({fid: 10e6}, now=1.0)
    te.update_rates({fid: 30e6}, now=2.0)
    assert getattr(te.flow(fid), "rate_bps", None) == 30e6


def test_the_default_smoothing_weighs_a_new_sample_by_half() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid = place(te, fab, 1, policy(Strategy.ECMP)).flow.flow_id
    te.update_rates({fid: 10e6}, now=1.0)
    te.update_rates({fid: 30e6}, now=2.0)
    assert getattr(te.flow(fid), "rate_bps", None) == pytest.approx(20e6)


def test_the_path_limit_holds_before_and_after_a_failure() -> None:
    fab = leaf_spine(4, 2)
    te = TrafficEngineer(max_paths=2, seed=3)
    pol = policy(Strategy.ECMP)
    ids = [place(te, fab, i, pol).flow.flow_id for i in range(40)]
    assert {spine_of(fab, te, i) for i in ids} == {"spine1", "spine2"}
    down = fab.cable("leaf1", "spine1")
    te.on_links_down(down, down_view(fab, down), now=1.0)
    ids += [place(te, fab, 100 + i, pol, view=down_view(fab, down)).flow.flow_id for i in range(40)]
    assert {spine_of(fab, te, i) for i in ids} == {"spine2", "spine3"}


# --------------------------------------------------------------------- placing
def test_dscp_63_is_valid_and_64_is_not() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    assert place(te, fab, 1, policy(Strategy.ECMP), dscp=63).flow.dscp == 63
    with pytest.raises(InvalidArgument) as err:
        place(te, fab, 2, policy(Strategy.ECMP), dscp=64)
    assert (err.value.field, err.value.reason) == ("dscp", "must be 0..63, got 64")


def test_a_negative_demand_is_refused_and_zero_is_allowed() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    assert place(te, fab, 1, policy(Strategy.ECMP), demand=0.0).flow.demand_bps == 0.0
    with pytest.raises(InvalidArgument) as err:
        place(te, fab, 2, policy(Strategy.ECMP), demand=-5.0)
    assert (err.value.field, err.value.reason) == ("demand_bps", "must be >= 0, got -5.0")


def test_a_placement_records_the_flow_and_says_who_chose() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    pol = policy(Strategy.SHORTEST, name="rdma")
    placed = place(te, fab, 1, pol, dscp=46)
    assert placed.created and placed.strategy is Strategy.SHORTEST
    assert placed.reason == "shortest: first of 2 sorted paths"
    assert (placed.flow.dscp, placed.flow.policy, placed.flow.fell_back) == (46, "rdma", False)
    again = place(te, fab, 1, pol)
    assert (again.created, again.strategy, again.reason) == (
        False,
        Strategy.SHORTEST,
        "already placed",
    )
    assert again.flow == placed.flow


def test_a_placement_counts_the_flows_demand() -> None:
    fab = asymmetric()  # spine1 at 10G, spine2 at 40G
    te = TrafficEngineer()
    load = {fab.link("leaf1", "spine1"): 2 * GBIT, fab.link("leaf1", "spine2"): 12 * GBIT}
    pol = policy(Strategy.LEAST_UTILIZED)
    small = place(te, fab, 1, pol, view=fab.view(load=load), demand=0.1 * GBIT)
    big = place(te, fab, 2, pol, view=fab.view(load=load), demand=8 * GBIT)
    assert spine_of(fab, te, small.flow.flow_id) == "spine1"
    assert spine_of(fab, te, big.flow.flow_id) == "spine2"


def test_a_pinned_flow_that_fell_back_at_placement_says_so_and_is_flagged() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    pol = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.SHORTEST)
    down = fab.cable("spine1", "leaf2")
    placed = place(te, fab, 1, pol, view=down_view(fab, down))
    assert placed.strategy is Strategy.SHORTEST and placed.flow.fell_back
    assert placed.reason.startswith("pinned path impossible (")
    # When the link heals it returns to its pinned path.
    back = te.on_links_up(down, fab.view(), now=1.0)
    assert [(m.flow_id, m.reason) for m in back] == [(placed.flow.flow_id, "policy")]
    assert spine_of(fab, te, placed.flow.flow_id) == "spine1"


def test_a_detour_placement_explains_why_it_is_long() -> None:
    fab = asymmetric()
    te = TrafficEngineer()
    view = fab.view(drained=fab.cable("leaf1", "spine1"))
    placed = place(te, fab, 1, policy(Strategy.SHORTEST), dst="leaf3", view=view)
    assert placed.reason == (
        "shortest: first of 1 sorted paths "
        "(every shortest path crosses a drained or down link; using a detour)"
    )


def test_an_impossible_pinned_flow_with_nothing_to_fall_back_on_is_refused() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    pol = policy(Strategy.PINNED, pinned_path=("spine9",))
    cut = down_view(fab, fab.links_of("leaf2"))
    with pytest.raises(FailedPrecondition) as err:
        place(te, fab, 1, pol, view=cut)
    assert str(err.value) == (
        "pinned path impossible (pinned switch 'spine9' is not in the fabric) "
        "and no candidate to fall back on"
    )
    assert len(te) == 0


# --------------------------------------------------------------------- preview
def test_preview_answers_like_place_would_and_changes_nothing() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer(visibility_s=3.0)
    pol = policy(Strategy.LEAST_UTILIZED)
    first = place(te, fab, 1, pol, now=0.0)
    assert spine_of(fab, te, first.flow.flow_id) == "spine1"
    # One second later the first flow's reservation still counts...
    soon = preview(te, fab, 2, pol, now=1.0, demand=1 * GBIT)
    assert fab.names[soon.path.switches[1]] == "spine2"
    assert soon.reason == "least-utilized: peak utilization 10% (best of 2)"
    assert len(te) == 1 and te.flow_by_five_tuple(five_tuple(2)) is None
    # ...and previewing reserved nothing: the second real flow also goes to spine2.
    second = place(te, fab, 2, pol, now=1.0)
    assert spine_of(fab, te, second.flow.flow_id) == "spine2"
    # Once reservations expire, counters alone decide: all idle, spine1 first.
    later = preview(te, fab, 3, pol, now=10.0)
    assert fab.names[later.path.switches[1]] == "spine1"


def test_preview_uses_the_default_demand_unless_given_one() -> None:
    fab = asymmetric()
    te = TrafficEngineer(default_demand_bps=8 * GBIT)
    load = {fab.link("leaf1", "spine1"): 2 * GBIT, fab.link("leaf1", "spine2"): 12 * GBIT}
    pol = policy(Strategy.LEAST_UTILIZED)

    def spine(demand: float | None) -> str:
        choice = preview(te, fab, 1, pol, now=0.0, view=fab.view(load=load), demand=demand)
        return fab.names[choice.path.switches[1]]

    assert spine(None) == "spine2"  # 8 Gbit/s assumed: the 40G spine
    assert spine(0.1 * GBIT) == "spine1"


def test_preview_of_an_unreachable_pair_is_a_failed_precondition() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    with pytest.raises(FailedPrecondition, match="no path from leaf1 to leaf2"):
        preview(
            te, fab, 1, policy(Strategy.ECMP), now=0.0, view=down_view(fab, fab.links_of("leaf2"))
        )


# ------------------------------------------------------------------ measuring
def test_a_zero_rate_sample_is_a_measurement_and_frees_the_reservation() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer(visibility_s=10.0)
    pol = policy(Strategy.LEAST_UTILIZED)
    idle = place(te, fab, 1, pol, demand=5 * GBIT).flow.flow_id
    te.update_rates({999: 1e6, idle: 0.0}, now=1.0)  # an unknown id first: skipped
    flow = te.flow(idle)
    assert flow is not None and flow.measured and flow.load_bps == 0.0
    assert te.extra_load.get(fab.link("leaf1", "spine1")) == 0.0
    assert spine_of(fab, te, place(te, fab, 2, pol, now=1.0).flow.flow_id) == "spine1"


def test_a_negative_rate_sample_is_ignored() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid = place(te, fab, 1, policy(Strategy.ECMP), demand=5e6).flow.flow_id
    te.update_rates({fid: -1.0}, now=1.0)
    flow = te.flow(fid)
    assert flow is not None and not flow.measured and flow.load_bps == 5e6


# ------------------------------------------------------------------- removing
def test_a_removed_flow_is_forgotten_everywhere() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid, _ = stranded_flow(te, fab)
    removed = te.remove(fid)
    assert removed is not None and removed.flow_id == fid
    assert te.policy_of(fid) is None and te.stranded() == frozenset()
    assert te.flow(fid) is None and te.remove(fid) is None
    assert te.rebalance(fab.view(), now=2.0).moves == ()


# ------------------------------------------------------------------- failures
def test_a_move_records_its_reason_and_reserves_the_new_path() -> None:
    fab = leaf_spine(3, 2)
    te = TrafficEngineer(visibility_s=5.0)
    pol = policy(Strategy.LEAST_UTILIZED)
    fid = place(te, fab, 1, pol, demand=4 * GBIT, now=0.0).flow.flow_id
    te.update_rates({fid: 4 * GBIT}, now=1.0)  # measured: the placement estimate settles
    down = fab.cable("leaf1", "spine1")
    outcome = te.on_links_down(down, down_view(fab, down), now=2.0)
    (move,) = outcome.moves
    assert move.reason == "failure"
    assert move.detail == "least-utilized: peak utilization 40% (best of 2)"
    flow = te.flow(fid)
    assert flow is not None and (flow.last_move_reason, flow.last_move_at) == ("failure", 2.0)
    # The counters do not show the moved flow on spine2 yet; the engineer does.
    assert te.extra_load.get(fab.link("leaf1", "spine2")) == pytest.approx(4 * GBIT)
    assert te.extra_load.get(fab.link("spine1", "leaf2")) == pytest.approx(-4 * GBIT)
    nxt = place(te, fab, 2, pol, view=down_view(fab, down), now=2.5)
    assert spine_of(fab, te, nxt.flow.flow_id) == "spine3"


def test_rerouting_after_a_failure_weighs_the_flows_own_rate() -> None:
    fab = leaf_spine(3, 2)
    capacity = dict(fab.capacity)
    for lid in fab.links_of("spine3"):
        capacity[lid] = 40 * GBIT
    load = {fab.link("leaf1", "spine2"): 2 * GBIT, fab.link("leaf1", "spine3"): 12 * GBIT}

    def view(graph: object = None) -> NetworkView:
        return NetworkView(
            graph=fab.graph if graph is None else graph,
            capacity=capacity,
            load_bps=load,
            names=fab.names,
        )

    te = TrafficEngineer(visibility_s=0.0)
    pol = policy(Strategy.LEAST_UTILIZED)
    fid = place(te, fab, 1, pol, view=view(), demand=0.1 * GBIT).flow.flow_id
    assert spine_of(fab, te, fid) == "spine1"  # idle spine1
    te.update_rates({fid: 8 * GBIT}, now=1.0)  # it turns out to be an elephant
    down = fab.cable("leaf1", "spine1")
    te.on_links_down(down, view(fab.graph_without(links=down)), now=2.0)
    # spine2: (2+8)/10 = 100%; spine3: (12+8)/40 = 50%.
    assert spine_of(fab, te, fid) == "spine3"


def test_on_links_up_reports_flows_that_are_still_stranded() -> None:
    fab = leaf_spine(2, 3)
    te = TrafficEngineer()
    fid, down = stranded_flow(te, fab)
    # Some other cable comes back; leaf2 is still cut off.
    outcome = te.on_links_up(fab.cable("leaf3", "spine1"), down_view(fab, down), now=2.0)
    assert outcome.moves == () and outcome.stranded == (fid,)
    again = te.rebalance(down_view(fab, down), now=3.0)
    assert again.stranded == (fid,)


def test_rebalance_brings_back_a_stranded_flow_when_its_link_returns() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer(visibility_s=5.0)
    fid, _ = stranded_flow(te, fab)
    # Only spine2's cable returns, and the hub only runs a rebalance round.
    partial = down_view(fab, fab.cable("leaf2", "spine1"))
    outcome = te.rebalance(partial, now=4.0)
    assert [(m.flow_id, m.reason) for m in outcome] == [(fid, "failure")]
    assert te.stranded() == frozenset() and spine_of(fab, te, fid) == "spine2"
    flow = te.flow(fid)
    assert flow is not None and flow.last_move_at == 4.0


def test_flows_of_a_switch_that_left_stay_stranded_without_error() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid = place(te, fab, 1, policy(Strategy.SHORTEST)).flow.flow_id
    gone = fab.links_of("leaf1")
    te.on_links_down(gone, down_view(fab, gone), now=1.0)
    without_leaf1 = fab.view(graph=fab.graph_without(switches=["leaf1"]))
    outcome = te.rebalance(without_leaf1, now=2.0)
    assert outcome.moves == () and outcome.stranded == (fid,)


# --------------------------------------------------------------------- pinned
def test_several_fallen_back_pinned_flows_each_return_when_they_can() -> None:
    fab = leaf_spine(3, 3)
    te = TrafficEngineer()
    to_leaf2 = policy(Strategy.PINNED, pinned_path=("leaf1", "spine1", "leaf2"))
    to_leaf3 = policy(Strategy.PINNED, name="b", pinned_path=("leaf1", "spine1", "leaf3"))
    stays = place(te, fab, 1, to_leaf2).flow.flow_id
    returns = place(te, fab, 2, to_leaf3, dst="leaf3").flow.flow_id
    assert stays < returns
    cut = fab.cable("leaf1", "spine1")
    te.on_links_down(cut, down_view(fab, cut), now=1.0)
    assert getattr(te.flow(stays), "fell_back", None) is True
    assert getattr(te.flow(returns), "fell_back", None) is True
    # The cable comes back, but spine1 -> leaf2 is now down: only the second can return.
    still = [fab.link("spine1", "leaf2")]
    back = te.on_links_up(cut, down_view(fab, still), now=2.0)
    assert [(m.flow_id, m.reason) for m in back] == [(returns, "policy")]
    assert spine_of(fab, te, returns) == "spine1"
    assert getattr(te.flow(stays), "fell_back", None) is True
    assert [m.flow_id for m in te.on_links_up(still, fab.view(), now=3.0)] == [stays]


def test_a_fallback_that_already_took_the_pinned_path_is_no_longer_a_fallback() -> None:
    fab = leaf_spine(2, 3)
    te = TrafficEngineer()
    pol = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.SHORTEST)
    # Placed before spine1 was named: the pinned switch is unknown, shortest
    # takes spine1 anyway.
    nameless = {d: n for d, n in fab.names.items() if n != "spine1"}
    early = NetworkView(graph=fab.graph, capacity=fab.capacity, names=nameless)
    first = place(te, fab, 1, pol, view=early).flow
    second = place(te, fab, 2, pol, view=early, dst="leaf3").flow
    assert first.fell_back and second.fell_back
    outcome = te.on_links_up([], fab.view(), now=1.0)
    assert outcome.moves == ()
    for fid in (first.flow_id, second.flow_id):
        flow = te.flow(fid)
        assert flow is not None and not flow.fell_back and spine_of(fab, te, fid) == "spine1"


def test_a_fallen_back_pinned_flow_moved_by_congestion_stays_a_fallback() -> None:
    fab = leaf_spine(3, 2, capacity_bps=10 * GBIT)
    te = TrafficEngineer(visibility_s=0.0)
    pol = policy(
        Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.LEAST_UTILIZED, params=STILL
    )
    cut = fab.cable("spine1", "leaf2")
    view = down_view(fab, cut)
    busy = down_view(fab, cut + fab.cable("leaf1", "spine3"))
    ids = [place(te, fab, i, pol, view=busy, demand=5 * GBIT).flow.flow_id for i in range(2)]
    assert {spine_of(fab, te, i) for i in ids} == {"spine2"}
    te.update_rates(dict.fromkeys(ids, 5 * GBIT), now=1.0)
    hot = {fab.link("leaf1", "spine2"): 10 * GBIT, fab.link("spine2", "leaf2"): 10 * GBIT}
    moved = te.rebalance(replace(view, load_bps=hot), now=2.0, reason="congestion")
    assert [m.reason for m in moved] == ["congestion"]
    mover = moved.moves[0].flow_id
    assert spine_of(fab, te, mover) == "spine3"
    assert moved.moves[0].detail.startswith(f"off {fab.link('leaf1', 'spine2')} at 50%")
    assert getattr(te.flow(mover), "fell_back", None) is True
    back = te.on_links_up(cut, fab.view(), now=3.0)
    assert sorted(m.flow_id for m in back) == sorted(ids)
    assert {spine_of(fab, te, i) for i in ids} == {"spine1"}


def test_a_policy_change_that_pins_the_current_path_clears_the_fallback() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    pinned1 = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.SHORTEST)
    cut = fab.cable("spine1", "leaf2")
    fid = place(te, fab, 1, pinned1, view=down_view(fab, cut)).flow.flow_id
    assert spine_of(fab, te, fid) == "spine2"
    pinned2 = replace(pinned1, pinned_path=("spine2",), version=2)
    moves, gone = te.policies_changed(lambda ft, dscp: pinned2, down_view(fab, cut), now=1.0)
    assert (moves, gone) == ([], [])
    flow = te.flow(fid)
    assert flow is not None and not flow.fell_back
    # No longer a fallback: healing spine1 does not move it.
    assert te.on_links_up(cut, fab.view(), now=2.0).moves == ()


# ---------------------------------------------------------------------- drains
def test_drain_marks_the_links_itself_when_the_view_does_not() -> None:
    fab = leaf_spine(3, 2)
    te = TrafficEngineer()
    a = place(te, fab, 1, policy(Strategy.SHORTEST)).flow.flow_id
    b = place(te, fab, 2, policy(Strategy.PINNED, pinned_path=("spine2",))).flow.flow_id
    links = [fab.link("leaf1", "spine1"), fab.link("leaf1", "spine2")]
    outcome = te.drain(links, fab.view(), now=1.0)
    assert sorted((m.flow_id, m.reason) for m in outcome) == [(a, "drain"), (b, "drain")]
    assert spine_of(fab, te, a) == "spine3" and spine_of(fab, te, b) == "spine3"
    detail = {m.flow_id: m.detail for m in outcome}
    assert detail[a] == "shortest: first of 1 sorted paths"


def test_a_flow_whose_every_link_is_drained_is_reported_stuck() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid = place(te, fab, 1, policy(Strategy.SHORTEST)).flow.flow_id
    everything = [lid for s in fab.spines for lid in fab.links_of(s)]
    outcome = te.drain(everything, fab.view(drained=everything), now=1.0)
    assert outcome.moves == () and outcome.stuck == (fid,)


def test_rebalance_moves_flows_left_on_drained_links_within_its_budget() -> None:
    fab = leaf_spine(3, 3)
    te = TrafficEngineer(max_moves_per_round=2)
    pol = policy(Strategy.SHORTEST)
    on_a = place(te, fab, 1, pol).flow.flow_id  # leaf1 -> spine1 -> leaf2
    on_b = place(te, fab, 2, pol, src="leaf3").flow.flow_id  # leaf3 -> spine1 -> leaf2
    other = place(te, fab, 3, pol, src="leaf2", dst="leaf3").flow.flow_id
    drained = [
        fab.link("leaf1", "spine1"),
        fab.link("leaf3", "spine1"),
        fab.link("leaf2", "spine1"),
    ]
    outcome = te.rebalance(fab.view(drained=drained), now=1.0)
    assert sorted((m.flow_id, m.reason) for m in outcome) == [(on_a, "drain"), (on_b, "drain")]
    assert spine_of(fab, te, other) == "spine1"  # over budget: next round
    nxt = te.rebalance(fab.view(drained=drained), now=2.0)
    assert [(m.flow_id, m.reason) for m in nxt] == [(other, "drain")]


def test_repairs_come_first_and_drain_moves_get_what_is_left_of_the_budget() -> None:
    fab = leaf_spine(3, 3)
    te = TrafficEngineer(max_moves_per_round=2)
    pol = policy(Strategy.SHORTEST)
    cut_a = place(te, fab, 1, pol).flow.flow_id  # leaf1 -> spine1 -> leaf2
    cut_b = place(te, fab, 2, pol, src="leaf3").flow.flow_id  # leaf3 -> spine1 -> leaf2
    drained = place(te, fab, 3, pol, dst="leaf3").flow.flow_id  # leaf1 -> spine1 -> leaf3
    down = fab.links_of("leaf2")
    te.on_links_down(down, down_view(fab, down), now=1.0)
    assert te.stranded() == {cut_a, cut_b}
    # leaf2 returns without its spine1 cable, and leaf1 -> spine1 is drained.
    view = down_view(fab, fab.cable("leaf2", "spine1"), drained=[fab.link("leaf1", "spine1")])
    outcome = te.rebalance(view, now=2.0)
    assert sorted((m.flow_id, m.reason) for m in outcome) == [
        (cut_a, "failure"),
        (cut_b, "failure"),
    ]
    assert spine_of(fab, te, drained) == "spine1"
    nxt = te.rebalance(view, now=3.0)
    assert [(m.flow_id, m.reason) for m in nxt] == [(drained, "drain")]


def test_a_drain_move_uses_what_is_left_of_the_round_for_rebalancing() -> None:
    fab = leaf_spine(3, 3, capacity_bps=10 * GBIT)
    te = TrafficEngineer(max_moves_per_round=1, visibility_s=0.0)
    lu = policy(Strategy.LEAST_UTILIZED, params=STILL)
    only_spine1 = down_view(fab, fab.cable("leaf1", "spine2") + fab.cable("leaf1", "spine3"))
    hot_ids = [
        place(te, fab, i, lu, view=only_spine1, demand=5 * GBIT).flow.flow_id for i in range(2)
    ]
    te.update_rates(dict.fromkeys(hot_ids, 5 * GBIT), now=1.0)
    drained_id = place(te, fab, 9, policy(Strategy.SHORTEST), src="leaf3", now=1.0).flow.flow_id
    assert spine_of(fab, te, drained_id) == "spine1"
    hot = {fab.link("leaf1", "spine1"): 10 * GBIT, fab.link("spine1", "leaf2"): 10 * GBIT}
    drained = [fab.link("leaf3", "spine1")]
    outcome = te.rebalance(fab.view(load=hot, drained=drained), now=2.0)
    # One move per round: the drain goes first, the hot link waits.
    assert [(m.flow_id, m.reason) for m in outcome] == [(drained_id, "drain")]
    second = te.rebalance(fab.view(load=hot, drained=drained), now=3.0)
    assert [m.reason for m in second] == ["rebalance"]


# ------------------------------------------------------------- policy changes
def test_policy_lookup_sees_each_flows_dscp() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    ecmp = policy(Strategy.SHORTEST, name="bulk")
    place(te, fab, 1, ecmp, dscp=10)
    place(te, fab, 2, ecmp, dscp=46)
    seen: list[tuple[FiveTuple, int]] = []

    def book(ft: FiveTuple, dscp: int) -> Policy:
        seen.append((ft, dscp))
        return ecmp

    te.policies_changed(book, fab.view(), now=1.0)
    assert sorted(seen) == [(five_tuple(1), 10), (five_tuple(2), 46)]


def test_only_flows_whose_policy_changed_are_rerouted_and_renamed() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer(visibility_s=0.0)
    keep = policy(Strategy.SHORTEST, name="keep")
    old = policy(Strategy.PINNED, name="old", pinned_path=("spine2",))
    kept = place(te, fab, 1, keep).flow.flow_id
    renamed = place(te, fab, 2, old).flow.flow_id
    assert spine_of(fab, te, renamed) == "spine2"
    new = policy(Strategy.SHORTEST, name="new")

    def book(ft: FiveTuple, dscp: int) -> Policy:
        return keep if ft == five_tuple(1) else new

    moves, gone = te.policies_changed(book, fab.view(), now=1.0)
    assert [(m.flow_id, m.reason) for m in moves] == [(renamed, "policy")]
    assert moves[0].detail == "shortest: first of 2 sorted paths"
    assert gone == []
    assert getattr(te.flow(renamed), "policy", None) == "new"
    assert getattr(te.flow(kept), "policy", None) == "keep"
    assert te.policy_of(renamed) is new


def test_a_renamed_policy_with_the_same_path_keeps_the_flow_in_place() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid = place(te, fab, 1, policy(Strategy.SHORTEST, name="a")).flow.flow_id
    before = te.flow(fid)
    moves, _ = te.policies_changed(
        lambda ft, dscp: policy(Strategy.SHORTEST, name="b"), fab.view(), now=1.0
    )
    after = te.flow(fid)
    assert moves == [] and after is not None and before is not None
    assert (after.policy, after.path, after.generation) == ("b", before.path, before.generation)


def test_a_policy_change_does_not_count_the_flow_against_its_own_path() -> None:
    """A flow measured at 5 Gbit/s on spine1 (which shows 6: its own 5 and 1 more) is
    not moved to spine2, where another flow just placed reserves 4 Gbit/s."""
    fab = leaf_spine(2, 3)
    te = TrafficEngineer(visibility_s=10.0)
    shortest = policy(Strategy.SHORTEST, name="a")
    fid = place(te, fab, 1, shortest, demand=5 * GBIT).flow.flow_id
    te.update_rates({fid: 5 * GBIT}, now=1.0)
    load = {fab.link("leaf1", "spine1"): 6 * GBIT, fab.link("spine1", "leaf2"): 6 * GBIT}
    pinned = policy(Strategy.PINNED, name="b", pinned_path=("spine2",))
    other = place(te, fab, 2, pinned, dst="leaf3", demand=4 * GBIT, now=2.0).flow.flow_id
    assert spine_of(fab, te, other) == "spine2"
    least = policy(Strategy.LEAST_UTILIZED, name="a")

    def book(ft: FiveTuple, dscp: int) -> Policy:
        return least if ft == five_tuple(1) else pinned

    # spine1: (6 - 5 + 5)/10 = 60%; spine2: (4 reserved + 5)/10 = 90%.
    moves, _ = te.policies_changed(book, fab.view(load=load), now=2.5)
    assert moves == [] and spine_of(fab, te, fid) == "spine1"


def test_preview_of_a_hashed_policy_hashes_the_flow_like_place() -> None:
    fab = leaf_spine(4, 2)
    te = TrafficEngineer(seed=7)
    pol = policy(Strategy.ECMP)
    for i in range(12):
        assert preview(te, fab, i, pol, now=0.0).path == place(te, fab, i, pol).flow.path


def test_an_unknown_rebalance_reason_is_refused_with_the_allowed_ones() -> None:
    fab = leaf_spine(2, 2)
    with pytest.raises(InvalidArgument) as err:
        TrafficEngineer().rebalance(fab.view(), now=0.0, reason="boredom")
    assert (err.value.field, err.value.reason) == (
        "reason",
        "must be 'rebalance' or 'congestion', got 'boredom'",
    )
