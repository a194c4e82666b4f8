"""Path caches that avoid some links (drains): exact answers, searches reused, memory bounded.

Guards :meth:`PathCache.without`: a derived cache answers exactly the shortest
paths of the graph minus the blocked links (checked against networkx), takes
the answers of its parent's searches wherever a candidate survives instead of
searching again (drain sets change rarely, flows arrive often), and keeps the
parent's bound on remembered pairs.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import pytest
from synthetic import leaf_spine, three_tier

from controller.fabric.model import Dpid, LinkId, Path
from controller.routing.paths import PathCache


def count_searches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Dpid, Dpid]]:
    """Pairs a cache runs a breadth-first search for, in order."""
    searched: list[tuple[Dpid, Dpid]] = []
    real = PathCache._enumerate

    def counting(self: PathCache, src: Dpid, dst: Dpid) -> list[Path]:
        searched.append((src, dst))
        return real(self, src, dst)

    monkeypatch.setattr(PathCache, "_enumerate", counting)
    return searched


def reference_paths(
    graph: nx.DiGraph, blocked: Iterable[LinkId], src: Dpid, dst: Dpid
) -> set[tuple[Dpid, ...]]:
    """All shortest switch sequences ``src -> dst`` of ``graph`` without ``blocked``."""
    g = graph.copy()
    for lid in blocked:
        g.remove_edge(lid.src.dpid, lid.dst.dpid)
    if not nx.has_path(g, src, dst):
        return set()
    return {tuple(p) for p in nx.all_shortest_paths(g, src, dst)}


def test_a_derived_cache_reuses_its_parents_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    fab = three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2)
    searched = count_searches(monkeypatch)
    cache = PathCache(fab.graph)
    leaves = [fab.dpid(n) for n in fab.leaves]
    pairs = [(a, b) for a in leaves for b in leaves if a != b]
    for a, b in pairs:
        cache.paths(a, b)
    assert len(searched) == len(pairs)
    searched.clear()
    blocked = [*fab.cable("leaf1-1", "agg1-1")]
    for derived in (cache.without(blocked), cache.without(blocked[:1]).without(blocked[1:])):
        for a, b in pairs:
            got = {p.switches for p in derived.paths(a, b)}
            assert got == reference_paths(fab.graph, blocked, a, b), (a, b)
            assert not any(lid in p.links for p in derived.paths(a, b) for lid in blocked)
        assert searched == []  # every pair kept a candidate: no new search


def test_a_derived_cache_searches_again_only_where_every_candidate_died(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fab = leaf_spine(2, 3)
    searched = count_searches(monkeypatch)
    cache = PathCache(fab.graph)
    leaf1, leaf2, leaf3 = (fab.dpid(n) for n in ("leaf1", "leaf2", "leaf3"))
    spine1, spine2 = fab.dpid("spine1"), fab.dpid("spine2")
    cache.paths(leaf1, leaf2)
    cache.paths(leaf1, leaf3)
    searched.clear()
    blocked = [fab.link("leaf1", "spine1"), fab.link("leaf1", "spine2")]
    derived = cache.without(blocked)
    assert derived.paths(leaf1, leaf2) == []  # every candidate died: searched, none left
    assert searched == [(leaf1, leaf2)]
    one = cache.without(blocked[:1])
    assert [p.switches for p in one.paths(leaf1, leaf3)] == [(leaf1, spine2, leaf3)]
    assert searched == [(leaf1, leaf2)]
    assert spine1 not in {s for p in one.paths(leaf1, leaf2) for s in p.switches}


def test_a_derived_cache_keeps_its_parents_bound_on_remembered_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fab = leaf_spine(2, 3)
    searched = count_searches(monkeypatch)
    cache = PathCache(fab.graph, max_pairs=1)
    derived = cache.without([fab.link("leaf3", "spine1")])
    leaf1, leaf2, leaf3 = (fab.dpid(n) for n in ("leaf1", "leaf2", "leaf3"))
    first = derived.paths(leaf1, leaf2)
    derived.paths(leaf1, leaf3)  # pushes the first pair out of both caches
    searched.clear()
    assert derived.paths(leaf1, leaf2) == first
    assert searched == [(leaf1, leaf2)]  # forgotten, so found again
