"""The fixed entries of every switch and its class traps.

Fixed: LLDP and ARP to the controller (ARP metered when packet-ins are), multicast
dropped, table-miss to the controller, and local repair's drop of tagged packets
that found no delivery. Class traps send the first packet of a policy-governed
flow to the controller, from edge ports only.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from controller.fabric.model import PortNo
from controller.flowprog.entries import Cookie, CookieKind, FlowEntry, Match, ToController
from controller.flowprog.fwdroutes import ClassTrap
from controller.flowprog.repair import tagged_drop

__all__ = [
    "PRIO_LLDP",
    "PRIO_ARP",
    "PRIO_MCAST_DROP",
    "PRIO_MISS",
    "PACKET_IN_METER",
    "TAGGED_DROP",
    "base_entries",
    "compile_traps",
]

PRIO_LLDP = 60000
PRIO_ARP = 59000
PRIO_MCAST_DROP = 100
PRIO_MISS = 0

PACKET_IN_METER = 1
ETH_LLDP = 0x88CC
ETH_ARP = 0x0806
MCAST_BIT = ("01:00:00:00:00:00", "01:00:00:00:00:00")

_BASE = Cookie(CookieKind.BASE).encode()
_TRAP = Cookie(CookieKind.CLASS_TRAP).encode()


@functools.lru_cache(maxsize=2)
def base_entries(metered: bool) -> tuple[FlowEntry, ...]:
    """Every switch's fixed entries (packet-ins metered or not)."""
    meter = PACKET_IN_METER if metered else None
    return (
        FlowEntry(PRIO_LLDP, Match.of(eth_type=ETH_LLDP), (ToController(),), _BASE),
        FlowEntry(PRIO_ARP, Match.of(eth_type=ETH_ARP), (ToController(),), _BASE, meter_id=meter),
        FlowEntry(PRIO_MCAST_DROP, Match.of(eth_dst=MCAST_BIT), (), _BASE),
        FlowEntry(PRIO_MISS, Match(), (ToController(),), _BASE, meter_id=meter),
    )


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


_TAGGED_DROP = tagged_drop(cookie=_BASE)


TAGGED_DROP = tagged_drop(cookie=_BASE)
