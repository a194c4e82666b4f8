"""Compile the default forwarding state of every switch.

Per switch: the fixed entries (LLDP and ARP to the controller, multicast
dropped, table-miss to the controller), one entry per learned host (out of
its port on its own switch; elsewhere over every next hop towards it), and
the class traps that send the first packet of a policy-governed flow to the
controller from edge ports only. Several next hops are used by source-port
bits in the spread table (:mod:`controller.flowprog.spread`, option
``spread_l4``) or by a SELECT group; a spine's single direct hop bounces
packets back for another spine when its link fails
(:mod:`controller.flowprog.repair`, option ``local_repair``). With both
options off, the tables are exactly those of plain SELECT-group ECMP.

Nothing is ever flooded: broadcast ARP is answered or relayed to edge ports by
the controller, so the loops of a leaf-spine cannot carry a storm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import replace
from itertools import chain, repeat
from operator import is_not

from controller.fabric.model import Dpid, LinkId, PortNo
from controller.flowprog.entries import (
    Action,
    FlowEntry,
    MeterEntry,
)
from controller.flowprog.fwdassembly import Assembly, Claims, Run, replay
from controller.flowprog.fwdfixed import (
    PACKET_IN_METER,
    PRIO_ARP,
    PRIO_LLDP,
    PRIO_MCAST_DROP,
    PRIO_MISS,
    TAGGED_DROP,
    base_entries,
    compile_traps,
)
from controller.flowprog.fwdhops import hop_changes
from controller.flowprog.fwdhosts import (
    PRIO_HOST,
    host_route_key,
    own_entries,
    returns,
    route_entries,
)
from controller.flowprog.fwdroutes import (
    ClassTrap,
    ForwardingInputs,
    Route,
    RouteView,
    SwitchForwarding,
)
from controller.flowprog.tables import OwnerNeeds
from controller.routing.hopdelta import INF, HopChanges
from controller.routing.nexthops import next_hops_many

__all__ = [
    "PRIO_LLDP",
    "PRIO_ARP",
    "PRIO_FLOW",
    "PRIO_JOB",
    "PRIO_TRAP_BASE",
    "PRIO_HOST",
    "PRIO_MCAST_DROP",
    "PRIO_MISS",
    "PACKET_IN_METER",
    "ClassTrap",
    "ForwardingInputs",
    "ForwardingCompiler",
    "SwitchForwarding",
    "compile_forwarding",
    "compile_traps",
    "host_route_key",
]

PRIO_FLOW = 40000  # exact per-flow rules of placed flows
PRIO_JOB = 35000  # pair rules of declared jobs: above every class trap, so no packet-in
PRIO_TRAP_BASE = 30000  # + rank of the policy (higher policy priority, higher rank)


def compile_forwarding(inp: ForwardingInputs) -> dict[Dpid, OwnerNeeds]:
    """Per-switch needs of the default forwarding state (every switch), both parts."""
    return {dpid: fwd.combined() for dpid, fwd in ForwardingCompiler().compile(inp).items()}


_GONE = SwitchForwarding(OwnerNeeds(), OwnerNeeds())


class ForwardingCompiler:
    """Default forwarding, compiled again only where its inputs changed.

    It keeps every switch's route towards every destination switch with the next
    hops it came from. A compilation finds each destination's next hops (all of
    them when links or drains changed, else only new destinations'), redoes the
    routes whose next hops or switch changed, and reassembles only the switches
    that have a changed route, host or fixed entry. Results are the same as a
    fresh compiler's (property-tested); a catch-all with weights recompiles all.
    """

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, context: Hashable) -> None:
        self._context = context
        self._topology: tuple[frozenset[LinkId], frozenset[LinkId]] | None = None
        self._keys: dict[Dpid, Hashable] = {}
        self._routes: dict[Dpid, dict[Dpid, Route]] = {}  # switch -> destination -> route
        self._hosts: dict[Dpid, tuple[tuple[str, PortNo], ...]] = {}  # destination -> hosts
        self._macs: dict[Dpid, tuple[str, ...]] = {}  # destination -> its hosts' MACs
        self._built: dict[Dpid, Assembly] = {}  # switch -> how its needs were assembled
        self._view: RouteView | None = None  # the last compilation's

    def compile(self, inp: ForwardingInputs) -> dict[Dpid, SwitchForwarding]:
        """Needs of every switch whose default forwarding changed since the last call
        (all on the first; empty needs for a switch no longer given)."""
        context = (inp.single_path, inp.spread_l4, inp.local_repair, inp.packet_in_pps, inp.traps)
        if context != self._context or inp.neighbour_weight is not None:
            self._reset(context)
        topology = (frozenset(inp.links), frozenset(inp.drained))
        view = self._view_of(inp, topology)
        out: dict[Dpid, SwitchForwarding] = {d: _GONE for d in self._keys if d not in view.edge}
        for gone in out:
            del self._keys[gone], self._routes[gone], self._built[gone]
        dirty = set()
        rekeyed: dict[Dpid, dict[Dpid, Route] | None] = {}  # switch -> its routes before
        for dpid in inp.switches:
            key = view.switch_key(dpid)
            if self._keys.get(dpid) != key:
                rekeyed[dpid] = self._routes.get(dpid)
                self._keys[dpid], self._routes[dpid] = key, {}
                dirty.add(dpid)
        hosts: dict[Dpid, list[tuple[str, PortNo]]] = defaultdict(list)
        for host in inp.hosts:
            hosts[host.attach.dpid].append((host.mac, host.attach.port))
        dsts = sorted(hosts)
        fresh = [d for d in dsts if d not in self._hosts]
        changes = HopChanges([], {})
        if topology != self._topology or dirty:
            found = self._hop_changes(view, topology, rekeyed, dsts, gone=bool(out))
            if found is None:  # next hops may have moved anywhere
                fresh = dsts
            else:
                fresh, changes = sorted({*fresh, *found.search}), found
            self._topology = topology
        moved_hops = changes.moved
        hosts_gone = False
        for dst in [d for d in self._hosts if d not in hosts]:
            hosts_gone = True
            del self._hosts[dst], self._macs[dst]
            for routes in self._routes.values():
                routes.pop(dst, None)
            dirty.update(inp.switches)
        moved: set[Dpid] = set()  # known destinations whose hosts changed
        for dst in dsts:
            if (before := self._hosts.get(dst)) != (now := tuple(hosts[dst])):
                self._hosts[dst], self._macs[dst] = now, tuple(mac for mac, _ in now)
                if before is None:
                    dirty.update(inp.switches)  # a new destination: routes everywhere
                else:
                    moved.add(dst)  # the same routes: only its hosts' entries change
        for dst, hops, dist in next_hops_many(fresh, inp.links, drained=inp.drained):
            for dpid in inp.switches:
                self._put(dpid, dst, hops.get(dpid), dist.get(dpid, 0), view, dirty)
        # Switches whose routes only a cut replaced, each route by one alike (by id).
        remaps: dict[Dpid, dict[int, Route]] = {}
        for dpid, cut in changes.cuts.items():
            if (remap := self._cut(dpid, cut, changes.targets, view, rekeyed, dirty)) is not None:
                remaps[dpid] = remap
        self._move(moved_hops, view, rekeyed, dirty)
        searched = set(fresh)
        for dpid, had in rekeyed.items():  # its other routes: same hops, new switch key
            if had is None or dpid in remaps:
                continue  # (a lost spine: every route cut already)
            routes = self._routes[dpid]
            for dst, route in had.items():
                if (
                    dst not in routes
                    and dst in hosts
                    and dst not in searched
                    and dst not in moved_hops.get(dpid, ())  # moved to no route
                ):
                    routes[dst] = view.route(dpid, dst, route.ports, route.distance)
        if fresh or moved or hosts_gone:
            remaps.clear()  # destinations' hosts or routes changed besides the cuts
        for dpid in moved_hops:
            remaps.pop(dpid, None)
        for dpid in sorted(dirty):
            out[dpid] = self._assemble(dpid, dsts, view, moved, remaps.get(dpid))
        if moved:
            for dpid in inp.switches:
                if dpid not in dirty and not moved.isdisjoint(self._built[dpid].segments):
                    out[dpid] = self._patch(dpid, moved)
        return out

    def _view_of(
        self, inp: ForwardingInputs, topology: tuple[frozenset[LinkId], frozenset[LinkId]]
    ) -> RouteView:
        """The routes' inputs, built on the last compilation's when links only went
        away (or none changed): its switches' peers are kept but where links left."""
        last, before = self._view, self._topology
        if last is not None and before is not None and topology[0] <= before[0]:
            view = RouteView(inp, last, before[0] - topology[0])
        else:
            view = RouteView(inp)
        self._view = view
        return view

    def _put(
        self,
        dpid: Dpid,
        dst: Dpid,
        ports: tuple[PortNo, ...] | None,
        distance: int,
        view: RouteView,
        dirty: set[Dpid],
    ) -> None:
        """``dpid``'s route to ``dst`` by ``ports`` (none: no route); a switch whose
        route changes is dirty."""
        routes = self._routes[dpid]
        had = routes.get(dst)
        if had is not None and had.ports == ports and had.distance == distance:
            return
        if ports and dpid != dst:
            routes[dst] = view.route(dpid, dst, ports, distance)
        elif had is None:
            return
        else:
            del routes[dst]
        dirty.add(dpid)

    def _move(
        self,
        moved: Mapping[Dpid, Mapping[Dpid, tuple[PortNo, ...]]],
        view: RouteView,
        rekeyed: Mapping[Dpid, dict[Dpid, Route] | None],
        dirty: set[Dpid],
    ) -> None:
        """Each switch's routes to the destinations of ``moved`` over other next hops
        at the same distances (links changed otherwise than only lost; an isolated
        switch's routes going). The view keeps routes alike per next hops and
        distance, so destinations still share them."""
        for dpid, changed in moved.items():
            routes = self._routes[dpid]
            before = self._before(dpid, rekeyed)
            for dst, ports in changed.items():
                last = before.get(dst)
                if last is None or not ports or dpid == dst:
                    distance = int(self._distance(dpid, dst, rekeyed)) if ports else 0
                    self._put(dpid, dst, ports, distance, view, dirty)
                    continue
                # The common case inline: a route moved to other ports at its distance.
                had = routes.get(dst)
                if had is not None and had.ports == ports and had.distance == last.distance:
                    continue
                routes[dst] = view.route(dpid, dst, ports, last.distance)
                dirty.add(dpid)

    def _cut(
        self,
        dpid: Dpid,
        cut: Mapping[int, tuple[PortNo, ...]],
        targets: frozenset[Dpid],
        view: RouteView,
        rekeyed: Mapping[Dpid, dict[Dpid, Route] | None],
        dirty: set[Dpid],
    ) -> dict[int, Route] | None:
        """Move ``dpid``'s routes over the ports tuples ``cut`` (by id) to what is left
        of them, towards ``targets`` (:attr:`HopChanges.cuts`). A lost spine cuts every
        leaf's route to every other leaf (262,144 at 64 x 512), but a leaf's routes
        share a handful of route objects: each is redone once, and the destinations
        follow it in one pass (a route whose new one depends on its destination, a
        bounce or a detour, is redone per destination).

        Returns each route redone by the id of the one it replaced when that is the
        whole change of the switch's routes (every destination of a redone route
        followed it; a rekeyed switch had all its routes redone), else None."""
        routes = self._routes[dpid]
        before = self._before(dpid, rekeyed)
        if not before:
            return None
        any_dst = next(iter(before))  # a route alike is the same towards every one
        redone: dict[int, Route | None] = {}  # by id of the route before; None: one by one
        for last in {id(r): r for r in self._distinct(dpid)}.values():
            left = cut.get(id(last.ports))
            if left is not None:
                alike = view.alike(dpid, left)
                redone[id(last)] = view.route(dpid, any_dst, left, last.distance) if alike else None
        if not redone:
            return None
        get = redone.get
        whole = before.keys() <= targets
        moved: dict[Dpid, Route] = {}
        if whole:  # (the common case) by the last runs, which hold every destination
            for run in self._built[dpid].runs:  # of ``before``: 511 a leaf, filled in C
                if (new := get(id(run.route))) is not None:
                    moved.update(zip(run.dsts, repeat(new)))
        else:
            moved = {d: new for d, r in before.items() if (new := get(id(r))) and d in targets}
        slow = {key for key, new in redone.items() if new is None}
        one_by_one = (
            [(d, r) for d, r in before.items() if id(r) in slow and d in targets] if slow else []
        )
        if moved:
            dirty.add(dpid)
            if routes:
                routes.update(moved)
            else:  # rekeyed: its routes are made anew
                self._routes[dpid] = moved
        for dst, last in one_by_one:
            self._put(dpid, dst, cut[id(last.ports)], last.distance, view, dirty)
        if slow or not whole or (dpid in rekeyed and len(moved) != len(before)):
            return None
        return {key: new for key, new in redone.items() if new is not None}

    def _distinct(self, dpid: Dpid) -> Iterable[Route]:
        """``dpid``'s routes as last compiled, each object once or more: those of its
        last assembly's runs (every route it had then; routes change only with an
        assembly), a handful on a leaf instead of one per destination."""
        built = self._built.get(dpid)
        return [run.route for run in built.runs] if built is not None else ()

    def _distance(
        self, dpid: Dpid, dst: Dpid, rekeyed: Mapping[Dpid, dict[Dpid, Route] | None]
    ) -> float:
        """The cost from ``dpid`` to ``dst`` as last compiled (infinite: no route)."""
        if dpid == dst:
            return 0.0
        route = self._before(dpid, rekeyed).get(dst)
        return INF if route is None else route.distance

    def _before(
        self, dpid: Dpid, rekeyed: Mapping[Dpid, dict[Dpid, Route] | None]
    ) -> Mapping[Dpid, Route]:
        """``dpid``'s routes as last compiled, by destination (none: empty)."""
        return (rekeyed[dpid] if dpid in rekeyed else self._routes.get(dpid)) or {}

    def _hop_changes(
        self,
        view: RouteView,
        topology: tuple[frozenset[LinkId], frozenset[LinkId]],
        rekeyed: Mapping[Dpid, dict[Dpid, Route] | None],
        dsts: list[Dpid],
        *,
        gone: bool,
    ) -> HopChanges | None:
        """The next hops a change of links moved (:func:`hop_changes`), or None when
        everything must be searched again: also the first compilation, a switch new
        or gone."""
        if self._topology is None or gone or any(r is None for r in rekeyed.values()):
            return None
        return hop_changes(
            self._topology,
            topology,
            view,
            [d for d in dsts if d in self._hosts],
            lambda u: self._before(u, rekeyed),
            lambda u, d: self._distance(u, d, rekeyed),
            self._distinct,
        )

    def _patch(self, dpid: Dpid, moved: set[Dpid]) -> SwitchForwarding:
        """``dpid``'s needs, its entries to the hosts of ``moved`` redone (all else kept)."""
        built = self._built[dpid]
        routes = self._routes[dpid]
        fell = {d for run in built.runs if run.fell for d in run.dsts}  # on their group
        for dst in moved & built.segments.keys():
            route = routes.get(dst)
            if route is None:  # the switch itself: its own hosts
                built.segments[dst] = self._entries(dpid, dst, (), None)
                continue
            actions = route.fallback if dst in fell else route.actions
            built.segments[dst] = self._entries(dpid, dst, actions, route.bounce_port)
        part = OwnerNeeds(flows={dpid: tuple(chain(built.head, *built.segments.values()))})
        built.needs = replace(built.needs, routes=part)
        return built.needs

    def _entries(
        self, dpid: Dpid, dst: Dpid, actions: tuple[Action, ...], bounce: PortNo | None
    ) -> tuple[FlowEntry, ...]:
        """``dpid``'s entries towards the hosts of ``dst`` by ``actions``."""
        if dst == dpid:
            return own_entries(self._hosts[dst])
        return route_entries(self._macs[dst], actions, bounce)

    def _assemble(
        self,
        dpid: Dpid,
        dsts: list[Dpid],
        view: RouteView,
        moved: set[Dpid],
        remap: Mapping[int, Route] | None = None,
    ) -> SwitchForwarding:
        """``dpid``'s needs from its routes. A destination's entries are those of the
        last assembly when its hosts did not move and its route acts by the very
        same actions (a set degraded in place names its parent's: a lost spine
        rewrites no route), else made again. ``remap``: the switch's routes were only
        replaced (:meth:`_cut`), so its runs are replayed without visiting each
        destination when their actions stay (:func:`replay`)."""
        before = self._built.get(dpid)
        if before is not None and remap is not None:
            return self._replayed(dpid, view, before, remap)
        kept = before.segments if before is not None else {}
        segments: dict[Dpid, tuple[FlowEntry, ...]] = {}  # kept tuples only: no new objects
        claims = Claims(dpid)
        runs: list[Run] = []
        routes = self._routes[dpid]
        run: Run | None = None  # destinations share route objects: decided once each
        for dst in dsts:
            if dst == dpid:
                segments[dst] = self._entries(dpid, dst, (), None)
                continue
            route = routes.get(dst)
            if route is None:
                continue
            if run is None or route is not run.route:
                run = Run(route, *claims.choose(route), [])
                runs.append(run)
            run.dsts.append(dst)
            had = kept.get(dst)
            if had is not None and had[0].actions is run.actions and dst not in moved:
                segments[dst] = had  # (a bounce's actions are new with its route)
            else:
                segments[dst] = self._entries(dpid, dst, run.actions, route.bounce_port)
        return self._finish(dpid, view, before, segments, claims, runs)

    def _replayed(
        self, dpid: Dpid, view: RouteView, before: Assembly, remap: Mapping[int, Route]
    ) -> SwitchForwarding:
        """``dpid``'s needs when its routes were only replaced: its runs replayed,
        entries made again only for the destinations of runs whose actions changed."""
        claims, runs, changed = replay(dpid, before, remap)
        segments = before.segments
        if changed:
            segments = dict(segments)
            for run in changed:
                bounce = run.route.bounce_port
                for dst in run.dsts:
                    segments[dst] = self._entries(dpid, dst, run.actions, bounce)
        return self._finish(dpid, view, before, segments, claims, runs)

    def _finish(
        self,
        dpid: Dpid,
        view: RouteView,
        before: Assembly | None,
        segments: dict[Dpid, tuple[FlowEntry, ...]],
        claims: Claims,
        runs: list[Run],
    ) -> SwitchForwarding:
        """``dpid``'s needs: its routes' entries and its tail, each the very object of
        the last assembly when unchanged (then the programmer compares nothing), and
        its claimed sets."""
        inp = view.inp
        metered = inp.packet_in_pps > 0
        tail: list[FlowEntry] = []
        groups = claims.groups
        if inp.local_repair:
            tail.append(TAGGED_DROP)
            if view.edge[dpid]:
                entries, back = returns(*view.return_key(dpid))
                tail += entries
                groups.update((g.group_id, g) for g in back)
        tail += compile_traps(inp.edge_ports(dpid), inp.traps, metered=metered)
        head = base_entries(metered)
        meter = MeterEntry(PACKET_IN_METER, inp.packet_in_pps, inp.packet_in_pps // 2)
        kept = before.segments if before is not None else {}
        if (
            before is None
            or before.head is not head
            or len(segments) != len(kept)
            or (segments is not kept and any(map(is_not, segments.values(), kept.values())))
        ):
            routes_part = OwnerNeeds(flows={dpid: tuple(chain(head, *segments.values()))})
        else:
            routes_part = before.needs.routes  # the very entries: nothing to compare
        tail_part = OwnerNeeds(
            flows={dpid: tuple(tail)},
            groups={dpid: tuple(groups.values())} if groups else {},
            meters={dpid: (meter,)} if metered else {},
        )
        if before is not None and before.needs.tail == tail_part:
            tail_part = before.needs.tail  # (mostly the very entries: compared in C)
        needs = SwitchForwarding(routes_part, tail_part, claims.needs)
        self._built[dpid] = Assembly(head, segments, needs, runs)
        return needs
