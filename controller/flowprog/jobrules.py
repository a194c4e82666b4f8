"""Compile the placed pairs of a declared job into per-switch rules.

A job's pair (source host, destination host, the job's transport) gets the
same match on every switch of its path: IPv4 source and destination, the
protocol and the destination ports (one match per port prefix). Every flow of
the pair (RoCE queue pairs, NCCL channels) follows the pair's path. The
ingress switch forwards through a FAST_FAILOVER group when another uplink
towards the egress exists, so a failed uplink is repaired in the switch
before the job is re-solved. Transit hops that default forwarding already
takes (``default_takes``, as for placed flows) get no rule. Rules sit at
``PRIO_JOB``: above every class trap, so a job's packets never reach the
controller; below per-flow rules.
All entries carry the job's cookie (job id + plan generation). This module
decides nothing: paths come from the joint solver.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from controller.fabric.model import Dpid, Path, PortNo
from controller.flowprog.classmatch import of_matches
from controller.flowprog.entries import (
    Action,
    Cookie,
    CookieKind,
    FlowEntry,
    GroupEntry,
    Match,
)
from controller.flowprog.flowrules import compile_path
from controller.flowprog.forwarding import PRIO_JOB
from controller.flowprog.plan import egress_order
from controller.flowprog.tables import OwnerNeeds
from controller.policy.model import FlowMatch

__all__ = ["PairRoute", "job_id", "job_cookie", "pair_matches", "compile_job"]


@dataclass(frozen=True)
class PairRoute:
    """One placed pair: its hosts, its path and where it leaves the fabric."""

    src_ip: str
    dst_ip: str
    path: Path
    egress_port: PortNo
    backup_ports: tuple[PortNo, ...] = ()  # the ingress switch's other ports towards the egress


def job_id(name: str) -> int:
    """A stable 32-bit id for a job name (the flow-id field of its cookies)."""
    return zlib.crc32(name.encode()) or 1


def job_cookie(name: str, generation: int) -> int:
    return Cookie(CookieKind.JOB, job_id(name), generation & 0xFFFF).encode()


def pair_matches(transport: FlowMatch, src_ip: str, dst_ip: str) -> list[Match]:
    """The OpenFlow matches of one pair's traffic (one per destination-port prefix)."""
    pair = FlowMatch(
        ip_proto=transport.ip_proto,
        dst_ports=transport.dst_ports,
        src_hosts=(ipaddress.IPv4Network(f"{src_ip}/32"),),
        dst_hosts=(ipaddress.IPv4Network(f"{dst_ip}/32"),),
    )
    return of_matches(pair)


def compile_job(
    routes: Iterable[PairRoute],
    *,
    transport: FlowMatch,
    cookie: int,
    failover: bool = True,
    host_facing: Callable[[Dpid], bool] | None = None,
    default_takes: Callable[[str], Callable[[Dpid, Action], bool] | None] | None = None,
) -> tuple[OwnerNeeds, tuple[Dpid, ...]]:
    """Rules for every placed pair; returns the needs and an egress-first switch order.

    ``host_facing`` (local repair on) lets a spine's last hop bounce when its
    link to the destination fails, as for placed flows. ``default_takes(dst_ip)``:
    where default forwarding already carries packets to that host (see
    :func:`~controller.flowprog.flowrules.compile_flow`).
    """
    flows: dict[Dpid, list[FlowEntry]] = defaultdict(list)
    groups: dict[Dpid, dict[int, GroupEntry]] = defaultdict(dict)
    orders: list[tuple[Dpid, ...]] = []
    for route in routes:
        rules = compile_path(
            pair_matches(transport, route.src_ip, route.dst_ip),
            cookie=cookie,
            path=route.path,
            egress_port=route.egress_port,
            idle_timeout=0,
            backup_ports={route.path.switches[0]: route.backup_ports} if failover else None,
            host_facing=host_facing,
            priority=PRIO_JOB,
            flow_removed=False,
            default_takes=default_takes(route.dst_ip) if default_takes else None,
        )
        for dpid, entries in rules.needs.flows.items():
            flows[dpid] += entries
        for dpid, shared in rules.needs.groups.items():
            groups[dpid].update((g.group_id, g) for g in shared)
        orders.append(rules.egress_first)
    order = egress_order(orders)  # switches nearer an egress first: downstream first
    needs = OwnerNeeds.build(flows=flows, groups={d: g.values() for d, g in groups.items()})
    return needs, order
