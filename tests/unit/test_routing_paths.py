"""Candidate paths and stable hashing on synthetic fabrics."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys

import networkx as nx
import pytest
from synthetic import asymmetric, leaf_spine, three_tier

from controller.fabric.model import FiveTuple, LinkId, Path, PortRef
from controller.routing.hashing import flow_bucket, flow_hash, rendezvous_unit
from controller.routing.paths import PathCache, candidate_paths


def reference_paths(graph: nx.DiGraph, src: int, dst: int) -> list[Path]:
    """All shortest paths the slow way, sorted by their tuple of LinkIds."""
    if src == dst:
        return [Path(switches=(src,))]
    try:
        found = list(nx.all_shortest_paths(graph, src, dst))
    except nx.NetworkXNoPath:
        return []
    paths = [
        Path.of_links([graph.adj[a][b]["link"] for a, b in itertools.pairwise(p)]) for p in found
    ]
    return sorted(paths, key=lambda p: p.links)


def test_leaf_spine_gives_one_path_per_spine_sorted_by_links() -> None:
    fab = leaf_spine(2, 4)
    paths = candidate_paths(fab.graph, fab.dpid("leaf1"), fab.dpid("leaf2"))
    assert [fab.path_names(p.switches) for p in paths] == [
        ("leaf1", "spine1", "leaf2"),
        ("leaf1", "spine2", "leaf2"),
    ]
    assert paths == sorted(paths, key=lambda p: p.links)
    assert paths[0].links == (fab.link("leaf1", "spine1"), fab.link("spine1", "leaf2"))


def test_three_tier_matches_reference_within_and_across_pods() -> None:
    fab = three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=3)
    g = fab.graph
    across = candidate_paths(g, fab.dpid("leaf1-1"), fab.dpid("leaf2-2"))
    assert len(across) == 2 * 3 * 2  # agg choice x spine choice x agg choice
    assert all(len(p.links) == 4 for p in across)
    assert across == reference_paths(g, fab.dpid("leaf1-1"), fab.dpid("leaf2-2"))
    within = candidate_paths(g, fab.dpid("leaf1-1"), fab.dpid("leaf1-2"))
    assert [fab.path_names(p.switches)[1] for p in within] == ["agg1-1", "agg1-2"]


def test_asymmetric_fabric_has_unequal_path_counts() -> None:
    fab = asymmetric()
    to_leaf2 = candidate_paths(fab.graph, fab.dpid("leaf1"), fab.dpid("leaf2"))
    to_leaf3 = candidate_paths(fab.graph, fab.dpid("leaf1"), fab.dpid("leaf3"))
    assert len(to_leaf2) == 2
    assert [fab.path_names(p.switches) for p in to_leaf3] == [("leaf1", "spine1", "leaf3")]


def test_same_switch_unknown_switch_and_no_route() -> None:
    fab = leaf_spine(2, 2)
    leaf1 = fab.dpid("leaf1")
    assert candidate_paths(fab.graph, leaf1, leaf1) == [Path(switches=(leaf1,))]
    assert candidate_paths(fab.graph, leaf1, 0xDEAD) == []
    lonely = fab.graph.copy()
    lonely.add_node(0xBEEF)
    assert candidate_paths(lonely, leaf1, 0xBEEF) == []


def test_max_paths_keeps_the_first_sorted_paths() -> None:
    fab = leaf_spine(8, 2)
    src, dst = fab.dpid("leaf1"), fab.dpid("leaf2")
    full = candidate_paths(fab.graph, src, dst)
    assert len(full) == 8
    assert candidate_paths(fab.graph, src, dst, max_paths=3) == full[:3]
    with pytest.raises(ValueError, match="max_paths"):
        PathCache(fab.graph, max_paths=0)


def random_graph(rng: random.Random, *, nodes: int, edges: int) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(1, nodes + 1))
    port = dict.fromkeys(range(1, nodes + 1), 0)
    for _ in range(edges):
        a, b = rng.sample(range(1, nodes + 1), 2)
        if g.has_edge(a, b):
            continue
        port[a] += 1
        port[b] += 1
        lid = LinkId(PortRef(a, port[a]), PortRef(b, port[b]))
        g.add_edge(a, b, link=lid, port=port[a])
    return g


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_agree_with_networkx(seed: int) -> None:
    rng = random.Random(seed)
    g = random_graph(rng, nodes=12, edges=(16, 28, 60)[seed % 3])
    cache = PathCache(g)
    for src in g:
        for dst in g:
            assert cache.paths(src, dst) == reference_paths(g, src, dst), (src, dst)


@pytest.mark.parametrize("seed", range(6))
def test_derived_caches_agree_with_networkx_after_random_failures(seed: int) -> None:
    rng = random.Random(100 + seed)
    g = random_graph(rng, nodes=10, edges=40)
    cache = PathCache(g)
    for src in g:
        for dst in g:
            cache.paths(src, dst)  # warm the base so derived answers reuse it
    for _ in range(3):
        smaller = g.copy()
        smaller.remove_edges_from(rng.sample(list(g.edges), 6))
        derived = PathCache.for_graph(smaller, previous=cache)
        for src in smaller:
            for dst in smaller:
                assert derived.paths(src, dst) == reference_paths(smaller, src, dst)
        g, cache = smaller, derived


def test_cache_derived_after_failure_reuses_survivors_and_finds_detours() -> None:
    fab = asymmetric()
    cache = PathCache(fab.graph)
    leaf1, leaf2, leaf3 = (fab.dpid(n) for n in ("leaf1", "leaf2", "leaf3"))
    assert len(cache.paths(leaf1, leaf2)) == 2
    lost = fab.graph_without(links=fab.cable("leaf1", "spine1"))
    derived = PathCache.for_graph(lost, previous=cache)
    assert derived is not cache and derived.graph is lost
    assert [fab.path_names(p.switches) for p in derived.paths(leaf1, leaf2)] == [
        ("leaf1", "spine2", "leaf2")
    ]
    # Every shortest leaf1 -> leaf3 path died: the detour is longer.
    assert [fab.path_names(p.switches) for p in derived.paths(leaf1, leaf3)] == [
        ("leaf1", "spine2", "leaf2", "spine1", "leaf3")
    ]
    for src in lost:
        for dst in lost:
            assert derived.paths(src, dst) == reference_paths(lost, src, dst)


def test_cache_for_a_grown_graph_is_fresh() -> None:
    fab = leaf_spine(2, 2)
    small = fab.graph_without(switches=["spine2"])
    old = PathCache(small)
    assert len(old.paths(fab.dpid("leaf1"), fab.dpid("leaf2"))) == 1
    grown = PathCache.for_graph(fab.graph, previous=old)
    assert len(grown.paths(fab.dpid("leaf1"), fab.dpid("leaf2"))) == 2
    assert PathCache.for_graph(fab.graph, previous=grown) is grown


def test_without_blocks_links_on_the_same_graph() -> None:
    fab = leaf_spine(2, 2)
    cache = PathCache(fab.graph)
    blocked = cache.without(fab.cable("leaf1", "spine1"))
    paths = blocked.paths(fab.dpid("leaf1"), fab.dpid("leaf2"))
    assert [fab.path_names(p.switches) for p in paths] == [("leaf1", "spine2", "leaf2")]
    assert cache.without(fab.cable("leaf1", "spine1")) is blocked  # remembered
    assert len(cache.paths(fab.dpid("leaf1"), fab.dpid("leaf2"))) == 2


def test_pair_cache_is_bounded() -> None:
    fab = leaf_spine(2, 6)
    cache = PathCache(fab.graph, max_pairs=3)
    leaves = [fab.dpid(n) for n in fab.leaves]
    first = cache.paths(leaves[0], leaves[1])
    for dst in leaves[2:]:
        cache.paths(leaves[0], dst)
    again = cache.paths(leaves[0], leaves[1])
    assert again == first and again is not first  # evicted and recomputed


FT = FiveTuple("10.0.0.1", "10.0.0.2", 17, 49152, 4791)


def test_flow_hash_is_stable_across_processes() -> None:
    code = (
        "from controller.fabric.model import FiveTuple\n"
        "from controller.routing.hashing import flow_hash\n"
        "print(flow_hash(FiveTuple('10.0.0.1', '10.0.0.2', 17, 49152, 4791), seed=7))\n"
    )
    values = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": str(salt)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for salt in (1, 2)
    }
    assert values == {str(flow_hash(FT, seed=7))}


def test_seed_changes_the_hash_and_buckets_stay_in_range() -> None:
    assert flow_hash(FT, seed=1) != flow_hash(FT, seed=2)
    assert all(0 <= flow_bucket(FT, 5, seed=s) < 5 for s in range(50))
    with pytest.raises(ValueError, match="buckets"):
        flow_bucket(FT, 0, seed=0)
    units = [rendezvous_unit(str(i).encode(), b"p") for i in range(1000)]
    assert all(0 < u < 1 for u in units)
    assert 0.45 < sum(units) / len(units) < 0.55
