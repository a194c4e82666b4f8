"""Which routes a change of links moves, for default forwarding's compiler.

The compiler (:mod:`controller.flowprog.forwarding`) keeps every switch's route to
every destination switch with the next hops it came from. When links change it
asks here which destinations must be searched again whole and, for the others,
which switches forward over other next hops at the same distances
(:mod:`controller.routing.hopdelta` says why that is exact). Links that only go
away, however many (a spine lost: 1,024 links at 64 x 512), are taken out of the
routes that used them in one pass; other changes are checked link by link
against each destination while that stays cheaper than searching everything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from controller.fabric.model import Dpid, LinkId, PortNo, link_order
from controller.flowprog.fwdroutes import Route, RouteView
from controller.routing.hopdelta import (
    HopChanges,
    LinkChange,
    lost_next_hops,
    moved_next_hops,
)
from controller.routing.nexthops import DRAIN_COST

__all__ = ["MAX_HOP_CHECKS", "hop_changes"]

# Checks of changed links against destinations above which every destination is
# searched again at once (links only lost never need them).
MAX_HOP_CHECKS = 100_000

Topology = tuple[frozenset[LinkId], frozenset[LinkId]]  # (links up, links drained)


def hop_changes(
    before: Topology,
    after: Topology,
    view: RouteView,
    dsts: list[Dpid],
    routes_of: Callable[[Dpid], Mapping[Dpid, Route]],
    distance: Callable[[Dpid, Dpid], float],
    distinct: Callable[[Dpid], Iterable[Route]] | None = None,
) -> HopChanges | None:
    """The next hops towards ``dsts`` that going from ``before`` to ``after`` moves,
    or None when every destination must be searched again (a link of a switch not
    compiled for, or too many changes to check one by one).

    ``view``: the routes' inputs after the change; ``routes_of(u)``: ``u``'s routes
    before it, by destination; ``distance(u, d)``: the cost of ``u``'s route to
    ``d`` before it (0 for ``d`` itself, infinite without a route); ``distinct(u)``:
    each of ``u``'s route objects once, if known without a pass over its routes."""
    (old_links, old_drained), (links, drained) = before, after
    lost = old_links - links
    if lost and links <= old_links and all(lid not in links for lid in old_drained ^ drained):
        return _lost(lost, view, dsts, routes_of, distinct)
    flipped = {lid for lid in old_drained ^ drained if lid in old_links or lid in links}
    changes = [
        LinkChange(
            lid.src.dpid,
            lid.src.port,
            lid.dst.dpid,
            _link_cost(lid, old_links, old_drained),
            _link_cost(lid, links, drained),
        )
        for lid in sorted((old_links ^ links) | flipped, key=link_order)
    ]
    known = view.edge  # every switch compiled for
    if len(changes) * len(dsts) > MAX_HOP_CHECKS or not all(
        ch.src in known and ch.dst in known for ch in changes
    ):
        return None
    drained_at = view.drained

    def links_of(dpid: Dpid) -> list[tuple[PortNo, Dpid, int]]:
        return [
            (p, n, DRAIN_COST if (dpid, p) in drained_at else 1)
            for p, n in view.peers.get(dpid, {}).items()
        ]

    return moved_next_hops(changes, dsts, distance, links_of)


def _lost(
    lost: frozenset[LinkId],
    view: RouteView,
    dsts: list[Dpid],
    routes_of: Callable[[Dpid], Mapping[Dpid, Route]],
    distinct: Callable[[Dpid], Iterable[Route]] | None,
) -> HopChanges | None:
    """Links only went away: :func:`lost_next_hops` over the switches they left."""
    ports: dict[Dpid, set[PortNo]] = defaultdict(set)
    for lid in lost:
        ports[lid.src.dpid].add(lid.src.port)
    if not ports.keys() <= view.edge.keys():
        return None
    bare = [u for u in ports if not view.peers.get(u)]  # no link out: maybe none in
    into = {n for out in view.peers.values() for n in out.values()} if bare else set()
    isolated = {u for u in bare if u not in into}
    return lost_next_hops(ports, set(dsts), routes_of, isolated, distinct)


def _link_cost(lid: LinkId, links: frozenset[LinkId], drained: frozenset[LinkId]) -> int | None:
    """What ``lid`` costs next hops in a topology (None: not up)."""
    if lid not in links:
        return None
    return DRAIN_COST if lid in drained else 1
