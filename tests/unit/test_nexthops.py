"""Per-destination next hops: loop-free, equal-cost, parallel cables, drains, unreachable."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import leaf_spine, three_tier

from controller.fabric.model import Dpid, LinkId, PortRef
from controller.routing.nexthops import (
    DRAIN_COST,
    distances_to,
    next_hops_and_distances,
    next_hops_many,
    next_hops_to,
)


def cable(a: Dpid, pa: int, b: Dpid, pb: int) -> list[LinkId]:
    return [LinkId(PortRef(a, pa), PortRef(b, pb)), LinkId(PortRef(b, pb), PortRef(a, pa))]


def fabric_links(fabric: object) -> list[LinkId]:
    return sorted(attrs["link"] for _, _, attrs in fabric.graph.edges(data=True))  # type: ignore[attr-defined]


def follow(
    hops: dict[Dpid, tuple[int, ...]], links: list[LinkId], src: Dpid, dst: Dpid
) -> set[tuple[Dpid, ...]]:
    """Every switch sequence a packet can take from src to dst; fails on a loop or dead end."""
    peer = {(lid.src.dpid, lid.src.port): lid.dst.dpid for lid in links}
    done: set[tuple[Dpid, ...]] = set()
    todo = [(src,)]
    while todo:
        path = todo.pop()
        here = path[-1]
        if here == dst:
            done.add(path)
            continue
        assert hops.get(here), f"dead end at {here} on the way to {dst}"
        for port in hops[here]:
            nxt = peer[(here, port)]
            assert nxt not in path, f"loop {(*path, nxt)}"
            todo.append((*path, nxt))
    return done


def test_leaf_spine_spreads_over_every_spine_without_loops() -> None:
    fab = leaf_spine(3, 5)
    links = fabric_links(fab)
    leaves = [fab.dpid(n) for n in fab.leaves]
    for dst in leaves:
        hops = next_hops_to(dst, links)
        assert dst not in hops
        for src in leaves:
            if src != dst:
                assert len(hops[src]) == 3
                paths = follow(hops, links, src, dst)
                assert {p[1] for p in paths} == {fab.dpid(s) for s in fab.spines}
        for spine in fab.spines:  # one way down from a spine
            assert hops[fab.dpid(spine)] == (fab.link(spine, fab.names[dst]).src.port,)


def test_three_tier_paths_are_loop_free_and_equally_short() -> None:
    fab = three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2)
    links = fabric_links(fab)
    switches = list(fab.names)
    for src, dst in itertools.permutations(switches, 2):
        hops = next_hops_to(dst, links)
        paths = follow(hops, links, src, dst)
        dist = distances_to(dst, links)
        assert {len(p) - 1 for p in paths} == {dist[src]}


def test_parallel_cables_are_separate_next_hops() -> None:
    links = cable(1, 1, 2, 1) + cable(1, 2, 2, 2) + cable(2, 3, 3, 1)
    assert next_hops_to(3, links) == {1: (1, 2), 2: (3,)}
    assert next_hops_to(1, links) == {2: (1, 2), 3: (1,)}


def test_drained_links_are_avoided_while_another_way_exists() -> None:
    # Switch 1 reaches 4 through 2 or 3.
    links = cable(1, 1, 2, 1) + cable(1, 2, 3, 1) + cable(2, 2, 4, 1) + cable(3, 2, 4, 2)
    drained = frozenset({LinkId(PortRef(1, 1), PortRef(2, 1))})
    assert next_hops_to(4, links)[1] == (1, 2)
    hops = next_hops_to(4, links, drained=drained)
    assert hops[1] == (2,)
    assert hops[2] == (2,)  # the drain is per direction: 2 still forwards normally
    assert distances_to(4, links, drained=drained)[1] == 2


def test_a_drained_only_way_is_still_used_at_its_cost() -> None:
    links = cable(1, 1, 2, 1) + cable(2, 2, 3, 1)
    drained = frozenset({LinkId(PortRef(1, 1), PortRef(2, 1))})
    assert next_hops_to(3, links, drained=drained) == {1: (1,), 2: (2,)}
    assert distances_to(3, links, drained=drained)[1] == DRAIN_COST + 1


def test_unreachable_switches_get_no_next_hops() -> None:
    links = cable(1, 1, 2, 1) + cable(3, 1, 4, 1)
    links.append(LinkId(PortRef(5, 1), PortRef(1, 9)))  # 5 can send to 1, not receive
    hops = next_hops_to(2, links)
    assert hops == {1: (1,), 5: (1,)}
    assert 3 not in distances_to(2, links) and 4 not in hops
    assert next_hops_to(5, links) == {}
    assert next_hops_to(42, []) == {}
    assert distances_to(42, []) == {42: 0}


def test_results_do_not_depend_on_link_order() -> None:
    fab = leaf_spine(2, 3)
    links = fabric_links(fab)
    dst = fab.dpid("leaf2")
    assert next_hops_to(dst, links) == next_hops_to(dst, list(reversed(links)))


# ------------------------------------------------- every destination in one run
@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[LinkId], frozenset[LinkId], list[Dpid]]:
    """Random directed cabling: parallel cables, one-way links, islands, drains."""
    n = draw(st.integers(1, 9))
    pairs = draw(
        st.lists(st.tuples(st.integers(1, n), st.integers(1, n)), max_size=30).map(
            lambda ps: [(a, b) for a, b in ps if a != b]
        )
    )
    links: list[LinkId] = []
    used: set[tuple[Dpid, int]] = set()
    for a, b in pairs:
        pa = 1 + sum(1 for d, _ in used if d == a)
        pb = 1 + sum(1 for d, _ in used if d == b)
        used |= {(a, pa), (b, pb)}
        links += cable(a, pa, b, pb)[: 1 if draw(st.booleans()) and len(links) % 3 else 2]
    drained = frozenset(lid for lid in links if draw(st.integers(0, 4)) == 0)
    dsts = draw(st.lists(st.integers(1, n + 1), min_size=1, max_size=n + 1, unique=True))
    return links, drained, dsts


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_every_destination_at_once_equals_one_search_per_destination(
    graph: tuple[list[LinkId], frozenset[LinkId], list[Dpid]],
) -> None:
    links, drained, dsts = graph
    got = list(next_hops_many(dsts, links, drained=drained))
    assert [d for d, _, _ in got] == dsts
    for dst, hops, dist in got:
        want_hops, want_dist = next_hops_and_distances(dst, links, drained=drained)
        assert hops == want_hops and list(hops) == list(want_hops)
        assert dist == want_dist


def test_every_destination_at_once_on_fabrics_with_a_drain() -> None:
    for fabric in (
        leaf_spine(4, 6),
        three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2),
    ):
        links = fabric_links(fabric)
        drained = frozenset(links[::7])
        dsts = sorted({lid.dst.dpid for lid in links})
        for dst, hops, dist in next_hops_many(dsts, links, drained=drained):
            assert (hops, dist) == next_hops_and_distances(dst, links, drained=drained)
    assert list(next_hops_many([5], [])) == [(5, {}, {5: 0})]
