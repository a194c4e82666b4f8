"""Per-destination next hops for default (non per-flow) forwarding.

For a destination switch D, every switch S forwards on all links that bring it
closer to D (the cheapest-path DAG towards D). Because cost
strictly decreases along every hop, the result is loop-free on any topology,
leaf-spine or not, and it spreads over every equal-cost uplink. Parallel
cables count as separate next hops. Drained links are avoided unless that
would leave a switch with no way to D.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from controller.fabric.model import Dpid, LinkId, PortNo

__all__ = [
    "DRAIN_COST",
    "distances_to",
    "next_hops_to",
    "next_hops_and_distances",
    "next_hops_many",
]

# A drained link costs this many hops: traffic avoids it whenever any other
# path exists, yet a switch whose only way out is drained keeps forwarding.
DRAIN_COST = 1024


_SRC_DPID = attrgetter("src.dpid")
_DST_DPID = attrgetter("dst.dpid")
_SRC_PORT = attrgetter("src.port")


def _cost(lid: LinkId, drained: frozenset[LinkId]) -> int:
    return DRAIN_COST if drained and lid in drained else 1  # no hashing when none is drained


def distances_to(
    dst: Dpid, links: Iterable[LinkId], *, drained: frozenset[LinkId] = frozenset()
) -> dict[Dpid, int]:
    """Cost to ``dst`` from every switch that can reach it (``dst`` itself is 0)."""
    incoming: dict[Dpid, list[LinkId]] = defaultdict(list)
    for lid in links:
        incoming[lid.dst.dpid].append(lid)
    dist = {dst: 0}
    heap = [(0, dst)]
    while heap:
        d, node = heapq.heappop(heap)
        if d > dist[node]:
            continue
        for lid in incoming.get(node, ()):
            prev, nd = lid.src.dpid, d + _cost(lid, drained)
            if nd < dist.get(prev, nd + 1):
                dist[prev] = nd
                heapq.heappush(heap, (nd, prev))
    return dist


def next_hops_to(
    dst: Dpid, links: Iterable[LinkId], *, drained: frozenset[LinkId] = frozenset()
) -> dict[Dpid, tuple[PortNo, ...]]:
    """Egress ports on each switch (other than ``dst``) towards ``dst``, sorted.

    A port is a next hop when its link lies on a cheapest path to ``dst``;
    cost strictly falls along every hop, so forwarding cannot loop.

    >>> from controller.fabric.model import PortRef
    >>> up = [LinkId(PortRef(1, 1), PortRef(3, 1)), LinkId(PortRef(2, 1), PortRef(3, 2))]
    >>> next_hops_to(3, up)
    {1: (1,), 2: (1,)}
    """
    return next_hops_and_distances(dst, links, drained=drained)[0]


def next_hops_and_distances(
    dst: Dpid, links: Iterable[LinkId], *, drained: frozenset[LinkId] = frozenset()
) -> tuple[dict[Dpid, tuple[PortNo, ...]], dict[Dpid, int]]:
    """:func:`next_hops_to` and :func:`distances_to` of one computation."""
    links = list(links)
    dist = distances_to(dst, links, drained=drained)
    hops: dict[Dpid, set[PortNo]] = defaultdict(set)
    for lid in links:
        u, v = lid.src.dpid, lid.dst.dpid
        if u in dist and v in dist and dist[v] + _cost(lid, drained) == dist[u]:
            hops[u].add(lid.src.port)
    return {node: tuple(sorted(ports)) for node, ports in sorted(hops.items())}, dist


Hops = dict[Dpid, tuple[PortNo, ...]]


def next_hops_many(
    dsts: Sequence[Dpid], links: Iterable[LinkId], *, drained: frozenset[LinkId] = frozenset()
) -> Iterator[tuple[Dpid, Hops, dict[Dpid, int]]]:
    """``(dst, next hops, distances)`` for every switch of ``dsts``, in their order: what
    :func:`next_hops_and_distances` gives for each, from one shortest-path run over
    all of them in compiled code (default forwarding needs every destination, and
    a search per destination in Python takes ~0.1 s each at 64 x 512)."""
    if not dsts:
        return  # no graph to build (a host learned on a known switch asks for none)
    links = list(links)
    n_links = len(links)
    src_id = np.fromiter(map(_SRC_DPID, links), dtype=np.int64, count=n_links)
    dst_id = np.fromiter(map(_DST_DPID, links), dtype=np.int64, count=n_links)
    # Switches by dpid, each link's ends as indexes among them (C loops only: this
    # runs for every change of links, ~65,000 of them at 64 x 512).
    ids = np.concatenate([src_id, dst_id, np.fromiter(dsts, dtype=np.int64, count=len(dsts))])
    uniq, where = np.unique(ids, return_inverse=True)
    nodes: list[Dpid] = uniq.tolist()
    src, dst = where[:n_links], where[n_links : 2 * n_links]
    cost = np.ones(n_links)
    if drained:
        cost[np.fromiter(map(drained.__contains__, links), dtype=bool, count=n_links)] = DRAIN_COST
    port = np.fromiter(map(_SRC_PORT, links), dtype=np.int64, count=n_links)
    # One matrix entry per switch pair, the cheapest of parallel cables (the sparse
    # constructor would add duplicates up). Distances *to* a switch: search the
    # reversed graph from it.
    n = len(nodes)
    pair = dst * n + src
    by_pair = np.lexsort((cost, pair))
    first = np.r_[True, pair[by_pair][1:] != pair[by_pair][:-1]] if n_links else np.zeros(0, bool)
    kept = by_pair[first]
    graph = csr_matrix((cost[kept], (dst[kept], src[kept])), shape=(n, n))
    targets = where[2 * n_links :]  # each destination's index among the switches
    dist_all = dijkstra(graph, directed=True, indices=targets) if links else None
    order = np.lexsort((port, src))  # links by source switch, then port
    src, dst, cost, port = src[order], dst[order], cost[order], port[order]
    for row, d in enumerate(dsts):
        if dist_all is None:
            yield d, {}, {d: 0}
            continue
        dist = dist_all[row]
        reach = np.isfinite(dist)
        # Integer costs: sums are exact in float64, so "==" is the cheapest-path test
        # (an unreachable link end is infinite: never equal to a reachable source's).
        on = reach[src] & (dist[dst] + cost == dist[src])
        yield d, _grouped(nodes, src[on], port[on]), _reached(nodes, dist, reach)


def _grouped(nodes: list[Dpid], src: np.ndarray, port: np.ndarray) -> Hops:
    """Ports by source switch (``src`` sorted), each switch's sorted and distinct."""
    if not len(src):
        return {}
    fresh = np.r_[True, (src[1:] != src[:-1]) | (port[1:] != port[:-1])]
    src, port = src[fresh], port[fresh]  # a link listed twice is one next hop
    cuts = (np.flatnonzero(np.diff(src)) + 1).tolist()
    starts = [0, *cuts]
    firsts = src[starts].tolist()
    ports = port.tolist()
    return {
        nodes[node]: tuple(ports[a:b])
        for node, a, b in zip(firsts, starts, [*cuts, len(ports)], strict=True)
    }


def _reached(nodes: list[Dpid], dist: np.ndarray, reach: np.ndarray) -> dict[Dpid, int]:
    at = np.flatnonzero(reach)
    return dict(
        zip([nodes[i] for i in at.tolist()], dist[at].astype(np.int64).tolist(), strict=True)
    )
