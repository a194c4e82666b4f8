"""How one switch's default forwarding is put together from its routes, and kept.

:class:`~controller.flowprog.forwarding.ForwardingCompiler` walks a switch's
destinations in order; each *run* of destinations sharing a route object
decides once which actions they take: the route's spread set, claimed on the
switch (:class:`Claims`), or the set's SELECT group when its id is taken
there. What it built is kept as an :class:`Assembly`, so that the next
compilation redoes only what changed.

A lost spine replaces each leaf's few route objects by others (one ports tuple
fewer) whose sets are degraded in place, so their actions are the very tuples
they were: :func:`replay` then claims the new routes run by run and keeps every
destination's entries without visiting them (262,144 at 64 x 512).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from controller.fabric.model import Dpid
from controller.flowprog.entries import Action, FlowEntry, GroupEntry
from controller.flowprog.fwdhosts import HOST_COOKIE
from controller.flowprog.fwdroutes import Route, SetKey, SwitchForwarding
from controller.flowprog.spread import NextHopSet, compile_set
from controller.flowprog.tables import OwnerNeeds

__all__ = ["Assembly", "Claims", "Run", "replay", "set_needs"]


@dataclass(slots=True)
class Run:
    """Consecutive destinations (in the switch's order) over one route object, the
    actions they take and whether those are its fallback (its set's id taken)."""

    route: Route
    actions: tuple[Action, ...]
    fell: bool
    dsts: list[Dpid]


@dataclass
class Assembly:
    """How a switch's needs were put together, so that a change of some
    destinations' hosts redoes only their entries, a change of none keeps its
    routes' needs as they were, and routes only replaced by alike ones keep
    every destination's entries (:func:`replay`)."""

    head: tuple[FlowEntry, ...]  # fixed entries
    segments: dict[Dpid, tuple[FlowEntry, ...]]  # per destination, in their order
    needs: SwitchForwarding
    runs: list[Run]  # every destination with a route, in order (on a fallback: run.fell)


class Claims:
    """The spread sets one switch's routes claim, in the order claimed, each with its
    needs (spread-table entries and groups, the very object every time the set is
    claimed on the switch), and the groups the routes use themselves."""

    def __init__(self, dpid: Dpid) -> None:
        self.dpid = dpid
        self.sets: dict[SetKey, NextHopSet] = {}
        self.needs: dict[SetKey, OwnerNeeds] = {}
        self.groups: dict[int, GroupEntry] = {}

    def choose(self, route: Route) -> tuple[tuple[Action, ...], bool]:
        """The actions ``route``'s destinations take here, and whether they are its
        fallback (its set's id is another set's on this switch)."""
        actions, used, fell = route.actions, route.groups, False
        hs = route.spread
        if (
            hs is not None
            and self.sets.get((hs.set_id, hs.in_place)) is not hs
            and not self._claim(hs)
        ):
            actions, used, fell = route.fallback, route.fallback_groups, True
        for group in used:
            self.groups[group.group_id] = group
        return actions, fell

    def _claim(self, hs: NextHopSet) -> bool:
        """Give ``hs`` its spread-table entries (once per set). False if its metadata
        id is taken by another set here: that route keeps its group. A set degraded
        in place (named as its parent) is claimed beside its parent."""
        if hs.parent is not None and not self._claim(hs.parent):
            return False  # the parent's entries serve most of a derived set's buckets
        key = (hs.set_id, hs.in_place)
        have = self.sets.get(key)
        if have is not None:
            return have == hs
        self.sets[key] = hs
        self.needs[key] = set_needs(self.dpid, hs)
        return True


@lru_cache(maxsize=1 << 13)
def set_needs(dpid: Dpid, hs: NextHopSet) -> OwnerNeeds:
    """``hs``'s entries and groups on ``dpid`` (one object per switch and set)."""
    entries, groups = compile_set(hs, cookie=HOST_COOKIE)
    return OwnerNeeds(flows={dpid: entries}, groups={dpid: groups})


def replay(
    dpid: Dpid, before: Assembly, remap: Mapping[int, Route]
) -> tuple[Claims, list[Run], list[Run]]:
    """``before``'s runs with each route replaced by ``remap`` (by the ``id`` of the
    route replaced; others kept), claimed in their order: what assembling every
    destination again would claim. Also the runs whose destinations' entries must
    be made again (their actions are not the very ones they had: a set renamed, a
    bounce moved); every other destination keeps its entries."""
    claims = Claims(dpid)
    runs: list[Run] = []
    changed: list[Run] = []
    for run in before.runs:
        route = remap.get(id(run.route), run.route)
        last = runs[-1] if runs else None
        if last is not None and route is last.route:  # two runs became one
            actions, fell = last.actions, last.fell
            runs[-1] = Run(route, actions, fell, last.dsts + run.dsts)
        else:
            actions, fell = claims.choose(route)
            runs.append(Run(route, actions, fell, run.dsts))
        if (
            actions is not run.actions
            or fell != run.fell
            or route.bounce_port != run.route.bounce_port
        ):
            changed.append(Run(route, actions, fell, run.dsts))
    return claims, runs, changed
