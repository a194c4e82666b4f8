"""A path cache carried over a topology change answers as a fresh one would.

:meth:`PathCache.for_graph` reuses the previous cache when the new graph only
lost links (it blocks them) and starts afresh otherwise. Whatever it reuses,
every pair must get exactly the paths a cache built from scratch on the new
graph gives: never a path over a lost link or a cable whose ports changed,
and the detours once every shortest path is gone.
"""

from __future__ import annotations

import random

import networkx as nx
import pytest
from synthetic import Fabric, leaf_spine, three_tier

from controller.fabric.model import LinkId, PortRef
from controller.routing.paths import PathCache

FABRICS = {
    "leaf-spine": lambda: leaf_spine(4, 5),
    "three-tier": lambda: three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2),
}


def _all_paths(cache: PathCache, switches: list[int]) -> dict[tuple[int, int], list[object]]:
    return {
        (s, d): [p.links for p in cache.paths(s, d)] for s in switches for d in switches if s != d
    }


def _rewired(graph: nx.DiGraph, u: int, v: int) -> nx.DiGraph:
    """``graph`` with the u -> v link moved to another port of ``u``."""
    out = graph.copy()
    old: LinkId = out.edges[u, v]["link"]
    out.edges[u, v]["link"] = LinkId(PortRef(u, old.src.port + 1000), old.dst)
    return out


@pytest.mark.parametrize("name", sorted(FABRICS))
def test_a_carried_cache_equals_a_fresh_one_after_every_change(name: str) -> None:
    fab: Fabric = FABRICS[name]()
    switches = sorted(fab.graph.nodes)
    rng = random.Random(5)
    graph = fab.graph
    cache = PathCache.for_graph(graph)
    _all_paths(cache, switches)  # fill it: the carried cache has something to reuse
    reused = 0
    for step in range(8):
        edges = list(graph.edges)
        new = graph.copy()
        if step % 3 == 2:
            u, v = rng.choice(edges)
            new = _rewired(graph, u, v)
        else:
            for u, v in rng.sample(edges, 3):
                new.remove_edge(u, v)
        carried = PathCache.for_graph(new, previous=cache)
        fresh = PathCache(new)
        assert _all_paths(carried, switches) == _all_paths(fresh, switches), f"step {step}"
        lost = {d["link"] for _, _, d in graph.edges(data=True)} - {
            d["link"] for _, _, d in new.edges(data=True)
        }
        for paths in _all_paths(carried, switches).values():
            assert not any(set(links) & lost for links in paths)
        reused += carried.blocked != frozenset()
        graph, cache = new, carried
    assert reused >= 3  # the reuse was exercised, not only fresh caches


def test_a_graph_that_gained_a_link_gets_a_fresh_cache() -> None:
    fab = leaf_spine(3, 3)
    cache = PathCache.for_graph(fab.graph)
    u, v = fab.dpid("leaf1"), fab.dpid("spine1")
    smaller = fab.graph.copy()
    smaller.remove_edge(u, v)
    carried = PathCache.for_graph(smaller, previous=cache)
    assert fab.link("leaf1", "spine1") in carried.blocked
    again = PathCache.for_graph(fab.graph, previous=carried)
    assert again.blocked == frozenset()
    assert [p.links for p in again.paths(u, fab.dpid("leaf2"))] == [
        p.links for p in PathCache(fab.graph).paths(u, fab.dpid("leaf2"))
    ]
