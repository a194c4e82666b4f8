"""Routing building blocks against independent references.

- Hashes: a flow must map to the same path in every process, after a restart
  and across controller versions, so the hash is pinned to its documented
  encoding (BLAKE2b-64 over ``seed|src|dst|proto|sport|dport``), recomputed
  here with hashlib.
- Next hops: costs agree with networkx's Dijkstra on random graphs with
  drained links.
- Path caches: a cache derived after a failure or asked for fewer paths gives
  exactly what a fresh computation gives.
"""

from __future__ import annotations

import hashlib
import random

import networkx as nx
import pytest
from synthetic import leaf_spine

from controller.fabric.model import FiveTuple, LinkId, PortRef
from controller.routing.hashing import (
    flow_bucket,
    flow_hash,
    flow_key,
    path_key,
    rendezvous_unit,
)
from controller.routing.nexthops import DRAIN_COST, distances_to, next_hops_to
from controller.routing.paths import PathCache

FT = FiveTuple("10.0.0.1", "10.0.0.2", 17, 49152, 4791)


def blake64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


# ----------------------------------------------------------------------- hashes
def test_flow_hash_is_blake2b_of_the_documented_encoding() -> None:
    encoded = b"7|10.0.0.1|10.0.0.2|17|49152|4791"
    assert flow_key(FT, seed=7) == encoded
    assert flow_hash(FT, seed=7) == blake64(encoded)
    assert flow_bucket(FT, 5, seed=7) == blake64(encoded) % 5


def test_path_key_lists_dpids_in_lowercase_hex() -> None:
    assert path_key([0x1001, 0x10000A, 0x1002]) == b"1001,10000a,1002"


def test_rendezvous_unit_is_the_midpoint_of_the_hash_bucket() -> None:
    key, item = flow_key(FT, seed=1), path_key([0x1001, 0x100001, 0x1002])
    h = blake64(key + b"#" + item)
    assert rendezvous_unit(key, item) == (h + 0.5) / 2.0**64
    for n in range(200):
        u = rendezvous_unit(key, str(n).encode())
        assert 0.0 < u < 1.0


def test_flow_bucket_rejects_zero_buckets() -> None:
    with pytest.raises(ValueError, match="buckets must be positive, got 0"):
        flow_bucket(FT, 0, seed=0)


# -------------------------------------------------------------------- next hops
def random_links(rng: random.Random, nodes: int, cables: int) -> list[LinkId]:
    links: list[LinkId] = []
    port = dict.fromkeys(range(1, nodes + 1), 0)
    for _ in range(cables):
        a, b = rng.sample(range(1, nodes + 1), 2)
        port[a] += 1
        port[b] += 1
        links.append(LinkId(PortRef(a, port[a]), PortRef(b, port[b])))
        if rng.random() < 0.8:  # most cables work both ways
            links.append(LinkId(PortRef(b, port[b]), PortRef(a, port[a])))
    return links


@pytest.mark.parametrize("seed", range(10))
def test_distances_and_next_hops_agree_with_dijkstra(seed: int) -> None:
    rng = random.Random(seed)
    links = random_links(rng, nodes=9, cables=14)
    drained = frozenset(rng.sample(links, 4))
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(1, 10))
    for lid in links:
        g.add_edge(lid.src.dpid, lid.dst.dpid, weight=DRAIN_COST if lid in drained else 1)
    for dst in range(1, 10):
        expected = nx.single_source_dijkstra_path_length(g.reverse(copy=True), dst)
        assert distances_to(dst, links, drained=drained) == expected
        hops = next_hops_to(dst, links, drained=drained)
        for node, ports in hops.items():
            for port in ports:
                lid = next(x for x in links if x.src == PortRef(node, port))
                cost = DRAIN_COST if lid in drained else 1
                assert expected[lid.dst.dpid] + cost == expected[node]
        assert set(hops) == set(expected) - {dst}


def test_a_cheaper_way_found_later_replaces_a_drained_one() -> None:
    # 1 reaches 9 directly over a drained link (cost 1024) or in 3 hops; the
    # direct link is found first, and the switches behind 1 must see the cheap cost.
    def cable(a: int, pa: int, b: int, pb: int) -> list[LinkId]:
        return [LinkId(PortRef(a, pa), PortRef(b, pb)), LinkId(PortRef(b, pb), PortRef(a, pa))]

    links = cable(1, 1, 9, 1) + cable(1, 2, 2, 1) + cable(2, 2, 3, 1) + cable(3, 2, 9, 2)
    links += cable(4, 1, 1, 3)
    drained = frozenset([LinkId(PortRef(1, 1), PortRef(9, 1))])
    dist = distances_to(9, links, drained=drained)
    assert dist == {9: 0, 3: 1, 2: 2, 1: 3, 4: 4}
    assert next_hops_to(9, links, drained=drained)[1] == (2,)


# ------------------------------------------------------------------ path caches
def test_a_cache_derived_after_a_failure_keeps_its_path_limit() -> None:
    fab = leaf_spine(4, 2)
    src, dst = fab.dpid("leaf1"), fab.dpid("leaf2")
    cache = PathCache.for_graph(fab.graph, max_paths=2)
    assert len(cache.paths(src, dst)) == 2
    lost = fab.graph_without(links=fab.cable("leaf1", "spine1"))
    derived = PathCache.for_graph(lost, previous=cache, max_paths=2)
    assert [fab.path_names(p.switches)[1] for p in derived.paths(src, dst)] == [
        "spine2",
        "spine3",
    ]
    # A graph that grew gets a fresh cache, with the same limit.
    grown = PathCache.for_graph(fab.graph, previous=derived, max_paths=2)
    assert len(grown.paths(src, dst)) == 2
    # A different limit is a different cache.
    assert len(PathCache.for_graph(lost, previous=cache, max_paths=8).paths(src, dst)) == 3


def test_a_cache_derived_twice_reuses_the_original_answers() -> None:
    fab = leaf_spine(4, 2)
    src, dst = fab.dpid("leaf1"), fab.dpid("leaf2")
    cache = PathCache(fab.graph, max_paths=3)
    cache.paths(src, dst)
    once = PathCache.for_graph(
        fab.graph_without(links=fab.cable("leaf1", "spine1")), previous=cache, max_paths=3
    )
    twice = PathCache.for_graph(
        fab.graph_without(links=fab.cable("leaf1", "spine1") + fab.cable("leaf1", "spine2")),
        previous=once,
        max_paths=3,
    )
    assert [fab.path_names(p.switches)[1] for p in twice.paths(src, dst)] == ["spine3", "spine4"]
    blocked = once.without(fab.cable("leaf1", "spine3"))
    assert [fab.path_names(p.switches)[1] for p in blocked.paths(src, dst)] == [
        "spine2",
        "spine4",
    ]


def test_a_recabled_link_is_not_served_from_the_old_cache() -> None:
    fab = leaf_spine(2, 2)
    src, dst = fab.dpid("leaf1"), fab.dpid("leaf2")
    cache = PathCache(fab.graph)
    cache.paths(src, dst)
    old = fab.link("leaf1", "spine1")
    moved = LinkId(PortRef(old.src.dpid, 40), old.dst)
    recabled = fab.graph.copy()
    recabled.remove_edge(old.src.dpid, old.dst.dpid)
    recabled.add_edge(old.src.dpid, old.dst.dpid, link=moved, port=40)
    fresh = PathCache.for_graph(recabled, previous=cache)
    used = {lid for p in fresh.paths(src, dst) for lid in p.links}
    assert moved in used and old not in used


def test_cache_limits_are_validated_and_one_is_allowed() -> None:
    fab = leaf_spine(3, 3)
    src = fab.dpid("leaf1")
    one = PathCache(fab.graph, max_paths=1, max_pairs=1)
    assert [fab.path_names(p.switches)[1] for p in one.paths(src, fab.dpid("leaf2"))] == ["spine1"]
    assert len(one.paths(src, fab.dpid("leaf3"))) == 1
    with pytest.raises(ValueError, match="max_paths must be at least 1, got 0"):
        PathCache(fab.graph, max_paths=0)
    with pytest.raises(ValueError, match="max_pairs must be at least 1, got 0"):
        PathCache(fab.graph, max_pairs=0)


@pytest.mark.parametrize("seed", range(6))
def test_caches_cut_at_max_paths_agree_with_fresh_ones_after_failures(seed: int) -> None:
    """A derived cache must give the first ``max_paths`` paths of the new graph,
    not what is left of the old first ``max_paths``."""
    rng = random.Random(200 + seed)
    fab = leaf_spine(6, 4)
    cache = PathCache(fab.graph, max_paths=3)
    for a in fab.leaves:
        for b in fab.leaves:
            cache.paths(fab.dpid(a), fab.dpid(b))
    graph = fab.graph
    for _ in range(3):
        cables = [(leaf, sp) for leaf in fab.leaves for sp in fab.spines]
        leaf, sp = rng.choice(cables)
        if not graph.has_edge(fab.dpid(leaf), fab.dpid(sp)):
            continue
        graph = graph.copy()
        graph.remove_edges_from([(fab.dpid(leaf), fab.dpid(sp)), (fab.dpid(sp), fab.dpid(leaf))])
        cache = PathCache.for_graph(graph, previous=cache, max_paths=3)
        fresh = PathCache(graph, max_paths=3)
        for a in fab.leaves:
            for b in fab.leaves:
                src, dst = fab.dpid(a), fab.dpid(b)
                assert cache.paths(src, dst) == fresh.paths(src, dst), (a, b)
