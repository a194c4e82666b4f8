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
from collections.abc import Iterable

from controller.fabric.model import Dpid, LinkId, PortNo

__all__ = ["DRAIN_COST", "distances_to", "next_hops_to", "next_hops_and_distances"]

# A drained link costs this many hops: traffic avoids it whenever any other
# path exists, yet a switch whose only way out is drained keeps forwarding.
DRAIN_COST = 1024


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
