"""Compile the default forwarding state of every switch.

Per switch: the fixed entries (LLDP and ARP to the controller, multicast
dropped, table-miss to the controller), one entry per learned host (out of
its port on its own switch; elsewhere over every next hop towards it, spread
by a SELECT group), and the class traps that send the first packet of a
policy-governed flow to the controller from edge ports only.

Nothing is ever flooded: broadcast ARP is answered or relayed to edge ports by
the controller, so the loops of a leaf-spine cannot carry a storm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
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
    Output,
    ToController,
)
from controller.flowprog.groups import select_group
from controller.flowprog.tables import OwnerNeeds
from controller.routing.nexthops import next_hops_to

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


def base_entries(*, metered: bool) -> list[FlowEntry]:
    meter = PACKET_IN_METER if metered else None
    return [
        FlowEntry(PRIO_LLDP, Match.of(eth_type=ETH_LLDP), (ToController(),), _BASE),
        FlowEntry(PRIO_ARP, Match.of(eth_type=ETH_ARP), (ToController(),), _BASE, meter_id=meter),
        FlowEntry(PRIO_MCAST_DROP, Match.of(eth_dst=MCAST_BIT), (), _BASE),
        FlowEntry(PRIO_MISS, Match(), (ToController(),), _BASE, meter_id=meter),
    ]


def compile_forwarding(inp: ForwardingInputs) -> dict[Dpid, OwnerNeeds]:
    """Per-switch needs of the default forwarding state."""
    metered = inp.packet_in_pps > 0
    flows: dict[Dpid, list[FlowEntry]] = {d: base_entries(metered=metered) for d in inp.switches}
    groups: dict[Dpid, dict[int, GroupEntry]] = defaultdict(dict)
    peer_of = {(lid.src.dpid, lid.src.port): lid.dst.dpid for lid in inp.links}

    by_switch: dict[Dpid, list[Host]] = defaultdict(list)
    for host in inp.hosts:
        by_switch[host.attach.dpid].append(host)
    for dst, hosts in sorted(by_switch.items()):
        hops = next_hops_to(dst, inp.links, drained=inp.drained)
        for dpid in inp.switches:
            if dpid == dst:
                for host in hosts:
                    flows[dpid].append(_host_entry(host, (Output(host.attach.port),)))
                continue
            ports = hops.get(dpid)
            if not ports:
                continue
            action, group = _spread(dpid, ports, inp, peer_of)
            if group is not None:
                groups[dpid][group.group_id] = group
            flows[dpid] += [_host_entry(host, (action,)) for host in hosts]

    for dpid in inp.switches:
        flows[dpid] += compile_traps(inp.edge_ports(dpid), inp.traps, metered=metered)
    meters = (
        {
            d: (MeterEntry(PACKET_IN_METER, inp.packet_in_pps, inp.packet_in_pps // 2),)
            for d in flows
        }
        if metered
        else {}
    )
    return {
        dpid: OwnerNeeds.build(
            flows={dpid: flows[dpid]},
            groups={dpid: groups[dpid].values()} if groups.get(dpid) else None,
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


def host_route_key(mac: str) -> EntryKey:
    """Where a switch's default route to the host with ``mac`` sits in its table."""
    return (0, PRIO_HOST, Match.of(eth_dst=mac))


def _host_entry(host: Host, actions: tuple[Action, ...]) -> FlowEntry:
    _, prio, match = host_route_key(host.mac)
    return FlowEntry(prio, match, actions, _HOST)


def _spread(
    dpid: Dpid,
    ports: tuple[PortNo, ...],
    inp: ForwardingInputs,
    peer_of: Mapping[tuple[Dpid, PortNo], Dpid],
) -> tuple[Action, GroupEntry | None]:
    if len(ports) == 1 or inp.single_path:
        return Output(ports[0]), None
    weights = None
    if inp.neighbour_weight is not None:
        weigh = inp.neighbour_weight
        weights = {p: round(weigh(peer_of[(dpid, p)]) * 10) for p in ports}
        if not any(w > 0 for w in weights.values()):
            weights = None
    group = select_group(ports, weights=weights)
    return GroupAction(group.group_id), group
