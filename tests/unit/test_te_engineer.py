"""The traffic engineer: placement, failures, pinned fallback, drains, policy changes."""

from __future__ import annotations

import contextlib
import random
from dataclasses import replace

import pytest
from synthetic import GBIT, Fabric, five_tuple, leaf_spine

from controller.errors import FailedPrecondition, InvalidArgument
from controller.fabric.model import FiveTuple, LinkId
from controller.policy.model import FlowMatch, Policy, Strategy
from controller.routing.fabricstate import FabricState
from controller.routing.strategies import NetworkView
from controller.te.engineer import Placement, TrafficEngineer

AI = FlowMatch(ip_proto=17)


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
    demand: float = 1 * GBIT,
) -> Placement:
    return te.place(
        five_tuple(i),
        dscp=26,
        ingress=fab.host_port(src),
        egress=fab.host_port(dst),
        policy=pol,
        view=view or fab.view(),
        now=now,
        demand_bps=demand,
    )


def spine_of(fab: Fabric, te: TrafficEngineer, flow_id: int) -> str:
    flow = te.flow(flow_id)
    assert flow is not None
    return fab.names[flow.path.switches[1]]


def test_two_simultaneous_least_utilized_placements_take_different_spines() -> None:
    fab = leaf_spine(2, 4)
    te = TrafficEngineer(visibility_s=3.0)
    pol = policy(Strategy.LEAST_UTILIZED)
    a = place(te, fab, 1, pol, now=10.0)
    b = place(te, fab, 2, pol, now=10.0)
    assert {spine_of(fab, te, a.flow.flow_id), spine_of(fab, te, b.flow.flow_id)} == {
        "spine1",
        "spine2",
    }
    assert te.extra_load.get(fab.link("leaf1", "spine1")) == pytest.approx(1 * GBIT)
    place(te, fab, 3, pol, src="leaf3", dst="leaf4", now=13.5)  # expires what came before
    assert te.extra_load.get(fab.link("leaf1", "spine1")) == 0.0


def test_place_is_idempotent_per_five_tuple_and_validates() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    first = place(te, fab, 1, policy(Strategy.ECMP))
    again = place(te, fab, 1, policy(Strategy.ECMP))
    assert first.created and not again.created
    assert again.flow == first.flow and len(te) == 1
    with pytest.raises(InvalidArgument) as err:
        te.place(
            five_tuple(2),
            dscp=64,
            ingress=fab.host_port("leaf1"),
            egress=fab.host_port("leaf2"),
            policy=policy(Strategy.ECMP),
            view=fab.view(),
            now=0,
        )
    assert err.value.field == "dscp"
    cut = fab.view(graph=fab.graph_without(links=fab.links_of("leaf2")))
    with pytest.raises(FailedPrecondition, match="no path from leaf1 to leaf2"):
        place(te, fab, 3, policy(Strategy.ECMP), view=cut)


def test_measured_rates_replace_the_estimate_then_smooth() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer(rate_alpha=0.5)
    fid = place(te, fab, 1, policy(Strategy.ECMP), demand=5e6).flow.flow_id
    flow = te.flow(fid)
    assert flow is not None and flow.load_bps == 5e6 and not flow.measured
    te.update_rates({fid: 10e6, 999: 1.0}, now=1.0)
    flow = te.flow(fid)
    assert flow is not None and flow.measured and flow.load_bps == 10e6
    te.update_rates({fid: 20e6}, now=2.0)
    flow = te.flow(fid)
    assert flow is not None and flow.rate_bps == pytest.approx(15e6)


def test_a_measured_rate_changes_the_rate_and_nothing_else_of_a_flow() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid = place(te, fab, 1, policy(Strategy.ECMP), demand=5e6).flow.flow_id
    before = te.flow(fid)
    assert before is not None
    # Every field set apart from its default: a field the fast copy dropped or
    # shifted shows up as a difference below.
    moved = te._table.move(fid, before.path, reason="test", now=3.0)
    te._table.replace(replace(moved, fell_back=True))
    flow = te.flow(fid)
    te.update_rates({fid: 7e6}, now=4.0)
    after = te.flow(fid)
    assert flow is not None and after is not None and after is not flow
    assert after == replace(flow, rate_bps=7e6, measured=True)
    assert te._table.ids_on(flow.path.links[0]) == {fid}


def test_failure_replaces_exactly_the_affected_flows() -> None:
    fab = leaf_spine(4, 4)
    te = TrafficEngineer(seed=5)
    pol = policy(Strategy.ECMP)
    ids = [
        place(te, fab, i, pol, src=f"leaf{1 + i % 4}", dst=f"leaf{1 + (i + 1) % 4}").flow.flow_id
        for i in range(60)
    ]
    before = {fid: te.flow(fid) for fid in ids}
    on_spine2 = {fid for fid in ids if spine_of(fab, te, fid) == "spine2"}
    assert 5 < len(on_spine2) < 30
    failed = fab.links_of("spine2")
    view = fab.view(graph=fab.graph_without(switches=["spine2"]))
    outcome = te.on_links_down(failed, view, now=50.0)
    assert {m.flow_id for m in outcome.moves} == on_spine2
    assert outcome.stranded == ()
    for move in outcome:
        assert move.reason == "failure"
        assert not set(move.new_path.links) & set(failed)
        assert move.generation == 1
        assert move.old_path == getattr(before[move.flow_id], "path", None)
    for fid in set(ids) - on_spine2:
        assert te.flow(fid) == before[fid]  # untouched: same path, same generation
    for lid in failed:
        assert te.flows_on(lid) == []


def test_failure_with_a_stale_view_still_avoids_the_down_links() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid = place(te, fab, 1, policy(Strategy.SHORTEST)).flow.flow_id
    outcome = te.on_links_down([fab.link("leaf1", "spine1")], fab.view(), now=1.0)
    assert [m.flow_id for m in outcome] == [fid]
    assert spine_of(fab, te, fid) == "spine2"


def test_flows_without_a_surviving_path_are_stranded_then_recovered() -> None:
    fab = leaf_spine(2, 3)
    te = TrafficEngineer()
    cut_off = place(te, fab, 1, policy(Strategy.SHORTEST), dst="leaf2").flow.flow_id
    in_place = place(te, fab, 2, policy(Strategy.SHORTEST), src="leaf3", dst="leaf2").flow
    fine = place(te, fab, 3, policy(Strategy.SHORTEST), dst="leaf3").flow
    down = fab.links_of("leaf2")
    view = fab.view(graph=fab.graph_without(links=down))
    outcome = te.on_links_down(down, view, now=1.0)
    assert outcome.moves == () and outcome.stranded == (cut_off, in_place.flow_id)
    assert te.stranded() == {cut_off, in_place.flow_id}
    assert te.flow(fine.flow_id) == fine
    # Only spine2's cable comes back: the stranded flows move there.
    partial = fab.view(graph=fab.graph_without(links=fab.cable("leaf2", "spine1")))
    healed = te.on_links_up(fab.cable("leaf2", "spine2"), partial, now=2.0)
    assert [(m.flow_id, m.reason) for m in healed] == [
        (cut_off, "failure"),
        (in_place.flow_id, "failure"),
    ]
    assert spine_of(fab, te, cut_off) == "spine2" and te.stranded() == frozenset()


def test_a_stranded_flow_whose_path_heals_stays_put() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    flow = place(te, fab, 1, policy(Strategy.SHORTEST)).flow
    down = fab.links_of("leaf2")
    te.on_links_down(down, fab.view(graph=fab.graph_without(links=down)), now=1.0)
    assert te.stranded() == {flow.flow_id}
    outcome = te.rebalance(fab.view(), now=2.0)
    assert outcome.moves == () and te.stranded() == frozenset()
    assert te.flow(flow.flow_id) == flow


def test_pinned_flow_falls_back_on_failure_and_returns_when_healed() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    pol = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.LEAST_UTILIZED)
    fid = place(te, fab, 1, pol).flow.flow_id
    assert spine_of(fab, te, fid) == "spine1"
    down = fab.cable("spine1", "leaf2")
    outcome = te.on_links_down(down, fab.view(graph=fab.graph_without(links=down)), now=5.0)
    assert [m.reason for m in outcome] == ["failure"]
    flow = te.flow(fid)
    assert flow is not None and flow.fell_back and spine_of(fab, te, fid) == "spine2"
    back = te.on_links_up(down, fab.view(), now=9.0)
    assert [(m.flow_id, m.reason, m.generation) for m in back] == [(fid, "policy", 2)]
    flow = te.flow(fid)
    assert flow is not None and not flow.fell_back and spine_of(fab, te, fid) == "spine1"
    assert te.on_links_up(down, fab.view(), now=10.0).moves == ()


def test_drain_moves_flows_off_and_keeps_them_when_nothing_else_exists() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    fid = place(te, fab, 1, policy(Strategy.SHORTEST)).flow.flow_id
    lid = fab.link("leaf1", "spine1")
    outcome = te.drain([lid], fab.view(drained=[lid]), now=1.0)
    assert [(m.flow_id, m.reason) for m in outcome] == [(fid, "drain")]
    both = [lid, fab.link("leaf1", "spine2")]
    stuck = te.drain(both, fab.view(drained=both), now=2.0)
    assert stuck.moves == () and stuck.stuck == (fid,)
    assert spine_of(fab, te, fid) == "spine2"


def test_undrain_returns_a_pinned_flow() -> None:
    fab = leaf_spine(2, 2)
    te = TrafficEngineer()
    pol = policy(Strategy.PINNED, pinned_path=("leaf1", "spine1", "leaf2"))
    fid = place(te, fab, 1, pol).flow.flow_id
    lid = fab.link("spine1", "leaf2")
    assert [m.flow_id for m in te.drain([lid], fab.view(drained=[lid]), now=1.0)] == [fid]
    assert getattr(te.flow(fid), "fell_back", False)
    assert [m.reason for m in te.undrain([lid], fab.view(), now=2.0)] == ["policy"]
    assert spine_of(fab, te, fid) == "spine1"


def test_policy_changes_replace_governed_flows_and_release_the_rest() -> None:
    fab = leaf_spine(4, 2)
    te = TrafficEngineer(seed=2)
    ecmp = policy(Strategy.ECMP)
    ids = [place(te, fab, i, ecmp).flow.flow_id for i in range(20)]
    not_on_spine1 = {fid for fid in ids if spine_of(fab, te, fid) != "spine1"}
    assert not_on_spine1

    same = replace(ecmp, version=7, description="new words only")
    moves, gone = te.policies_changed(lambda ft, dscp: same, fab.view(), now=1.0)
    assert (moves, gone) == ([], [])
    assert te.policy_of(ids[0]) is same

    shortest = replace(ecmp, strategy=Strategy.SHORTEST, version=8)
    moves, gone = te.policies_changed(lambda ft, dscp: shortest, fab.view(), now=2.0)
    assert {m.flow_id for m in moves} == not_on_spine1 and gone == []
    assert all(m.reason == "policy" for m in moves)
    assert {spine_of(fab, te, fid) for fid in ids} == {"spine1"}

    released = {ids[0], ids[1]}

    def book(ft: FiveTuple, dscp: int) -> Policy | None:
        if ft in (five_tuple(0), five_tuple(1)):
            return None if ft == five_tuple(0) else Policy(name="default", priority=0)
        return shortest

    moves, gone = te.policies_changed(book, fab.view(), now=3.0)
    assert moves == [] and set(gone) == released
    for fid in gone:
        assert te.remove(fid) is not None
    assert len(te) == 18


def test_link_index_stays_consistent_through_engineer_operations() -> None:
    fab = leaf_spine(3, 4, capacity_bps=100e6)
    te = TrafficEngineer(seed=1, max_moves_per_round=4)
    pols = [
        policy(
            Strategy.LEAST_UTILIZED, params=replace(Policy("x", 0).params, min_move_interval_s=0)
        )
    ]
    pols.append(policy(Strategy.ECMP, name="e"))
    pols.append(policy(Strategy.PINNED, name="p", pinned_path=("spine3",)))
    rng = random.Random(42)
    all_links = [attrs["link"] for _, _, attrs in fab.graph.edges(data=True)]
    down: set[LinkId] = set()
    now = 0.0
    for step in range(300):
        now += 0.5
        graph = fab.graph_without(links=down) if down else fab.graph
        load = {lid: rng.uniform(0, 120e6) for lid in rng.sample(all_links, 6)}
        view = fab.view(graph=graph, load=load)
        op = rng.random()
        if op < 0.4:
            src, dst = rng.sample(fab.leaves, 2)
            with contextlib.suppress(FailedPrecondition):
                place(te, fab, step, rng.choice(pols), src=src, dst=dst, now=now, view=view)
        elif op < 0.55:
            cable = fab.cable(rng.choice(fab.leaves), rng.choice(fab.spines))
            down.update(cable)
            te.on_links_down(cable, fab.view(graph=fab.graph_without(links=down)), now)
        elif op < 0.7 and down:
            cable = [rng.choice(sorted(down))]
            down.difference_update(cable)
            te.on_links_up(cable, fab.view(graph=fab.graph_without(links=down)), now)
        elif op < 0.85:
            te.update_rates({f.flow_id: rng.uniform(1e6, 60e6) for f in te.snapshot()}, now)
            te.rebalance(view, now, reason="congestion")
        elif len(te):
            te.remove(rng.choice(te.snapshot()).flow_id)
        assert te.ingress_switches() == {f.ingress.dpid for f in te.snapshot()}
    index: dict[LinkId, set[int]] = {}
    for flow in te.snapshot():
        for lid in flow.path.links:
            index.setdefault(lid, set()).add(flow.flow_id)
    for lid in all_links:
        assert {f.flow_id for f in te.flows_on(lid)} == index.get(lid, set())
    assert len(te) > 20


def test_a_measured_mouse_stops_reserving_its_path() -> None:
    """A flow placed with an elephant's demand estimate but measured small (a control
    connection, say) releases its reservation at once instead of for ``visibility_s``."""
    fab = leaf_spine(2, 2)
    busy = {fab.link("leaf1", "spine2"): 0.5 * GBIT, fab.link("spine2", "leaf2"): 0.5 * GBIT}
    view = fab.view(load=busy)
    pol = policy(Strategy.LEAST_UTILIZED)
    for settle in (False, True):
        te = TrafficEngineer(visibility_s=3.0)
        mouse = place(te, fab, 1, pol, now=10.0, view=view)
        assert spine_of(fab, te, mouse.flow.flow_id) == "spine1"
        if settle:
            te.update_rates({mouse.flow.flow_id: 0.01 * GBIT}, now=10.5)
        elephant = place(te, fab, 2, pol, now=10.6, view=view)
        # Reserved at 1 Gbit/s, spine1 looks busier than spine2's measured 0.5;
        # measured at 10 Mbit/s it is the emptier one.
        expected = "spine1" if settle else "spine2"
        assert spine_of(fab, te, elephant.flow.flow_id) == expected, settle


class _CountingState(FabricState):
    """A placement state that counts how often the whole switch graph is read."""

    graph_reads = 0

    @property
    def graph(self):  # type: ignore[no-untyped-def]
        self.graph_reads += 1
        return super().graph


def test_a_link_coming_up_walks_the_fabric_only_for_flows_waiting_for_it() -> None:
    """Discovery brings every link up one by one: with no flow waiting for its pinned
    path, a link up must not build the switch graph or its paths (O(fabric) each)."""
    fab = leaf_spine(2, 2)
    state = _CountingState.from_view(fab.view())
    te = TrafficEngineer()
    place(te, fab, 1, policy(Strategy.LEAST_UTILIZED), view=state)
    reads = state.graph_reads
    assert te.on_links_up(fab.cable("spine1", "leaf2"), state, now=5.0).moves == ()
    assert state.graph_reads == reads
    pinned = policy(Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.LEAST_UTILIZED)
    fid = place(te, fab, 2, pinned).flow.flow_id
    down = fab.cable("spine1", "leaf2")
    te.on_links_down(down, fab.view(graph=fab.graph_without(links=down)), now=6.0)
    assert te.flow(fid) is not None and te.flow(fid).fell_back  # type: ignore[union-attr]
    back = te.on_links_up(down, state, now=9.0)
    assert [m.flow_id for m in back] == [fid] and state.graph_reads > reads
