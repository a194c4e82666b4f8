"""Explain, in words a person can read, which path a 5-tuple takes and why.

Read-only over the hub's state: it previews what placement would choose for
a flow not placed yet, and never places, moves or programs anything.
"""

from __future__ import annotations

from controller.engine.placement import FlowPlacer
from controller.engine.views import PathExplanation
from controller.errors import FailedPrecondition
from controller.fabric.model import FiveTuple, Host
from controller.fabric.topology import Topology
from controller.policy.book import PolicyBook
from controller.policy.model import Policy, Strategy
from controller.te.flowtable import TrackedFlow

__all__ = ["explain_path"]

_DEFAULT_HOW = {
    Strategy.SHORTEST: "a single shortest path",
    Strategy.WEIGHTED: "a weighted SELECT group at each hop",
}


def explain_path(
    topo: Topology,
    book: PolicyBook,
    placer: FlowPlacer,
    ft: FiveTuple,
    *,
    dscp: int,
    now: float,
) -> PathExplanation:
    src, dst = _endpoints(topo, ft)
    policy = book.governing(ft, dscp=dscp)
    if policy is None or policy.is_catch_all:
        return _default_forwarding(topo, placer, ft, policy, src, dst)
    flow = placer.te.flow_by_five_tuple(ft)
    if flow is not None:
        return _placed(topo, ft, policy, flow)
    choice = placer.te.preview(
        ft,
        ingress=src.attach.dpid,
        egress=dst.attach.dpid,
        policy=policy,
        view=placer.network_view(),
        now=now,
    )
    return PathExplanation(
        five_tuple=ft,
        policy=policy.name,
        strategy=choice.strategy.value,
        path=tuple(topo.label(d) for d in choice.path.switches),
        per_flow=True,
        flow_id=0,
        fell_back=choice.fell_back,
        reason=f"not placed yet; its first packet would be placed here: {choice.reason}",
    )


def _endpoints(topo: Topology, ft: FiveTuple) -> tuple[Host, Host]:
    hosts = []
    for ip in (ft.src_ip, ft.dst_ip):
        host = topo.host_by_ip(ip)
        if host is None:
            raise FailedPrecondition(
                f"host {ip} is unknown to the controller (it has sent no ARP or IP packet yet)"
            )
        hosts.append(host)
    return hosts[0], hosts[1]


def _default_forwarding(
    topo: Topology,
    placer: FlowPlacer,
    ft: FiveTuple,
    policy: Policy | None,
    src: Host,
    dst: Host,
) -> PathExplanation:
    strategy = policy.strategy if policy else Strategy.ECMP
    paths = placer.te.paths_for(placer.network_view()).paths(src.attach.dpid, dst.attach.dpid)
    hops = _merge_hops([[topo.label(d) for d in p.switches] for p in paths])
    how = _DEFAULT_HOW.get(strategy, "the switch's SELECT-group hash at each hop")
    return PathExplanation(
        five_tuple=ft,
        policy=policy.name if policy else "",
        strategy=strategy.value,
        path=hops,
        per_flow=False,
        flow_id=0,
        fell_back=False,
        reason=f"default forwarding: one of {len(paths)} equal-cost path(s), chosen by {how}",
    )


def _placed(topo: Topology, ft: FiveTuple, policy: Policy, flow: TrackedFlow) -> PathExplanation:
    moved = f"; moved {flow.moves} time(s), last for {flow.last_move_reason}" if flow.moves else ""
    fell = "; its pinned path is impossible, the fallback chose" if flow.fell_back else ""
    return PathExplanation(
        five_tuple=ft,
        policy=policy.name,
        strategy=policy.strategy.value,
        path=tuple(topo.label(d) for d in flow.path.switches),
        per_flow=True,
        flow_id=flow.flow_id,
        fell_back=flow.fell_back,
        reason=f"placed per flow by {policy.strategy.value}{moved}{fell}",
    )


def _merge_hops(paths: list[list[str]]) -> tuple[str, ...]:
    """Equal-length paths shown hop by hop, alternatives joined with '|'."""
    if not paths:
        return ()
    if len({len(p) for p in paths}) != 1:
        return tuple(paths[0])
    hops = []
    for i in range(len(paths[0])):
        names = sorted({p[i] for p in paths})
        hops.append("|".join(names))
    return tuple(hops)
