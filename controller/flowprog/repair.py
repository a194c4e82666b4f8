"""Local repair of a failed last hop: bounce the packet back, tagged, to take another spine.

A spine (here: a switch with no edge ports) that reaches a destination switch
over exactly one direct link has no loop-free backup of its own, so a cut
spine->leaf link used to lose traffic until the controller re-routed. With
local repair the spine's route to that switch forwards through a
FAST_FAILOVER group: its first bucket is the link; its second pushes an
802.1Q tag with the reserved VID :data:`TAG_VID` and sends the packet back
out of the port it came in by (``OFPP_IN_PORT``). The leaf it came from (a
switch with edge ports) matches tagged packets per uplink and sends them,
still tagged, up another spine (a failover chain over its other uplinks). A
spine forwards a tagged packet only straight down to the destination switch,
popping the tag on the way out; every other tagged packet is dropped. So a
packet is bounced at most once, a tagged packet never reaches a host, and a
host cannot inject tagged packets (they meet the drop at its leaf).

Why a VLAN tag: OpenFlow 1.3 pushes, sets and pops it with standard actions
that Open vSwitch supports, it needs no MPLS label space, and the fabric
carries no VLANs otherwise, so one reserved VID is an unambiguous marker.
The bounce bucket has no watch port: Open vSwitch treats it as always live.

This module decides the entries and groups of the repair; the routes that use
them are compiled by :mod:`controller.flowprog.forwarding` and
:mod:`controller.flowprog.flowrules`. It does not choose next hops.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache

from controller.fabric.model import Dpid, PortNo
from controller.flowprog.entries import (
    IN_PORT,
    OFPVID_PRESENT,
    Bucket,
    FlowEntry,
    GroupAction,
    GroupEntry,
    GroupType,
    Match,
    Output,
    PopVlan,
    PushVlan,
    SetField,
)
from controller.flowprog.groups import failover_chain, group_id_for

__all__ = [
    "ALWAYS_LIVE",
    "TAG_VID",
    "TAG",
    "PRIO_TAGGED",
    "PRIO_TAGGED_DROP",
    "bounces",
    "bounce_group",
    "delivery_entry",
    "tagged_drop",
    "return_entries",
]

TAG_VID = 4001
TAG = OFPVID_PRESENT | TAG_VID  # the vlan_vid value as matched, set and reported
# Above per-flow rules (40000), so a tagged packet of a placed flow is handled
# here rather than sent back the way it came; below LLDP and ARP.
PRIO_TAGGED = 50000
PRIO_TAGGED_DROP = 49990


def bounces(*, faces_hosts: bool, next_switch: Dpid, destination: Dpid) -> bool:
    """Whether a switch's single hop towards ``destination`` gets a bounce bucket.

    Only a switch that faces no host bounces (its in-port is always a fabric
    port; see :meth:`Topology.host_facing`), and only on a direct link to the
    destination switch:
    that is the hop with no loop-free alternative on a leaf-spine.
    """
    return not faces_hosts and next_switch == destination


def _always_live() -> GroupEntry:
    buckets = (Bucket(actions=()),)
    return GroupEntry(group_id_for(GroupType.INDIRECT, buckets), GroupType.INDIRECT, buckets)


# Open vSwitch requires a watch on every FAST_FAILOVER bucket. The bounce bucket
# must stay live whatever port fails, so it watches this group: an INDIRECT
# group with one unwatched (so always live) bucket that no rule ever sends to.
ALWAYS_LIVE = _always_live()


@lru_cache(maxsize=4096)  # content-named: one value per port, not one per flow
def bounce_group(port: PortNo) -> GroupEntry:
    """Out of ``port`` while it is up, else tagged back out of the in-port.

    Install :data:`ALWAYS_LIVE` on the switch first: the second bucket watches it.
    """
    buckets = (
        Bucket(actions=(Output(port),), watch_port=port),
        Bucket(
            actions=(PushVlan(), SetField("vlan_vid", TAG), Output(IN_PORT)),
            watch_group=ALWAYS_LIVE.group_id,
        ),
    )
    return GroupEntry(
        group_id_for(GroupType.FAST_FAILOVER, buckets), GroupType.FAST_FAILOVER, buckets
    )


def delivery_entry(mac: str, port: PortNo, *, cookie: int) -> FlowEntry:
    """On a spine: a tagged packet for host ``mac`` goes straight down ``port``, untagged.

    A plain output, never the bounce group: a packet bounced once is dropped if
    this link is down too.
    """
    return FlowEntry(
        PRIO_TAGGED,
        Match.of(vlan_vid=TAG, eth_dst=mac),
        (PopVlan(), Output(port)),
        cookie,
    )


def tagged_drop(*, cookie: int) -> FlowEntry:
    """Every tagged packet no repair entry claims is dropped (never forwarded, never trapped)."""
    return FlowEntry(PRIO_TAGGED_DROP, Match.of(vlan_vid=TAG), (), cookie)


def return_entries(
    uplinks: Mapping[PortNo, Dpid],
    *,
    drained: Collection[PortNo],
    cookie: int,
) -> tuple[list[FlowEntry], list[GroupEntry]]:
    """On a leaf: a tagged packet coming back from a spine leaves by another spine.

    ``uplinks`` maps each of the leaf's ports towards a spine to that spine.
    A packet bounced in by port ``u`` goes, still tagged, out of the first live
    port after ``u`` (in port order) that leads to a *different* spine;
    drained links come last. Without such a port, the tagged drop takes it.
    """
    ports = sorted(uplinks)
    entries: list[FlowEntry] = []
    groups: list[GroupEntry] = []
    for i, port in enumerate(ports):
        others = [p for p in ports[i + 1 :] + ports[:i] if uplinks[p] != uplinks[port]]
        order = _undrained_first(others, drained)
        if not order:
            continue
        chain = failover_chain(order)
        groups.append(chain)
        entries.append(
            FlowEntry(
                PRIO_TAGGED,
                Match.of(in_port=port, vlan_vid=TAG),
                (GroupAction(chain.group_id),),
                cookie,
            )
        )
    return entries, groups


def _undrained_first(ports: Sequence[PortNo], drained: Collection[PortNo]) -> list[PortNo]:
    return [p for p in ports if p not in drained] + [p for p in ports if p in drained]
