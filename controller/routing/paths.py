"""Candidate paths: all shortest (by hop count) switch paths between two switches.

A :class:`PathCache` belongs to one version of the fabric graph. For a
(src, dst) pair it runs a bidirectional breadth-first search, which on a
leaf-spine touches only the two leaves' uplinks, then walks the shortest-path
DAG in link order, so the result comes out sorted by the tuple of LinkIds
without sorting whole paths. Pair results sit in a bounded LRU; each switch's
sorted adjacency is built once, on first use.

When a new graph only *lost* links (a failure, a switch leaving), a cache for
it can be derived from the previous one (:meth:`PathCache.for_graph`): old
shortest paths that avoid the lost links are still shortest, so the expensive
searches are only redone for pairs whose every candidate died. The graph given
to a cache must be treated as immutable: a changed topology is a new graph.

This module only computes paths; it never looks at load, drains or policy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import networkx as nx

from controller.fabric.model import Dpid, LinkId, Path

__all__ = ["PathCache", "candidate_paths", "DEFAULT_MAX_PATHS"]

DEFAULT_MAX_PATHS = 64

_Hop = tuple[LinkId, Dpid]  # (link leaving a switch, the switch it enters)


def _link_order(hop: _Hop) -> tuple[int, int, int, int]:
    # Same order as LinkId's own (dataclass) ordering, but on plain ints:
    # comparing dataclasses field by field is ~50x slower in large sorts.
    lid = hop[0]
    return (lid.src.dpid, lid.src.port, lid.dst.dpid, lid.dst.port)


class PathCache:
    """Shortest paths of one graph version, computed lazily and cached.

    >>> g = nx.DiGraph()
    >>> cache = PathCache(g)
    >>> cache.paths(1, 2)
    []
    """

    def __init__(
        self,
        graph: nx.DiGraph,
        *,
        max_paths: int = DEFAULT_MAX_PATHS,
        max_pairs: int = 2048,
        blocked: frozenset[LinkId] = frozenset(),
        base: PathCache | None = None,
    ) -> None:
        """``blocked`` links are never used (they may still be edges of ``graph``).

        ``base`` is a cache of a super-graph whose paths, filtered by
        ``blocked``, are answers for this graph (see :meth:`for_graph`).
        """
        if max_paths < 1:
            raise ValueError(f"max_paths must be at least 1, got {max_paths}")
        if max_pairs < 1:
            raise ValueError(f"max_pairs must be at least 1, got {max_pairs}")
        self._graph = graph
        self._max_paths = max_paths
        self._max_pairs = max_pairs
        self._blocked = blocked
        self._base = base
        self._succ: dict[Dpid, list[_Hop]] = {}
        self._pred: dict[Dpid, list[_Hop]] = {}
        self._pairs: OrderedDict[tuple[Dpid, Dpid], list[Path]] = OrderedDict()
        self._without: dict[frozenset[LinkId], PathCache] = {}

    # ---------------------------------------------------------------- creation
    @classmethod
    def for_graph(
        cls,
        graph: nx.DiGraph,
        *,
        previous: PathCache | None = None,
        max_paths: int = DEFAULT_MAX_PATHS,
        max_pairs: int = 2048,
    ) -> PathCache:
        """A cache for ``graph``, reusing ``previous`` when ``graph`` only lost links.

        Costs one pass over the edges of both graphs when they differ; a graph
        that gained a switch or a link gets a fresh cache (new links may create
        new shortest paths).
        """
        if previous is None or previous._max_paths != max_paths:
            return cls(graph, max_paths=max_paths, max_pairs=max_pairs)
        if previous._graph is graph:
            return previous
        lost = previous._links_lost_in(graph)
        if lost is None:
            return cls(graph, max_paths=max_paths, max_pairs=max_pairs)
        root = previous._base or previous
        return cls(
            graph,
            max_paths=max_paths,
            max_pairs=max_pairs,
            blocked=previous._blocked | lost,
            base=root,
        )

    def without(self, links: Iterable[LinkId]) -> PathCache:
        """A cache of the same graph that never uses ``links`` (e.g. drained ones)."""
        extra = frozenset(links) - self._blocked
        if not extra:
            return self
        derived = self._without.get(extra)
        if derived is None:
            # Drain sets change rarely: remembering a few derived caches keeps
            # detour searches from being redone for every flow.
            if len(self._without) >= 8:
                self._without.clear()
            derived = PathCache(
                self._graph,
                max_paths=self._max_paths,
                max_pairs=self._max_pairs,
                blocked=self._blocked | extra,
                base=self._base or self,
            )
            self._without[extra] = derived
        return derived

    def _links_lost_in(self, new: nx.DiGraph) -> frozenset[LinkId] | None:
        """Links of this graph missing from ``new``, or None if ``new`` has anything new."""
        old = self._graph
        if any(node not in old for node in new):
            return None
        old_adj = old.adj
        for u, v, lid in new.edges(data="link"):
            edge = old_adj[u].get(v)
            if edge is None or edge.get("link") != lid:
                return None
        new_adj = new.adj
        return frozenset(
            lid for u, v, lid in old.edges(data="link") if u not in new_adj or v not in new_adj[u]
        )

    # ----------------------------------------------------------------- queries
    @property
    def graph(self) -> nx.DiGraph:
        return self._graph

    @property
    def blocked(self) -> frozenset[LinkId]:
        return self._blocked

    def paths(self, src: Dpid, dst: Dpid) -> list[Path]:
        """All shortest paths ``src -> dst`` (at most ``max_paths``), sorted by LinkIds.

        ``src == dst`` gives the one-switch path; an unknown switch or no
        route gives ``[]``. The returned list is shared: do not mutate it.
        """
        key = (src, dst)
        hit = self._pairs.get(key)
        if hit is not None:
            self._pairs.move_to_end(key)
            return hit
        found = self._compute(src, dst)
        self._pairs[key] = found
        if len(self._pairs) > self._max_pairs:
            self._pairs.popitem(last=False)
        return found

    def _compute(self, src: Dpid, dst: Dpid) -> list[Path]:
        if src not in self._graph or dst not in self._graph:
            return []
        if src == dst:
            return [Path(switches=(src,))]
        if self._base is not None:
            blocked = self._blocked
            known = self._base.paths(src, dst)
            survivors = [p for p in known if not any(lid in blocked for lid in p.links)]
            # Surviving paths are still shortest and still sorted. If the base
            # list was cut at max_paths, though, paths beyond the cut may now
            # belong in the first max_paths: then only a new search is exact.
            if survivors and (len(known) < self._max_paths or len(survivors) == len(known)):
                return survivors
        return self._enumerate(src, dst)

    # -------------------------------------------------------------- internals
    def _out(self, u: Dpid) -> list[_Hop]:
        """Usable links leaving ``u`` as (link, next switch), in LinkId order."""
        hops = self._succ.get(u)
        if hops is None:
            blocked = self._blocked
            hops = sorted(
                (
                    (lid, v)
                    for v, attrs in self._graph.succ[u].items()
                    if (lid := attrs["link"]) not in blocked
                ),
                key=_link_order,
            )
            self._succ[u] = hops
        return hops

    def _in(self, v: Dpid) -> list[_Hop]:
        """Usable links entering ``v`` as (link, previous switch)."""
        hops = self._pred.get(v)
        if hops is None:
            blocked = self._blocked
            hops = [
                (lid, u)
                for u, attrs in self._graph.pred[v].items()
                if (lid := attrs["link"]) not in blocked
            ]
            self._pred[v] = hops
        return hops

    def _enumerate(self, src: Dpid, dst: Dpid) -> list[Path]:
        """Bidirectional breadth-first search, then a depth-first walk in link order.

        Both sides grow one whole level at a time, the smaller frontier first,
        recording the links that go one level further. When a new level meets
        the other side at depths (a, b), every shortest path has a + b hops and
        crosses the meeting switches at depth a. On a leaf-spine this touches
        the two leaves' uplinks only, instead of the whole fabric.
        """
        ahead: dict[Dpid, int] = {src: 0}  # hops from src
        behind: dict[Dpid, int] = {dst: 0}  # hops to dst
        up: dict[Dpid, list[_Hop]] = {}  # x -> links to the next forward level
        down: dict[Dpid, list[_Hop]] = {}  # w -> links one hop closer to dst
        forward, backward = [src], [dst]
        levels = [forward]
        meet: set[Dpid] = set()
        while forward and backward and not meet:
            nxt: list[Dpid] = []
            if len(forward) <= len(backward):
                depth = len(levels)
                for x in forward:
                    for lid, y in self._out(x):
                        seen = ahead.get(y)
                        if seen is None:
                            ahead[y] = depth
                            nxt.append(y)
                        elif seen != depth:
                            continue
                        up.setdefault(x, []).append((lid, y))
                forward = nxt
                levels.append(nxt)
                meet = {y for y in nxt if y in behind}
            else:
                depth = behind[backward[0]] + 1
                for z in backward:
                    for lid, w in self._in(z):
                        seen = behind.get(w)
                        if seen is None:
                            behind[w] = depth
                            nxt.append(w)
                        elif seen != depth:
                            continue
                        down.setdefault(w, []).append((lid, z))
                backward = nxt
                meet = {w for w in nxt if w in ahead}
        if not meet:
            return []
        for hops in down.values():
            if len(hops) > 1:
                hops.sort(key=_link_order)
        split = ahead[next(iter(meet))]  # the meeting depth from src
        # Keep only forward links that lead to a meeting switch (deepest level first).
        useful = set(meet)
        for level in reversed(levels[:split]):
            useful.update(x for x in level if any(y in useful for _, y in up.get(x, ())))
        return self._walk(
            src, up=up, down=down, useful=useful, split=split, remaining=behind[next(iter(meet))]
        )

    def _walk(
        self,
        src: Dpid,
        *,
        up: dict[Dpid, list[_Hop]],
        down: dict[Dpid, list[_Hop]],
        useful: set[Dpid],
        split: int,
        remaining: int,
    ) -> list[Path]:
        """All src -> dst paths of the DAG in link order, at most ``max_paths``.

        Prefixes grow one hop at a time, each extended in link order and kept
        in order, which is a depth-first walk's order without the recursion.
        Every prefix completes to at least one path, so keeping the first
        ``max_paths`` prefixes at each step loses none of the first paths.
        """
        limit = self._max_paths
        prefixes: list[tuple[tuple[Dpid, ...], tuple[LinkId, ...]]] = [((src,), ())]
        for step in range(split + remaining):
            grown: list[tuple[tuple[Dpid, ...], tuple[LinkId, ...]]] = []
            # Towards the meeting switches first, then from them down to dst.
            forward = step < split
            for switches, links in prefixes:
                hops = up[switches[-1]] if forward else down[switches[-1]]
                grown.extend(
                    [
                        ((*switches, v), (*links, lid))
                        for lid, v in hops
                        if not forward or v in useful
                    ]
                )
                if len(grown) >= limit:
                    break
            prefixes = grown[:limit]
        return [Path(switches=sw, links=ln) for sw, ln in prefixes]


def candidate_paths(
    graph: nx.DiGraph, src: Dpid, dst: Dpid, *, max_paths: int = DEFAULT_MAX_PATHS
) -> list[Path]:
    """All shortest paths ``src -> dst`` of ``graph``, sorted by their tuple of LinkIds.

    One-shot convenience over :class:`PathCache`; callers placing many flows
    should keep a cache per graph version instead.
    """
    return PathCache(graph, max_paths=max_paths).paths(src, dst)
