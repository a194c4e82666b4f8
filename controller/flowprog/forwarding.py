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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller.fabric.model import Dpid, Host, LinkId, PortNo
from controller.flowprog.entries import (
    Action,
    Cookie,
    CookieKind,
    EntryKey,
    FlowEntry,
    GroupAction,
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
    """Per-switch needs of the default forwarding state."""
    metered = inp.packet_in_pps > 0
    build = _Build(inp)
    by_switch: dict[Dpid, list[Host]] = defaultdict(list)
    for host in inp.hosts:
        by_switch[host.attach.dpid].append(host)
    dsts = sorted(by_switch)
    for dst, hops, dist in next_hops_many(dsts, inp.links, drained=inp.drained):
        hosts = by_switch[dst]
        macs = tuple(h.mac for h in hosts)
        for dpid in inp.switches:
            if dpid == dst:
                for host in hosts:
                    build.flows[dpid] += _host_entries((host.mac,), (output(host.attach.port),))
                continue
            ports = hops.get(dpid)
            if not ports:
                continue
            actions, bounce_port = build.route(dpid, dst, ports, dist[dpid])
            build.flows[dpid] += _host_entries(macs, actions)
            if bounce_port is not None:
                build.flows[dpid] += _deliveries(macs, bounce_port)
    if inp.local_repair:
        build.repair_entries()

    for dpid in inp.switches:
        build.flows[dpid] += compile_traps(inp.edge_ports(dpid), inp.traps, metered=metered)
    meters = (
        {
            d: (MeterEntry(PACKET_IN_METER, inp.packet_in_pps, inp.packet_in_pps // 2),)
            for d in inp.switches
        }
        if metered
        else {}
    )
    return {
        dpid: OwnerNeeds.build(
            flows={dpid: build.flows[dpid]},
            groups={dpid: build.groups[dpid].values()} if build.groups.get(dpid) else None,
            meters={dpid: meters[dpid]} if dpid in meters else None,
        )
        for dpid in inp.switches
    }


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


class _Build:
    """Entries and groups of every switch, collected while routes are compiled."""

    def __init__(self, inp: ForwardingInputs) -> None:
        self.inp = inp
        metered = inp.packet_in_pps > 0
        self.flows: dict[Dpid, list[FlowEntry]] = {
            d: base_entries(metered=metered) for d in inp.switches
        }
        self.groups: dict[Dpid, dict[int, GroupEntry]] = defaultdict(dict)
        self.peer_of = {(lid.src.dpid, lid.src.port): lid.dst.dpid for lid in inp.links}
        self.peers_by_switch: dict[Dpid, dict[PortNo, Dpid]] = defaultdict(dict)
        for (src, port), peer in self.peer_of.items():
            self.peers_by_switch[src][port] = peer
        facing = inp.host_facing or (lambda d: bool(inp.edge_ports(d)))
        self.edge = {d: facing(d) for d in inp.switches}
        self.sets: dict[Dpid, dict[int, NextHopSet]] = defaultdict(dict)
        self.edge_peers: dict[tuple[Dpid, tuple[PortNo, ...]], frozenset[Dpid]] = {}
        self.drained = {(lid.src.dpid, lid.src.port) for lid in inp.drained}
        self.uplinks: dict[Dpid, tuple[PortNo, ...]] = {}
        self.spread_routes: dict[
            tuple[Dpid, tuple[PortNo, ...], int], tuple[Action, ...] | None
        ] = {}

    def group(self, dpid: Dpid, group: GroupEntry) -> GroupAction:
        self.groups[dpid][group.group_id] = group
        return group_action(group.group_id)

    def route(
        self, dpid: Dpid, dst: Dpid, ports: tuple[PortNo, ...], distance: int
    ) -> tuple[tuple[Action, ...], PortNo | None]:
        """The actions of ``dpid``'s routes towards hosts on ``dst``, and the port
        whose failure bounces packets back (local repair), if any."""
        inp = self.inp
        if len(ports) == 1 or inp.single_path:
            port = ports[0]
            nxt = self.peer_of[(dpid, port)]
            if inp.local_repair and bounces(
                has_edge_ports=self.edge[dpid], next_switch=nxt, destination=dst
            ):
                self.group(dpid, ALWAYS_LIVE)  # watched by the bounce group: added first
                return (self.group(dpid, bounce_group(port)),), port
            return (output(port),), None
        weights = self._weights(dpid, ports)
        # A detour through another leaf exists only while links are missing: it
        # keeps its SELECT group, so a transient state (a rediscovering fabric)
        # never adds and removes spread-table entries.
        via = self._edge_peers(dpid, ports)
        detour = len(via) > 1 or (bool(via) and dst not in via)
        if inp.spread_l4 and not detour:
            key = (dpid, ports, distance)
            if key not in self.spread_routes:  # many destinations share one set
                hs = self._spread_set(dpid, ports, weights, distance)
                claimed = hs is not None and self._claim(dpid, hs)
                self.spread_routes[key] = hs.route_actions() if hs and claimed else None
            actions = self.spread_routes[key]
            if actions is not None:
                return actions, None
        return (self.group(dpid, select_group(ports, weights=weights)),), None

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
        full = self._uplinks(dpid)
        if len(full) <= len(ports) or not set(ports) < set(full):
            return own
        parent = next_hop_set(full, weights=None, distance=distance, dpid=dpid)
        derived = derived_set(parent, ports) if parent is not None else None
        return derived or own

    def _uplinks(self, dpid: Dpid) -> tuple[PortNo, ...]:
        """``dpid``'s undrained ports towards switches that face no hosts (spines)."""
        ports = self.uplinks.get(dpid)
        if ports is None:
            ports = self.uplinks[dpid] = tuple(
                sorted(
                    port
                    for port, peer in self.peers_by_switch.get(dpid, {}).items()
                    if not self.edge.get(peer, True) and (dpid, port) not in self.drained
                )
            )
        return ports

    def _edge_peers(self, dpid: Dpid, ports: tuple[PortNo, ...]) -> frozenset[Dpid]:
        """The switches with edge ports (leaves) that ``ports`` lead to; kept per port
        set, which many destinations share (a leaf's uplinks to every other leaf)."""
        key = (dpid, ports)
        peers = self.edge_peers.get(key)
        if peers is None:
            nexts = (self.peer_of[(dpid, p)] for p in ports)
            peers = self.edge_peers[key] = frozenset(n for n in nexts if self.edge.get(n, True))
        return peers

    def _weights(self, dpid: Dpid, ports: tuple[PortNo, ...]) -> dict[PortNo, int] | None:
        weigh = self.inp.neighbour_weight
        if weigh is None:
            return None
        weights = {p: round(weigh(self.peer_of[(dpid, p)]) * 10) for p in ports}
        return weights if any(w > 0 for w in weights.values()) else None

    def _claim(self, dpid: Dpid, hs: NextHopSet) -> bool:
        """Give ``hs`` its spread-table entries on ``dpid`` (once per set). False if
        its metadata id is taken by another set there: that route keeps its group."""
        if hs.parent is not None and not self._claim(dpid, hs.parent):
            return False  # the parent's entries serve most of a derived set's buckets
        have = self.sets[dpid].get(hs.set_id)
        if have is not None:
            return have == hs
        self.sets[dpid][hs.set_id] = hs
        entries, groups = compile_set(hs, cookie=_HOST)
        self.flows[dpid] += entries
        for group in groups:
            self.group(dpid, group)
        return True

    def repair_entries(self) -> None:
        """Every switch drops stray tagged packets; leaves send bounced ones up
        another spine."""
        drained = self.drained
        for dpid in self.inp.switches:
            self.flows[dpid].append(_TAGGED_DROP)
            if not self.edge[dpid]:
                continue
            uplinks = tuple(
                sorted(
                    (port, peer)
                    for port, peer in self.peers_by_switch.get(dpid, {}).items()
                    if not self.edge.get(peer, True)
                )
            )
            entries, groups = _returns(uplinks, frozenset(p for d, p in drained if d == dpid))
            self.flows[dpid] += entries
            for group in groups:
                self.group(dpid, group)


_TAGGED_DROP = tagged_drop(cookie=_BASE)


@functools.lru_cache(maxsize=4096)
def _returns(
    uplinks: tuple[tuple[PortNo, Dpid], ...], drained: frozenset[PortNo]
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    """A leaf's tagged-return entries, kept per uplinks (leaves wired alike share
    them, and a recomputation gets the same objects back)."""
    entries, groups = return_entries(dict(uplinks), drained=drained, cookie=_HOST)
    return tuple(entries), tuple(groups)
