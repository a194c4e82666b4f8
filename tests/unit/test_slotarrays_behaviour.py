"""The placement state's slot arrays and next hops, against straightforward references.

Guards :mod:`controller.routing.slotarrays` and :meth:`FabricState.next_hops`:
after any sequence of link and switch events, with reads in between, the
arrays say per link what a dict-based computation says, and next hops are the
ports on networkx shortest paths; a cable between two switches of one side
that comes back up is used; a fabric whose links all came up after the first
read still gets array rows; a cable flapping while the arrays are stale keeps
the slot layout (only events that move slots rebuild it); next hops of a
healthy leaf-spine come from the rows, and the per-destination table is
computed once per destination and topology version.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

import networkx as nx
import pytest
from synthetic import Fabric, leaf_spine

from controller.fabric.model import Dpid, Link, LinkId, PortNo, PortRef, Switch
from controller.routing import fabricstate
from controller.routing.fabricstate import FabricState
from controller.routing.nexthops import DRAIN_COST, next_hops_to


def cable(a: Dpid, b: Dpid, port: int) -> list[LinkId]:
    """Both directions of a cable between ``a`` and ``b`` on port ``port`` of each."""
    return [LinkId(PortRef(a, port), PortRef(b, port)), LinkId(PortRef(b, port), PortRef(a, port))]


def fabric_links(fab: Fabric) -> list[LinkId]:
    return sorted(lid for _, _, lid in fab.graph.edges(data="link"))


def reference_next_hops(
    up: Iterable[LinkId],
    connected: set[Dpid],
    src: Dpid,
    dst: Dpid,
    drained: frozenset[LinkId] = frozenset(),
) -> tuple[PortNo, ...]:
    """Ports of ``src`` whose link starts a cheapest path to ``dst``: a hop costs 1,
    a drained one ``DRAIN_COST`` (avoided while any other way exists)."""
    live = [lid for lid in up if lid.src.dpid in connected and lid.dst.dpid in connected]

    def cost(lid: LinkId) -> int:
        return DRAIN_COST if lid in drained else 1

    towards = nx.DiGraph()  # reversed: distances to dst are distances from it here
    towards.add_nodes_from(connected)
    for lid in live:
        u, v = lid.src.dpid, lid.dst.dpid
        w = min(cost(lid), towards.edges[v, u]["w"]) if towards.has_edge(v, u) else cost(lid)
        towards.add_edge(v, u, w=w)
    if src == dst or dst not in towards:
        return ()
    dist = nx.single_source_dijkstra_path_length(towards, dst, weight="w")
    if src not in dist:
        return ()
    ports = {
        lid.src.port
        for lid in live
        if lid.src.dpid == src
        and lid.dst.dpid in dist
        and dist[lid.dst.dpid] + cost(lid) == dist[src]
    }
    return tuple(sorted(ports))


def check_next_hops(
    state: FabricState,
    up: set[LinkId],
    connected: set[Dpid],
    drained: frozenset[LinkId] = frozenset(),
) -> None:
    switches = sorted({lid.src.dpid for lid in up} | {lid.dst.dpid for lid in up} | connected)
    for src in switches:
        for dst in switches:
            want = reference_next_hops(up, connected, src, dst, drained)
            assert state.next_hops(src, dst) == want, (src, dst)


def check_arrays(
    state: FabricState,
    known: Iterable[LinkId],
    up: set[LinkId],
    connected: set[Dpid],
    drained: set[LinkId],
    load: dict[LinkId, float],
) -> None:
    """Per link, what the arrays hold equals what the mappings say."""
    live = sorted(lid for lid in up if lid.src.dpid in connected and lid.dst.dpid in connected)
    edge: dict[tuple[Dpid, Dpid], LinkId] = {}
    for lid in live:  # the graph's edge of a switch pair: its lowest live cable
        edge.setdefault((lid.src.dpid, lid.dst.dpid), lid)
    edges = set(edge.values())
    state.layout  # noqa: B018 - a read brings the arrays up to date
    for lid in known:
        slot = state.layout.slot(lid)
        assert slot >= 0, lid
        alive = lid in edges
        usable = alive and lid not in drained
        assert bool(state.alive[slot]) == alive, lid
        assert bool(state.usable[slot]) == usable, lid
        want = load.get(lid, 0.0) if usable else math.inf
        assert state.penalised[slot] == want, lid


# ------------------------------------------------------------ random sequences
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrays_and_next_hops_follow_any_sequence_of_events(seed: int) -> None:
    rng = random.Random(seed)
    fab = leaf_spine(rng.choice((2, 3)), rng.choice((2, 3)))
    leaves = [fab.dpid(n) for n in fab.leaves]
    spines = [fab.dpid(n) for n in fab.spines]
    extras = cable(leaves[0], leaves[1], 90)  # two switches of one side: not bipartite
    extras += cable(leaves[0], spines[0], 91)  # a parallel cable
    links = fabric_links(fab)
    pool = links + extras
    switches = {d: Switch(dpid=d, name=n) for d, n in fab.names.items()}
    state = FabricState.of_fabric(switches.values(), [Link(lid, 0.0) for lid in links])
    known = set(links)
    up = set(links)
    connected = set(switches)
    drained: set[LinkId] = set()
    load: dict[LinkId, float] = {}
    for _ in range(60):
        op = rng.random()
        lid = rng.choice(pool)
        if op < 0.35:
            known.add(lid)
            up.add(lid)
            state.link_up(lid)
        elif op < 0.65:
            up.discard(lid)
            state.link_down(lid)
        elif op < 0.75:
            flag = rng.random() < 0.5
            (drained.add if flag else drained.discard)(lid)
            state.set_drained(lid, flag)
        elif op < 0.85:
            load[lid] = float(rng.randrange(1, 100))
            state.set_load(lid, load[lid])
        else:
            dpid = rng.choice(sorted(switches))
            if rng.random() < 0.5:
                connected.discard(dpid)
                state.switch_down(dpid)
            else:
                connected.add(dpid)
                state.switch_up(dpid)
        if rng.random() < 0.5:  # sometimes read, so later events meet fresh arrays
            check_arrays(state, known, up, connected, drained, load)
            check_next_hops(state, up, connected, frozenset(drained))


# ------------------------------------------------ one side's cable comes back
def test_a_cable_between_two_leaves_is_used_when_it_comes_back_up() -> None:
    fab = leaf_spine(2, 3)
    leaf1, leaf2 = fab.dpid("leaf1"), fab.dpid("leaf2")
    direct = cable(leaf1, leaf2, 90)
    state = FabricState.from_view(fab.view())
    for lid in direct:  # seen once, then down when the slots are laid out
        state.link_up(lid)
    for lid in direct:
        state.link_down(lid)
    up = set(fabric_links(fab))
    connected = set(fab.names)
    check_next_hops(state, up, connected)
    assert state.rows(leaf1, leaf2) is not None  # bipartite again: the fast path
    for lid in direct:
        state.link_up(lid)
        up.add(lid)
        check_next_hops(state, up, connected)
    assert state.next_hops(leaf1, leaf2) == (90,)
    assert state.layout.bipartite is None and state.rows(leaf1, leaf2) is None


# ------------------------------------------- links up after the first read
def test_a_fabric_whose_links_came_up_after_the_first_read_gets_array_rows() -> None:
    fab = leaf_spine(2, 3)
    links = fabric_links(fab)
    state = FabricState()
    for dpid, name in fab.names.items():
        state.switch_up(dpid, name=name)
    for lid in links:
        state.link_up(lid)
    for lid in links:
        state.link_down(lid)
    assert state.layout.bipartite is None  # no links: no sides yet
    assert state.next_hops(fab.dpid("leaf1"), fab.dpid("leaf2")) == ()
    for lid in links:
        state.link_up(lid)
    leaves = [fab.dpid(n) for n in fab.leaves]
    for a in leaves:
        for b in leaves:
            if a != b:
                rows = state.rows(a, b)
                assert rows is not None and len(rows.middles) == 2
    check_next_hops(state, set(links), set(fab.names))


# ----------------------------------------- flaps while the arrays are stale
def test_a_cable_flapping_while_the_arrays_are_stale_keeps_the_slot_layout() -> None:
    fab = leaf_spine(2, 3)
    links = fabric_links(fab)
    state = FabricState.from_view(fab.view())
    layout = state.layout
    assert layout.bipartite is not None
    for lid in links:  # every dense slot, the first one included
        state.switch_up(0x9999)  # a switch with no links (yet): the arrays go stale
        state.switch_down(0x9999)
        state.link_down(lid)
        state.link_up(lid)
        assert state.layout is layout, lid
    check_next_hops(state, set(links), set(fab.names))


# ---------------------------------------------------- next hops: fast path
def count_tables(monkeypatch: pytest.MonkeyPatch) -> list[Dpid]:
    """Destinations the state computes a next-hop table for, in order."""
    computed: list[Dpid] = []
    real: Callable[..., dict[Dpid, tuple[PortNo, ...]]] = next_hops_to

    def counting(dst: Dpid, *args: object, **kwargs: object) -> dict[Dpid, tuple[PortNo, ...]]:
        computed.append(dst)
        return real(dst, *args, **kwargs)

    monkeypatch.setattr(fabricstate, "next_hops_to", counting)
    return computed


def test_leaf_to_leaf_next_hops_of_a_leaf_spine_come_from_the_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fab = leaf_spine(3, 4)
    links = fabric_links(fab)
    computed = count_tables(monkeypatch)
    state = FabricState.from_view(fab.view())
    leaves = [fab.dpid(n) for n in fab.leaves]
    up = set(links)
    for lid in (fab.link("leaf1", "spine2"), fab.link("spine3", "leaf2")):
        state.link_down(lid)
        up.discard(lid)
        for a in leaves:
            for b in leaves:
                assert state.next_hops(a, b) == reference_next_hops(up, set(fab.names), a, b)
    assert computed == []  # per-flow work in proportion to the fabric's width


def test_a_next_hop_table_is_computed_once_per_destination_and_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fab = leaf_spine(2, 3)
    links = fabric_links(fab)
    computed = count_tables(monkeypatch)
    state = FabricState.from_view(fab.view())
    spine1, spine2 = fab.dpid("spine1"), fab.dpid("spine2")
    leaves = [fab.dpid(n) for n in fab.leaves]
    up, connected = set(links), set(fab.names)
    for _ in range(2):  # leaf -> spine pairs are on two sides: the table answers
        for leaf in leaves:
            assert state.next_hops(leaf, spine1) == reference_next_hops(up, connected, leaf, spine1)
    assert computed == [spine1]
    assert state.next_hops(spine2, spine1) == reference_next_hops(up, connected, spine2, spine1)
    assert computed == [spine1]
    state.link_down(fab.link("leaf1", "spine1"))
    up.discard(fab.link("leaf1", "spine1"))
    for leaf in leaves:
        assert state.next_hops(leaf, spine1) == reference_next_hops(up, connected, leaf, spine1)
    assert computed == [spine1, spine1]
