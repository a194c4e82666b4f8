"""The placement state: slots, incremental updates, candidate rows, graph and next hops."""

from __future__ import annotations

import random

import numpy as np
import pytest
from synthetic import GBIT, Fabric, asymmetric, leaf_spine, three_tier
from te_workload import shuffled_leaf_spine

from controller.errors import InvalidArgument
from controller.fabric.events import LinkDown, LinkUp, SwitchDown, SwitchUp
from controller.fabric.model import Link, LinkId, PortRef, Switch, graph_of
from controller.routing import fastpath
from controller.routing.fabricstate import FabricState
from controller.routing.nexthops import next_hops_to
from controller.routing.paths import PathCache


def links_of(fab: Fabric) -> list[LinkId]:
    return sorted(attrs["link"] for _, _, attrs in fab.graph.edges(data=True))


def edges(graph: object) -> set[tuple[int, int, LinkId]]:
    return set(graph.edges(data="link"))  # type: ignore[attr-defined]


def same_arrays(a: FabricState, b: FabricState) -> None:
    """Two states agree link by link (their layouts may number slots differently)."""
    for lid in set(a.layout.index) | set(b.layout.index):
        sa, sb = a.layout.slot(lid), b.layout.slot(lid)
        alive_a = sa >= 0 and bool(a.alive[sa])
        alive_b = sb >= 0 and bool(b.alive[sb])
        assert alive_a == alive_b, lid
        if alive_a:
            assert a.usable[sa] == b.usable[sb], lid
            assert a.penalised[sa] == b.penalised[sb], lid
            assert a.capacity_eff[sa] == b.capacity_eff[sb], lid
    assert edges(a.graph) == edges(b.graph)
    assert a.drained == b.drained


def test_leaf_pairs_get_array_rows_in_path_order() -> None:
    for fab in (leaf_spine(4, 6), shuffled_leaf_spine(5, 7, seed=3), asymmetric()):
        state = FabricState.from_view(fab.view())
        cache = PathCache(fab.graph)
        for a in fab.leaves:
            for b in fab.leaves:
                src, dst = fab.dpid(a), fab.dpid(b)
                rows = state.rows(src, dst)
                if a == b:
                    assert rows is None
                    continue
                assert rows is not None
                usable = [
                    int(j)
                    for j in rows.order
                    if state.usable[fastpath.slots(rows, int(j))[0]]
                    and state.usable[fastpath.slots(rows, int(j))[1]]
                ]
                got = [fastpath.path_of(state, rows, j) for j in usable]
                assert got == cache.paths(src, dst), (a, b)


def test_only_same_side_pairs_of_a_bipartite_fabric_take_the_fast_path() -> None:
    fab = three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2)
    state = FabricState.from_view(fab.view())
    assert state.layout.bipartite is not None  # leaves and spines on one side, aggs on the other
    assert state.rows(fab.dpid("leaf1-1"), fab.dpid("leaf1-2")) is not None
    assert state.rows(fab.dpid("leaf1-1"), fab.dpid("agg1-1")) is None  # different sides
    odd = leaf_spine(2, 3)
    lid = LinkId(PortRef(odd.dpid("leaf1"), 90), PortRef(odd.dpid("leaf2"), 90))
    state = FabricState.from_view(odd.view())
    state.link_up(lid)  # a leaf-to-leaf cable: no longer bipartite
    assert state.layout.bipartite is None
    assert state.rows(odd.dpid("leaf1"), odd.dpid("leaf3")) is None
    assert (odd.dpid("leaf1"), odd.dpid("leaf2"), lid) in edges(state.graph)


def test_more_middles_than_max_paths_use_the_general_path() -> None:
    fab = leaf_spine(5, 3)
    assert (
        FabricState.from_view(fab.view(), max_paths=4).rows(fab.dpid("leaf1"), fab.dpid("leaf2"))
        is None
    )
    assert (
        FabricState.from_view(fab.view(), max_paths=5).rows(fab.dpid("leaf1"), fab.dpid("leaf2"))
        is not None
    )


def test_incremental_updates_match_a_state_built_from_scratch() -> None:
    fab = shuffled_leaf_spine(4, 6, seed=9)
    rng = random.Random(4)
    links = links_of(fab)
    switches = {d: Switch(dpid=d, name=n) for d, n in fab.names.items()}
    up = set(links)
    drained: set[LinkId] = set()
    capacity = {lid: rng.choice((0.0, 10 * GBIT, 40 * GBIT)) for lid in links}
    load: dict[LinkId, float] = {}
    state = FabricState.of_fabric(
        switches.values(), [Link(lid, 0.0, capacity_bps=capacity[lid]) for lid in links]
    )
    for step in range(400):
        op = rng.random()
        lid = rng.choice(links)
        if op < 0.25:
            up.discard(lid)
            state.link_down(lid)
        elif op < 0.45:
            up.add(lid)
            state.link_up(lid)
        elif op < 0.6:
            flag = rng.random() < 0.5
            (drained.add if flag else drained.discard)(lid)
            state.set_drained(lid, flag)
        elif op < 0.8:
            load[lid] = rng.uniform(0, 30 * GBIT)
            state.set_load(lid, load[lid])
        elif op < 0.9:
            capacity[lid] = rng.choice((0.0, 10 * GBIT))
            state.set_capacity(lid, capacity[lid])
        else:
            dpid = rng.choice(sorted(switches))
            on = rng.random() < 0.6
            switches[dpid] = Switch(dpid=dpid, name=fab.names[dpid], connected=on)
            (state.switch_up(dpid, name=fab.names[dpid]) if on else state.switch_down(dpid))
        if step % 20 == 0:
            fresh = FabricState.of_fabric(
                switches.values(),
                [Link(lid, 0.0, capacity_bps=capacity[lid], drained=lid in drained) for lid in up],
            )
            fresh.set_loads(load)
            for gone in set(links) - up:
                fresh.set_drained(gone, gone in drained)
            same_arrays(state, fresh)
            live = {d: sw for d, sw in switches.items()}
            model = graph_of(live, {lid: Link(lid, 0.0) for lid in up})
            assert edges(state.graph) == edges(model)


def test_events_drive_the_state_and_bump_its_version() -> None:
    fab = leaf_spine(2, 2)
    state = FabricState.from_view(fab.view())
    spine = fab.dpid("spine1")
    before = state.version
    cable = fab.cable("leaf1", "spine1")
    state.apply([SwitchDown(time=1.0, dpid=spine, name="spine1")])
    state.apply(
        [LinkDown(time=1.0, link=lid, reason="switch-down") for lid in fab.links_of("spine1")]
    )
    assert state.version > before
    assert not state.is_edge(cable[0]) and spine not in state.graph
    state.apply([SwitchUp(time=2.0, dpid=spine, name="spine1")])
    state.apply([LinkUp(time=2.0, link=lid) for lid in cable])
    assert state.is_edge(cable[0]) and state.is_edge(cable[1])
    assert not state.is_edge(fab.link("leaf2", "spine1"))  # never came back up
    state.apply([LinkUp(time=3.0, link=fab.link("leaf2", "spine1"))])
    assert state.is_edge(fab.link("leaf2", "spine1"))


def test_next_hops_agree_with_the_per_destination_table() -> None:
    rng = random.Random(7)
    fabrics = [
        leaf_spine(4, 6),
        shuffled_leaf_spine(3, 5, seed=2),
        three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2),
        asymmetric(),
    ]
    for fab in fabrics:
        links = links_of(fab)
        state = FabricState.from_view(fab.view())
        down: set[LinkId] = set()
        drained: set[LinkId] = set()
        for _ in range(30):
            lid = rng.choice(links)
            if rng.random() < 0.5:
                down.add(lid)
                state.link_down(lid)
            else:
                drained.add(lid)
                state.set_drained(lid, True)
            alive = [lid for lid in links if lid not in down]
            dpids = sorted(fab.names)
            for _ in range(10):
                src, dst = rng.choice(dpids), rng.choice(dpids)
                want = next_hops_to(dst, alive, drained=frozenset(drained)).get(src, ())
                assert state.next_hops(src, dst) == want, (fab.names[src], fab.names[dst])
            for dpid in dpids:  # a pair inside one switch: the table has no entry for it
                assert state.next_hops(dpid, dpid) == () == next_hops_to(dpid, alive).get(dpid, ())


def test_parallel_cables_count_as_next_hops_and_keep_the_graph_right() -> None:
    fab = leaf_spine(2, 2)
    extra = [
        LinkId(PortRef(fab.dpid("leaf1"), 50), PortRef(fab.dpid("spine1"), 50)),
        LinkId(PortRef(fab.dpid("spine1"), 50), PortRef(fab.dpid("leaf1"), 50)),
    ]
    state = FabricState.from_view(fab.view())
    for lid in extra:
        state.link_up(lid)
    every = [*links_of(fab), *extra]
    leaf1, leaf2 = fab.dpid("leaf1"), fab.dpid("leaf2")
    assert state.next_hops(leaf1, leaf2) == next_hops_to(leaf2, every)[leaf1]
    first = fab.link("leaf1", "spine1")
    state.link_down(first)  # the parallel cable becomes the graph's edge
    assert state.graph.adj[leaf1][fab.dpid("spine1")]["link"] == extra[0]
    rows = state.rows(leaf1, leaf2)
    assert rows is not None
    paths = [fastpath.path_of(state, rows, j) for j in range(2)]
    assert extra[0] in paths[0].links + paths[1].links


def test_loads_and_capacities_land_in_the_arrays() -> None:
    fab = leaf_spine(2, 3)
    state = FabricState.from_view(fab.view())
    lid = fab.link("leaf1", "spine2")
    state.set_loads({lid: 3e9, LinkId(PortRef(1, 1), PortRef(2, 2)): 5.0})  # unknown link ignored
    slot = state.layout.slot(lid)
    assert state.load[slot] == 3e9 and state.penalised[slot] == 3e9
    assert state.load_bps[lid] == 3e9 and state.utilization(lid) == pytest.approx(0.3)
    state.set_drained(lid, True)
    assert state.penalised[slot] == np.inf and lid in state.drained
    state.set_capacity(lid, 0.0)
    assert state.capacity_eff[slot] == state.unknown_capacity_bps
    assert state.capacity_of(lid) == state.unknown_capacity_bps


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(InvalidArgument) as err:
        FabricState(max_paths=0)
    assert err.value.field == "max_paths"
    with pytest.raises(InvalidArgument):
        FabricState(unknown_capacity_bps=0)
    with pytest.raises(InvalidArgument):
        FabricState.from_view(object())


def test_a_state_fed_only_the_topologys_events_matches_the_topology() -> None:
    """The wiring the engine uses: every event list the topology returns goes to
    ``state.apply``; the state's graph and next hops then equal the topology's."""
    from controller.fabric.model import Port
    from controller.fabric.topology import Topology

    fab = leaf_spine(3, 4)
    topo, state = Topology(), FabricState()
    now = 0.0
    for dpid, name in fab.names.items():
        ports = sorted({lid.src.port for lid in links_of(fab) if lid.src.dpid == dpid})
        state.apply(topo.switch_up(dpid, name=name, ports=[Port(p) for p in ports], now=now))
    for lid in links_of(fab):
        state.apply(topo.lldp_seen(tx=lid.src, rx=lid.dst, now=now))
    spine = fab.dpid("spine2")
    cable = fab.cable("leaf1", "spine1")

    def check() -> None:
        assert edges(state.graph) == edges(topo.graph())
        for dst in fab.leaves:
            table = next_hops_to(fab.dpid(dst), topo.links, drained=frozenset(topo.drained))
            for src in fab.leaves:
                assert state.next_hops(fab.dpid(src), fab.dpid(dst)) == table.get(fab.dpid(src), ())

    check()
    state.apply(topo.port_update(cable[0].src.dpid, Port(cable[0].src.port, up=False), now=1.0))
    check()
    state.apply(topo.switch_down(spine, now=2.0))
    assert spine not in state.graph
    check()
    state.apply(topo.switch_up(spine, name="spine2", ports=[], now=3.0))
    for lid in fab.links_of("spine2"):
        state.apply(topo.lldp_seen(tx=lid.src, rx=lid.dst, now=3.0))
    check()
    assert state.names[spine] == "spine2" and state.dpid_of("spine2") == spine
