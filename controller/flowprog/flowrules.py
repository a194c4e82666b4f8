"""Compile one placed flow into exact per-switch rules.

Every switch on the path gets an exact 5-tuple rule at ``PRIO_FLOW``; the
ingress rule is the one that flips the flow onto a new path (it is marked
``ingress`` so the planner changes it only after the rest of the path is in
place), carries the idle timeout and asks for a flow-removed message. The
first hop forwards through a FAST_FAILOVER group when a backup uplink exists,
so the switch itself repairs a failed uplink before the controller re-places
the flow. All entries carry the flow's cookie (id + generation). What depends
only on the path (actions, the failover group, the programming order) is a
cached per-path template; a flow adds its match, cookie and timeout.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.fabric.model import Dpid, FiveTuple, Path, PortNo
from controller.flowprog.entries import (
    Action,
    Cookie,
    CookieKind,
    FlowEntry,
    GroupAction,
    GroupEntry,
    Match,
    Output,
)
from controller.flowprog.forwarding import PRIO_FLOW
from controller.flowprog.groups import failover_group
from controller.flowprog.tables import OwnerNeeds

__all__ = ["FlowRules", "flow_match", "compile_flow", "FLOW_COOKIE_MASK", "FLOW_KIND_COOKIE"]

TCP, UDP = 6, 17
# Selects every per-flow entry (tag + kind), for flow-stats requests.
FLOW_KIND_COOKIE = Cookie(CookieKind.FLOW).encode()
FLOW_COOKIE_MASK = 0xFFFF000000000000


def flow_match(ft: FiveTuple) -> Match:
    fields: dict[str, int | str] = {
        "eth_type": 0x0800,
        "ip_proto": ft.ip_proto,
        "ipv4_src": ft.src_ip,
        "ipv4_dst": ft.dst_ip,
    }
    if ft.ip_proto == TCP:
        fields.update(tcp_src=ft.src_port, tcp_dst=ft.dst_port)
    elif ft.ip_proto == UDP:
        fields.update(udp_src=ft.src_port, udp_dst=ft.dst_port)
    return Match.of(**fields)


@dataclass(frozen=True)
class FlowRules:
    """What one flow needs: entries per switch and the optional failover group."""

    needs: OwnerNeeds
    egress_first: tuple[Dpid, ...]  # path order for make-before-break (egress first)


@dataclass(frozen=True)
class _Template:
    """What every flow on one path shares: per hop the switch, its action and whether
    it is the ingress; the failover group; the make-before-break order."""

    hops: tuple[tuple[Dpid, Action, bool], ...]
    groups: Mapping[Dpid, tuple[GroupEntry, ...]]
    egress_first: tuple[Dpid, ...]


@functools.lru_cache(maxsize=16384)
def _template(
    switches: tuple[Dpid, ...], outs: tuple[PortNo, ...], backup: PortNo | None
) -> _Template:
    # Paths repeat across flows (a leaf pair has as many as there are spines), and
    # a failover group's id is a checksum of its buckets: both are built once per
    # (path, egress port, backup) and shared by the flows' rules.
    hops = []
    groups: dict[Dpid, tuple[GroupEntry, ...]] = {}
    last = len(switches) - 1
    for hop, dpid in enumerate(switches):
        action: Action = Output(outs[hop])
        if hop == 0 and last and backup is not None:
            group = failover_group(outs[hop], backup)
            groups[dpid] = (group,)
            action = GroupAction(group.group_id)
        hops.append((dpid, action, hop == 0))
    return _Template(tuple(hops), groups, tuple(reversed(switches)))


def compile_flow(
    ft: FiveTuple,
    *,
    flow_id: int,
    generation: int,
    path: Path,
    egress_port: PortNo,
    idle_timeout: int,
    backup_ports: Mapping[Dpid, Sequence[PortNo]] | None = None,
) -> FlowRules:
    """Rules for ``ft`` along ``path``, leaving the fabric at ``egress_port``.

    ``backup_ports[ingress]`` lists the ingress switch's other ports towards the
    egress switch; the first that differs from the primary becomes the
    fast-failover backup.
    """
    switches = path.switches
    outs = (*(lid.src.port for lid in path.links), egress_port)
    backup = None
    if len(switches) > 1 and backup_ports:
        primary = outs[0]
        backup = next((p for p in backup_ports.get(switches[0], ()) if p != primary), None)
    template = _template(switches, outs, backup)
    cookie = Cookie(CookieKind.FLOW, flow_id, generation).encode()
    match = flow_match(ft)
    flows = {
        dpid: (
            FlowEntry(
                priority=PRIO_FLOW,
                match=match,
                actions=(action,),
                cookie=cookie,
                idle_timeout=idle_timeout if ingress else 0,
                send_flow_removed=ingress,
                ingress=ingress,
            ),
        )
        for dpid, action, ingress in template.hops
    }
    return FlowRules(
        needs=OwnerNeeds(flows=flows, groups=dict(template.groups)),
        egress_first=template.egress_first,
    )
