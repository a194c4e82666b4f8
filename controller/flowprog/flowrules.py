"""Compile one placed flow into exact per-switch rules.

Switches on the path get an exact 5-tuple rule at ``PRIO_FLOW`` (transit
hops only where default forwarding would not do the same, see below); the
ingress rule is the one that flips the flow onto a new path (it is marked
``ingress`` so the planner changes it only after the rest of the path is in
place), carries the idle timeout and asks for a flow-removed message. The
first hop forwards through a FAST_FAILOVER group when a backup uplink exists,
so the switch itself repairs a failed uplink before the controller re-places
the flow; with local repair, a spine's last hop bounces packets back when its
link fails, through the same group default forwarding uses
(:mod:`controller.flowprog.repair`). A transit hop whose default forwarding
already does what the hop's rule would (``default_takes``: on a 2-tier
fabric, a spine's and the egress leaf's route to the destination host) gets
no rule: the ingress rule alone pins the path, and a move rewrites one rule.
All entries carry the flow's cookie (id + generation). :func:`compile_path`
does the same for any set of matches (the rules of a declared job's host
pair).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from controller.fabric.model import Dpid, FiveTuple, Path, PortNo
from controller.flowprog.entries import (
    Action,
    Cookie,
    CookieKind,
    FlowEntry,
    GroupEntry,
    Match,
    group_action,
    output,
)
from controller.flowprog.forwarding import PRIO_FLOW
from controller.flowprog.groups import failover_chain
from controller.flowprog.repair import ALWAYS_LIVE, bounce_group, bounces
from controller.flowprog.tables import OwnerNeeds

__all__ = [
    "FlowRules",
    "flow_match",
    "compile_flow",
    "compile_path",
    "FLOW_COOKIE_MASK",
    "FLOW_KIND_COOKIE",
]

TCP, UDP = 6, 17
# Selects every per-flow entry (tag + kind), for flow-stats requests.
FLOW_KIND_COOKIE = Cookie(CookieKind.FLOW).encode()
FLOW_COOKIE_MASK = 0xFFFF000000000000


def flow_match(ft: FiveTuple) -> Match:
    """The exact match of ``ft`` (its fields in :meth:`Match.of`'s sorted order, built
    directly: this runs once per new flow)."""
    head = (
        ("eth_type", 0x0800),
        ("ip_proto", ft.ip_proto),
        ("ipv4_dst", ft.dst_ip),
        ("ipv4_src", ft.src_ip),
    )
    if ft.ip_proto == TCP:
        return Match((*head, ("tcp_dst", ft.dst_port), ("tcp_src", ft.src_port)))
    if ft.ip_proto == UDP:
        return Match((*head, ("udp_dst", ft.dst_port), ("udp_src", ft.src_port)))
    return Match(head)


@dataclass(frozen=True)
class FlowRules:
    """What one flow needs: entries per switch and the optional failover group."""

    needs: OwnerNeeds
    egress_first: tuple[Dpid, ...]  # path order for make-before-break (egress first)


def compile_flow(
    ft: FiveTuple,
    *,
    flow_id: int,
    generation: int,
    path: Path,
    egress_port: PortNo,
    idle_timeout: int,
    backup_ports: Mapping[Dpid, Sequence[PortNo]] | None = None,
    host_facing: Callable[[Dpid], bool] | None = None,
    default_takes: Callable[[Dpid, Action], bool] | None = None,
) -> FlowRules:
    """Rules for ``ft`` along ``path``, leaving the fabric at ``egress_port``.

    ``backup_ports[ingress]`` lists the ingress switch's ports towards the egress
    switch (sorted); the first hop forwards through a fast-failover chain of the
    primary, then the others in their order from the primary on (wrapping round:
    the chain the leaf's spread set has for that port already). ``host_facing``
    (given when local repair is on) tells which switches are leaves: the others'
    (spines') hop into the egress switch bounces.
    ``default_takes(dpid, action)``: whether ``dpid`` forwards the flow's packets
    by just ``action`` without a rule (then no rule goes there, except at ingress).
    """
    return compile_path(
        (flow_match(ft),),
        cookie=Cookie.of_flow(flow_id, generation),
        path=path,
        egress_port=egress_port,
        idle_timeout=idle_timeout,
        backup_ports=backup_ports,
        host_facing=host_facing,
        default_takes=default_takes,
    )


def compile_path(
    matches: Sequence[Match],
    *,
    cookie: int,
    path: Path,
    egress_port: PortNo,
    idle_timeout: int,
    backup_ports: Mapping[Dpid, Sequence[PortNo]] | None = None,
    host_facing: Callable[[Dpid], bool] | None = None,
    priority: int = PRIO_FLOW,
    flow_removed: bool = True,
    default_takes: Callable[[Dpid, Action], bool] | None = None,
) -> FlowRules:
    """Rules sending every packet of ``matches`` along ``path`` (see :func:`compile_flow`),
    at ``priority``; ``flow_removed``: the ingress entry reports its expiry."""
    flows: dict[Dpid, tuple[FlowEntry, ...]] = {}
    groups: dict[Dpid, tuple[GroupEntry, ...]] = {}
    switches, links = path.switches, path.links
    egress, last = switches[-1], len(switches) - 1
    for hop, dpid in enumerate(switches):
        action: Action
        shared: tuple[GroupEntry, ...]
        if hop == last:
            action, shared = output(egress_port), ()
        else:
            link = links[hop]
            action, shared = _transit(
                dpid, link.src.port, hop, link.dst.dpid, egress, backup_ports, host_facing
            )
        if hop and default_takes is not None and default_takes(dpid, action):
            continue  # default forwarding does it (never at ingress)
        if shared:
            groups[dpid] = shared
        ingress = hop == 0
        actions = (action,)
        idle = idle_timeout if ingress else 0
        removed = ingress and flow_removed
        flows[dpid] = tuple(
            [
                FlowEntry(
                    priority=priority,
                    match=match,
                    actions=actions,
                    cookie=cookie,
                    idle_timeout=idle,
                    send_flow_removed=removed,
                    ingress=ingress,
                )
                for match in matches
            ]
        )
    return FlowRules(
        needs=OwnerNeeds(flows=flows, groups=groups),
        egress_first=path.switches[::-1],
    )


@lru_cache(maxsize=1 << 14)
def _from_port(out: PortNo, ports: tuple[PortNo, ...]) -> tuple[PortNo, ...]:
    """``out``, then the other ``ports`` in their order from ``out`` on, wrapping
    round: the chain a spread set forwards ``out``'s buckets through
    (:func:`~controller.flowprog.spread.compile_set`, same ports sorted), so a
    flow's failover group is usually on its ingress switch already and the flow
    needs one flow-mod. ``out`` not among ``ports`` (a detour) comes first."""
    if out not in ports:
        return (out, *ports)
    i = ports.index(out)
    return (*ports[i:], *ports[:i])


def _transit(
    dpid: Dpid,
    out: PortNo,
    hop: int,
    nxt: Dpid,
    egress: Dpid,
    backup_ports: Mapping[Dpid, Sequence[PortNo]] | None,
    host_facing: Callable[[Dpid], bool] | None,
) -> tuple[Action, tuple[GroupEntry, ...]]:
    """The action of a hop before the egress switch out of ``out`` (towards ``nxt``),
    and the groups it needs: the ingress forwards through a failover group when it
    has a backup port, a spine's last hop (local repair) through a bounce group, which
    watches :data:`ALWAYS_LIVE` (so that goes in first)."""
    if hop == 0:
        if backup_ports:
            ports = backup_ports.get(dpid, ())
            if len(ports) > 1 or (ports and ports[0] != out):
                group = failover_chain(_from_port(out, tuple(ports)))
                return group_action(group.group_id), (group,)
    elif host_facing is not None and bounces(
        faces_hosts=host_facing(dpid), next_switch=nxt, destination=egress
    ):
        group = bounce_group(out)
        return group_action(group.group_id), (ALWAYS_LIVE, group)
    return output(out), ()
