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

import functools
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from controller.fabric.model import Dpid, Host, LinkId, PortNo
from controller.flowprog.entries import (
    Action,
    Cookie,
    CookieKind,
    EntryKey,
    FlowEntry,
    GroupEntry,
    Match,
    MeterEntry,
    ToController,
    group_action,
    output,
)
from controller.flowprog.groups import select_group
from controller.flowprog.repair import (
    ALWAYS_LIVE,
    bounce_group,
    bounces,
    delivery_entry,
    return_entries,
    tagged_drop,
)
from controller.flowprog.spread import NextHopSet, compile_set, derived_set, next_hop_set
from controller.flowprog.tables import OwnerNeeds
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
    "compile_forwarding",
    "base_entries",
    "compile_traps",
    "host_route_key",
]

PRIO_LLDP = 60000
PRIO_ARP = 59000
PRIO_FLOW = 40000  # exact per-flow rules of placed flows
PRIO_JOB = 35000  # pair rules of declared jobs: above every class trap, so no packet-in
PRIO_TRAP_BASE = 30000  # + rank of the policy (higher policy priority, higher rank)
PRIO_HOST = 20000
PRIO_MCAST_DROP = 100
PRIO_MISS = 0

PACKET_IN_METER = 1
ETH_LLDP = 0x88CC
ETH_ARP = 0x0806
MCAST_BIT = ("01:00:00:00:00:00", "01:00:00:00:00:00")

_BASE = Cookie(CookieKind.BASE).encode()
_HOST = Cookie(CookieKind.HOST_ROUTE).encode()
_TRAP = Cookie(CookieKind.CLASS_TRAP).encode()


@dataclass(frozen=True)
class ClassTrap:
    """Send matching packets from edge ports to the controller at ``priority``."""

    priority: int
    match: Match


@dataclass(frozen=True)
class ForwardingInputs:
    switches: Sequence[Dpid]  # every switch to compile for
    links: Sequence[LinkId]  # up links
    hosts: Sequence[Host]
    edge_ports: Callable[[Dpid], Sequence[PortNo]]
    drained: frozenset[LinkId] = frozenset()
    traps: Sequence[ClassTrap] = ()
    single_path: bool = False  # catch-all strategy "shortest": one next hop, no group
    # catch-all strategy "weighted": weight of the bucket towards a neighbour switch
    neighbour_weight: Callable[[Dpid], float] | None = None
    packet_in_pps: int = 0  # 0 = no meter on packet-ins
    spread_l4: bool = True  # TCP/UDP over several next hops by source-port bits
    local_repair: bool = True  # a spine's failed last hop bounces packets to another spine
    # whether a switch is a leaf (may face hosts); by default: it has edge ports
    host_facing: Callable[[Dpid], bool] | None = None


def base_entries(*, metered: bool) -> list[FlowEntry]:
    return list(_base_entries(metered))


@functools.lru_cache(maxsize=2)
def _base_entries(metered: bool) -> tuple[FlowEntry, ...]:
    meter = PACKET_IN_METER if metered else None
    return (
        FlowEntry(PRIO_LLDP, Match.of(eth_type=ETH_LLDP), (ToController(),), _BASE),
        FlowEntry(PRIO_ARP, Match.of(eth_type=ETH_ARP), (ToController(),), _BASE, meter_id=meter),
        FlowEntry(PRIO_MCAST_DROP, Match.of(eth_dst=MCAST_BIT), (), _BASE),
        FlowEntry(PRIO_MISS, Match(), (ToController(),), _BASE, meter_id=meter),
    )


def compile_forwarding(inp: ForwardingInputs) -> dict[Dpid, OwnerNeeds]:
    """Per-switch needs of the default forwarding state (every switch)."""
    return ForwardingCompiler().compile(inp)


def compile_traps(
    edge_ports: Sequence[PortNo], traps: Sequence[ClassTrap], *, metered: bool
) -> list[FlowEntry]:
    """One switch's class traps: each trap on each of its edge ports (never fabric ports)."""
    meter = PACKET_IN_METER if metered else None
    entries = []
    for port in edge_ports:
        for trap in traps:
            match = Match.of(in_port=port, **trap.match.as_dict())
            entries.append(
                FlowEntry(trap.priority, match, (ToController(),), _TRAP, meter_id=meter)
            )
    return entries


@functools.lru_cache(maxsize=1 << 16)
def host_route_key(mac: str) -> EntryKey:
    """Where a switch's default route to the host with ``mac`` sits in its table.

    Kept per MAC: tables store the very key object that lookups bring, so a hit is
    an identity check instead of comparing matches field by field (this runs on
    every switch of every new flow's path).
    """
    return (0, PRIO_HOST, Match.of(eth_dst=mac))


@functools.lru_cache(maxsize=1 << 16)
def _host_entries(macs: tuple[str, ...], actions: tuple[Action, ...]) -> tuple[FlowEntry, ...]:
    """The routes to the hosts ``macs`` of one switch by ``actions``.

    Kept per (hosts, actions): the switches that reach a destination alike share
    the entries, and a recomputation of default forwarding gets back the very
    entries it made before wherever nothing changed, which the desired tables
    recognise by identity (a lost link then costs work where routes changed).
    """
    return tuple(FlowEntry(PRIO_HOST, host_route_key(mac)[2], actions, _HOST) for mac in macs)


@functools.lru_cache(maxsize=1 << 14)
def _deliveries(macs: tuple[str, ...], port: PortNo) -> tuple[FlowEntry, ...]:
    """A spine's repair entries delivering tagged packets to ``macs`` (kept as routes are)."""
    return tuple(delivery_entry(mac, port, cookie=_HOST) for mac in macs)


_TAGGED_DROP = tagged_drop(cookie=_BASE)


@functools.lru_cache(maxsize=4096)
def _returns(
    uplinks: tuple[tuple[PortNo, Dpid], ...], drained: frozenset[PortNo]
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    """A leaf's tagged-return entries, kept per uplinks (leaves wired alike share
    them, and a recomputation gets the same objects back)."""
    entries, groups = return_entries(dict(uplinks), drained=drained, cookie=_HOST)
    return tuple(entries), tuple(groups)


@dataclass(frozen=True)
class _Route:
    """How one switch forwards towards the hosts of one destination switch, and
    the next hops it was derived from (a route is redone when they change)."""

    ports: tuple[PortNo, ...]
    distance: int
    actions: tuple[Action, ...]
    groups: tuple[GroupEntry, ...] = ()  # what the actions use, in installation order
    spread: NextHopSet | None = None  # the set the actions name (claimed per switch)
    fallback: tuple[Action, ...] = ()  # the set's SELECT group, if its id is taken
    fallback_groups: tuple[GroupEntry, ...] = ()
    bounce_port: PortNo | None = None  # local repair: tagged packets delivered here


class _View:
    """What routes are derived from, for one compilation: links by switch, which
    switches face hosts, drained ports."""

    def __init__(self, inp: ForwardingInputs) -> None:
        self.inp = inp
        self.peer_of = {(lid.src.dpid, lid.src.port): lid.dst.dpid for lid in inp.links}
        self.peers: dict[Dpid, dict[PortNo, Dpid]] = defaultdict(dict)
        for (src, port), peer in self.peer_of.items():
            self.peers[src][port] = peer
        facing = inp.host_facing or (lambda d: bool(inp.edge_ports(d)))
        self.edge = {d: facing(d) for d in inp.switches}
        self.drained = {(lid.src.dpid, lid.src.port) for lid in inp.drained}
        self._edge_peers: dict[tuple[Dpid, tuple[PortNo, ...]], frozenset[Dpid]] = {}
        self._uplinks: dict[Dpid, tuple[PortNo, ...]] = {}
        self._routes: dict[tuple[Dpid, tuple[PortNo, ...], int, bool], _Route] = {}

    def switch_key(self, dpid: Dpid) -> Hashable:
        """Everything about ``dpid`` its routes and fixed entries depend on besides
        their next hops: while it stays the same, so do they."""
        peers = self.peers.get(dpid, {})
        return (
            self.edge[dpid],
            tuple(sorted((p, n, self.edge.get(n, True)) for p, n in peers.items())),
            tuple(sorted(p for p in peers if (dpid, p) in self.drained)),
            tuple(self.inp.edge_ports(dpid)) if self.inp.traps else (),
        )

    def route(self, dpid: Dpid, dst: Dpid, ports: tuple[PortNo, ...], distance: int) -> _Route:
        inp = self.inp
        if len(ports) == 1 or inp.single_path:
            port = ports[0]
            if inp.local_repair and bounces(
                has_edge_ports=self.edge[dpid],
                next_switch=self.peer_of[(dpid, port)],
                destination=dst,
            ):
                bounce = bounce_group(port)  # watches ALWAYS_LIVE: that goes in first
                groups = (ALWAYS_LIVE, bounce)
                return _Route(
                    ports, distance, (group_action(bounce.group_id),), groups, bounce_port=port
                )
            return _Route(ports, distance, (output(port),))
        # A detour through another leaf exists only while links are missing: it
        # keeps its SELECT group, so a transient state (a rediscovering fabric)
        # never adds and removes spread-table entries.
        via = self.edge_peers(dpid, ports)
        detour = len(via) > 1 or (bool(via) and dst not in via)
        key = (dpid, ports, distance, detour)
        route = self._routes.get(key)  # many destinations share one
        if route is None:
            route = self._routes[key] = self._spread(dpid, ports, distance, detour)
        return route

    def _spread(self, dpid: Dpid, ports: tuple[PortNo, ...], distance: int, detour: bool) -> _Route:
        weights = self._weights(dpid, ports)
        select = select_group(ports, weights=weights)
        plain = ((group_action(select.group_id),), (select,))
        hs = None
        if self.inp.spread_l4 and not detour:
            hs = self._spread_set(dpid, ports, weights, distance)
        if hs is None:
            return _Route(ports, distance, *plain)
        return _Route(ports, distance, hs.route_actions(), (), hs, *plain)

    def _spread_set(
        self,
        dpid: Dpid,
        ports: tuple[PortNo, ...],
        weights: dict[PortNo, int] | None,
        distance: int,
    ) -> NextHopSet | None:
        """The set for ``ports``: derived from the switch's set over all its uplinks
        when ``ports`` are those less a few (a link lost further on), else its own."""
        own = next_hop_set(ports, weights=weights, distance=distance, dpid=dpid)
        if own is None or weights is not None:
            return own
        full = self.uplinks(dpid)
        if len(full) <= len(ports) or not set(ports) < set(full):
            return own
        parent = next_hop_set(full, weights=None, distance=distance, dpid=dpid)
        derived = derived_set(parent, ports) if parent is not None else None
        return derived or own

    def uplinks(self, dpid: Dpid) -> tuple[PortNo, ...]:
        """``dpid``'s undrained ports towards switches that face no hosts (spines)."""
        ports = self._uplinks.get(dpid)
        if ports is None:
            ports = self._uplinks[dpid] = tuple(
                sorted(
                    port
                    for port, peer in self.peers.get(dpid, {}).items()
                    if not self.edge.get(peer, True) and (dpid, port) not in self.drained
                )
            )
        return ports

    def edge_peers(self, dpid: Dpid, ports: tuple[PortNo, ...]) -> frozenset[Dpid]:
        """The switches with edge ports (leaves) that ``ports`` lead to; kept per port
        set, which many destinations share (a leaf's uplinks to every other leaf)."""
        key = (dpid, ports)
        peers = self._edge_peers.get(key)
        if peers is None:
            nexts = (self.peer_of[(dpid, p)] for p in ports)
            peers = self._edge_peers[key] = frozenset(n for n in nexts if self.edge.get(n, True))
        return peers

    def _weights(self, dpid: Dpid, ports: tuple[PortNo, ...]) -> dict[PortNo, int] | None:
        weigh = self.inp.neighbour_weight
        if weigh is None:
            return None
        weights = {p: round(weigh(self.peer_of[(dpid, p)]) * 10) for p in ports}
        return weights if any(w > 0 for w in weights.values()) else None

    def returns(self, dpid: Dpid) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
        """A leaf's tagged-return entries (local repair)."""
        uplinks = tuple(
            sorted(
                (p, n) for p, n in self.peers.get(dpid, {}).items() if not self.edge.get(n, True)
            )
        )
        return _returns(uplinks, frozenset(p for d, p in self.drained if d == dpid))


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
        self._topology: Hashable = None
        self._keys: dict[Dpid, Hashable] = {}
        self._routes: dict[Dpid, dict[Dpid, _Route]] = {}  # switch -> destination -> route
        self._hosts: dict[Dpid, tuple[tuple[str, PortNo], ...]] = {}  # destination -> hosts
        self._macs: dict[Dpid, tuple[str, ...]] = {}  # destination -> its hosts' MACs

    def compile(self, inp: ForwardingInputs) -> dict[Dpid, OwnerNeeds]:
        """Needs of every switch whose default forwarding changed since the last call
        (all on the first; empty needs for a switch no longer given)."""
        context = (inp.single_path, inp.spread_l4, inp.local_repair, inp.packet_in_pps, inp.traps)
        if context != self._context or inp.neighbour_weight is not None:
            self._reset(context)
        view = _View(inp)
        out: dict[Dpid, OwnerNeeds] = {d: OwnerNeeds() for d in self._keys if d not in view.edge}
        for gone in out:
            del self._keys[gone], self._routes[gone]
        dirty = set()
        for dpid in inp.switches:
            key = view.switch_key(dpid)
            if self._keys.get(dpid) != key:
                self._keys[dpid], self._routes[dpid] = key, {}
                dirty.add(dpid)
        hosts: dict[Dpid, list[tuple[str, PortNo]]] = defaultdict(list)
        for host in inp.hosts:
            hosts[host.attach.dpid].append((host.mac, host.attach.port))
        dsts = sorted(hosts)
        topology = (frozenset(inp.links), frozenset(inp.drained))
        fresh = [d for d in dsts if d not in self._hosts]
        if topology != self._topology or dirty:  # next hops may have moved anywhere
            self._topology, fresh = topology, dsts
        for dst in [d for d in self._hosts if d not in hosts]:
            del self._hosts[dst], self._macs[dst]
            for routes in self._routes.values():
                routes.pop(dst, None)
            dirty.update(inp.switches)
        for dst in dsts:
            if self._hosts.get(dst) != (now := tuple(hosts[dst])):
                self._hosts[dst], self._macs[dst] = now, tuple(mac for mac, _ in now)
                dirty.update(inp.switches)  # its hosts' entries are on every switch
        for dst, hops, dist in next_hops_many(fresh, inp.links, drained=inp.drained):
            for dpid in inp.switches:
                routes, ports = self._routes[dpid], hops.get(dpid)
                had = routes.get(dst)
                if had is not None and had.ports == ports and had.distance == dist[dpid]:
                    continue
                if ports and dpid != dst:
                    routes[dst] = view.route(dpid, dst, ports, dist[dpid])
                elif had is None:
                    continue
                else:
                    del routes[dst]
                dirty.add(dpid)
        for dpid in sorted(dirty):
            out[dpid] = self._assemble(dpid, dsts, view)
        return out

    def _assemble(self, dpid: Dpid, dsts: list[Dpid], view: _View) -> OwnerNeeds:
        inp = view.inp
        metered = inp.packet_in_pps > 0
        flows: list[FlowEntry] = list(_base_entries(metered))
        groups: dict[int, GroupEntry] = {}
        sets: dict[int, NextHopSet] = {}
        routes, every_macs = self._routes[dpid], self._macs
        for dst in dsts:
            if dst == dpid:
                for mac, port in self._hosts[dst]:
                    flows += _host_entries((mac,), (output(port),))
                continue
            route = routes.get(dst)
            if route is None:
                continue
            actions, needs = route.actions, route.groups
            hs = route.spread
            if (
                hs is not None
                and sets.get(hs.set_id) is not hs
                and not _claim(hs, sets, flows, groups)
            ):
                actions, needs = route.fallback, route.fallback_groups
            for group in needs:
                groups[group.group_id] = group
            macs = every_macs[dst]
            flows += _host_entries(macs, actions)
            if route.bounce_port is not None:
                flows += _deliveries(macs, route.bounce_port)
        if inp.local_repair:
            flows.append(_TAGGED_DROP)
            if view.edge[dpid]:
                entries, returns = view.returns(dpid)
                flows += entries
                groups.update((g.group_id, g) for g in returns)
        flows += compile_traps(inp.edge_ports(dpid), inp.traps, metered=metered)
        meter = MeterEntry(PACKET_IN_METER, inp.packet_in_pps, inp.packet_in_pps // 2)
        return OwnerNeeds(
            flows={dpid: tuple(flows)},
            groups={dpid: tuple(groups.values())} if groups else {},
            meters={dpid: (meter,)} if metered else {},
        )


def _claim(
    hs: NextHopSet,
    sets: dict[int, NextHopSet],
    flows: list[FlowEntry],
    groups: dict[int, GroupEntry],
) -> bool:
    """Give ``hs`` its spread-table entries on a switch (once per set). False if its
    metadata id is taken by another set there: that route keeps its group."""
    if hs.parent is not None and not _claim(hs.parent, sets, flows, groups):
        return False  # the parent's entries serve most of a derived set's buckets
    have = sets.get(hs.set_id)
    if have is not None:
        return have == hs
    sets[hs.set_id] = hs
    entries, needed = compile_set(hs, cookie=_HOST)
    flows += entries
    groups.update((g.group_id, g) for g in needed)
    return True
