"""Which next hops a change of links moves, from the distances known before it.

Next hops towards a destination D are the links on cheapest paths to D
(:mod:`controller.routing.nexthops`). When a few links go down, come up or
change cost (drained, undrained), most destinations keep every distance: a
leaf losing one of 64 uplinks still reaches every other leaf in two hops, it
only forwards over one spine fewer. Then only the switches at the changed
links can forward differently, and their new next hops follow from the
distances already known. A destination whose distances may change (a switch
loses its last cheapest link, or a new link is cheaper than what it had) is
searched again whole.

Why that is exact: distances are the one solution of ``d(D) = 0``,
``d(u) = min(d(v) + cost(u -> v))`` over ``u``'s links (costs are positive).
A removed link that was not among ``u``'s cheapest, or was but leaves another,
and an added link no cheaper than ``d(u)``, keep every equation true with the
old distances: so they are still the distances.

When links only go away (a spine lost: its 512 cables at 64 x 512), the
switches at the removed links are known and their old next hops are at hand:
:func:`lost_next_hops` takes the lost ports out of each route, one pass over
those switches' routes, instead of checking each link against each
destination.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from controller.fabric.model import Dpid, PortNo

__all__ = ["LinkChange", "HopChanges", "moved_next_hops", "lost_next_hops"]

INF = float("inf")


class _Hops(Protocol):
    @property
    def ports(self) -> tuple[PortNo, ...]: ...


@dataclass(frozen=True)
class LinkChange:
    """One directed link whose cost changed; None: absent on that side."""

    src: Dpid
    port: PortNo
    dst: Dpid
    old_cost: int | None
    new_cost: int | None


@dataclass
class HopChanges:
    """``search``: destinations to search again whole (their distances may change);
    ``moved``: for the others, by switch, each destination it forwards to over other
    next hops now and those (sorted ports), distances unchanged.

    ``cuts`` (links only lost, :func:`lost_next_hops`): by switch, what is left of
    each ports tuple its routes had, keyed by the tuple's ``id``: every route of
    that switch over it towards one of ``targets`` moves to what is left, at its
    distance. Routes share their tuples, so a lost spine is a handful of cuts per
    leaf instead of one move per destination (:meth:`moves_of` spells them out);
    the keys are valid while the routes they were taken from are alive."""

    search: list[Dpid]
    moved: dict[Dpid, dict[Dpid, tuple[PortNo, ...]]]  # switch -> destination -> ports
    cuts: dict[Dpid, dict[int, tuple[PortNo, ...]]] = field(default_factory=dict)
    targets: frozenset[Dpid] = frozenset()  # the destinations cuts apply to

    def moves_of(self, u: Dpid, routes: Mapping[Dpid, _Hops]) -> dict[Dpid, tuple[PortNo, ...]]:
        """``u``'s moves by destination, its cuts applied to ``routes`` (its routes
        before the change, those the cuts were taken from)."""
        out = dict(self.moved.get(u, {}))
        cut = self.cuts.get(u, {})
        out.update(
            {
                d: left
                for d, r in routes.items()
                if (left := cut.get(id(r.ports))) is not None and d in self.targets
            }
        )
        return out


def moved_next_hops(
    changes: Sequence[LinkChange],
    dsts: Iterable[Dpid],
    distance: Callable[[Dpid, Dpid], float],
    links_of: Callable[[Dpid], Iterable[tuple[PortNo, Dpid, int]]],
) -> HopChanges:
    """The next hops ``changes`` move towards each of ``dsts``.

    ``distance(u, d)``: the cost from ``u`` to ``d`` before the change (0 for
    ``d`` itself, infinite when unreachable); ``links_of(u)``: ``u``'s links
    after it as (port, neighbour, cost)."""
    out = HopChanges([], {})
    for d in dsts:
        touched: set[Dpid] = set()
        search = False
        for ch in changes:
            du, dv = distance(ch.src, d), distance(ch.dst, d)
            if dv == INF:
                continue  # a link into nowhere reachable is on no path to d
            if ch.old_cost is not None and dv + ch.old_cost == du:
                touched.add(ch.src)  # was one of its cheapest: it may be left without
            if ch.new_cost is not None:
                if dv + ch.new_cost < du:
                    search = True  # cheaper than before: distances fall
                    break
                if dv + ch.new_cost == du:
                    touched.add(ch.src)  # one more cheapest link
        moved = None if search else _recomputed(d, touched, distance, links_of)
        if moved is None:
            out.search.append(d)
        for u, ports in (moved or {}).items():
            out.moved.setdefault(u, {})[d] = ports
    return out


def _recomputed(
    d: Dpid,
    touched: set[Dpid],
    distance: Callable[[Dpid, Dpid], float],
    links_of: Callable[[Dpid], Iterable[tuple[PortNo, Dpid, int]]],
) -> dict[Dpid, tuple[PortNo, ...]] | None:
    """New next hops of ``touched`` towards ``d`` at the old distances, or None when
    one of them has none left (its distance grows: ``d`` must be searched)."""
    moved: dict[Dpid, tuple[PortNo, ...]] = {}
    for u in sorted(touched):
        du = distance(u, d)
        ports = sorted({p for p, v, cost in links_of(u) if distance(v, d) + cost == du})
        if not ports:
            return None
        moved[u] = tuple(ports)
    return moved


def lost_next_hops(
    lost: Mapping[Dpid, Collection[PortNo]],
    dsts: Collection[Dpid],
    routes_of: Callable[[Dpid], Mapping[Dpid, _Hops]],
    isolated: Collection[Dpid],
    distinct: Callable[[Dpid], Iterable[_Hops]] | None = None,
) -> HopChanges:
    """The next hops that links going away (and none coming or changing cost) move.

    ``lost[u]``: ``u``'s ports whose links are gone; ``routes_of(u)``: its routes
    before, by destination (``ports``: every cheapest next hop); ``isolated``:
    switches with no link left in either direction; ``distinct(u)``: each of ``u``'s
    route objects once (a leaf's 511 routes share a few), if known without a pass
    over its routes. A route keeping some of its
    ports keeps its distance (see the module's note): its switch's ports tuple is
    cut (:attr:`HopChanges.cuts`, once per distinct tuple). One left with none
    needs its destination searched, unless its switch is isolated: no switch
    forwards through it any more, so only its own routes go (moved to no ports)."""
    out = HopChanges([], {})
    search: set[Dpid] = set()
    for u, gone in lost.items():
        routes = routes_of(u)
        if u in isolated:
            changed: dict[Dpid, tuple[PortNo, ...]] = {d: () for d in routes if d in dsts}
            if changed:
                out.moved[u] = changed
            continue
        cut: dict[int, tuple[PortNo, ...]] = {}
        each = routes.values() if distinct is None else distinct(u)
        for ports in {id(r.ports): r.ports for r in each}.values():
            left = tuple(p for p in ports if p not in gone)
            if len(left) != len(ports):
                cut[id(ports)] = left
        emptied = {key for key, left in cut.items() if not left}
        if emptied:
            search.update(d for d, r in routes.items() if id(r.ports) in emptied and d in dsts)
            cut = {key: kept for key, kept in cut.items() if key not in emptied}
        if cut:
            out.cuts[u] = cut
    if search:  # searched whole: no moves kept towards them
        kept = {u: {d: p for d, p in ch.items() if d not in search} for u, ch in out.moved.items()}
        out.moved = {u: changed for u, changed in kept.items() if changed}
    out.search = sorted(search)
    out.targets = frozenset(d for d in dsts if d not in search)
    return out
