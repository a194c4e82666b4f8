"""Build the immutable read models (views) from hub-owned state.

Called only in the hub thread; the result is published by replacing one
reference, so readers in other threads never see a half-updated picture. The
links' and the flows' views are :class:`~controller.engine.lazyviews.Derived`:
built by the reader from values captured here, which the hub never changes
afterwards (fresh dicts and frozen values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from controller.engine.lazyviews import Derived
from controller.engine.views import (
    FlowView,
    HostView,
    LinkView,
    PortView,
    SwitchView,
    TopologyView,
)
from controller.fabric.model import Dpid, LinkId, Switch, dpid_str, link_order
from controller.fabric.topology import Topology, link_name
from controller.policy.model import Policy
from controller.te.flowtable import TrackedFlow

__all__ = ["LinkLoad", "TopologyViews", "flow_views", "label"]


@dataclass(frozen=True)
class LinkLoad:
    rate_bps: float = 0.0
    capacity_bps: float = 0.0
    utilization: float = 0.0


class TopologyViews:
    """Builds the published :class:`TopologyView`, keeping what did not change.

    Hub-owned. The sorted links and each switch's view are kept until the
    topology's links (its ``version``) or the switch itself change; the link
    views are :class:`Derived`: the hub captures the links' loads, the switch
    names and the congested and drained sets (fresh values every publish), and
    readers build the views they read. At 64 x 512 (65,536 link directions) a
    publish went from ~1 s of view building to a few dict copies.
    """

    def __init__(self) -> None:
        self._key: tuple[Topology | None, int, set[LinkId] | None] = (None, -1, None)
        self._links: tuple[LinkId, ...] = ()  # up links, sorted, then links known down
        self._switches: dict[Dpid, tuple[Switch, SwitchView]] = {}

    def build(
        self,
        topo: Topology,
        *,
        loads: dict[LinkId, LinkLoad],
        congested: frozenset[LinkId],
        seen: set[LinkId],
    ) -> TopologyView:
        """``loads``: every up link's (a fresh dict, kept by the view); ``seen``: every
        link ever up (those not up now are shown as down)."""
        key = self._key
        if key[0] is not topo or key[1] != topo.version or key[2] is not seen:
            self._key = (topo, topo.version, seen)
            up = sorted(topo.links, key=link_order)
            seen.update(up)
            self._links = (*up, *sorted(seen.difference(topo.links), key=link_order))
            self._switches = {}  # their ports' fabric flags follow the links
        labels = topo.labels()
        make = partial(
            _link_view,
            labels,
            loads,
            congested,
            frozenset(topo.drained),
        )
        hosts = tuple(
            HostView(
                mac=h.mac,
                ipv4=h.ipv4 or "",
                switch=topo.label(h.attach.dpid),
                dpid=h.attach.dpid,
                port=h.attach.port,
            )
            for h in sorted(
                topo.hosts.values(), key=lambda h: (h.attach.dpid, h.attach.port, h.mac)
            )
        )
        return TopologyView(
            switches=tuple(self._switch_view(topo, sw) for _, sw in sorted(topo.switches.items())),
            links=Derived(self._links, make),
            hosts=hosts,
        )

    def _switch_view(self, topo: Topology, sw: Switch) -> SwitchView:
        have = self._switches.get(sw.dpid)
        if have is not None and have[0] is sw:
            return have[1]
        fabric = topo.fabric_ports(sw.dpid)
        ports = tuple(
            PortView(port_no=p.port_no, name=p.name, up=p.up, fabric=p.port_no in fabric)
            for p in sorted(sw.ports.values(), key=lambda p: p.port_no)
        )
        view = SwitchView(dpid=sw.dpid, name=sw.label, connected=sw.connected, ports=ports)
        self._switches[sw.dpid] = (sw, view)
        return view


def _link_view(
    labels: Mapping[Dpid, str],
    loads: Mapping[LinkId, LinkLoad],
    congested: frozenset[LinkId],
    drained: frozenset[LinkId],
    lid: LinkId,
) -> LinkView:
    """One link's view from the values captured at publish time (runs in readers)."""
    load = loads.get(lid)
    src, dst = label(labels, lid.src.dpid), label(labels, lid.dst.dpid)
    return LinkView(
        link=lid,
        name=link_name(lid, src, dst),
        src_switch=src,
        dst_switch=dst,
        up=load is not None,
        drained=lid in drained,
        capacity_bps=load.capacity_bps if load is not None else 0.0,
        rate_bps=load.rate_bps if load is not None else 0.0,
        utilization=load.utilization if load is not None else 0.0,
        congested=load is not None and lid in congested,
    )


def label(labels: Mapping[Dpid, str], dpid: Dpid) -> str:
    """:meth:`Topology.label` over a copy of the switches' labels."""
    return labels.get(dpid) or dpid_str(dpid)


def flow_views(
    flows: Sequence[TrackedFlow],
    *,
    labels: Mapping[Dpid, str],
    policies: Mapping[int, Policy],
    wall_offset: float,
) -> Derived[TrackedFlow, FlowView]:
    """The placed flows' views, built as read. ``labels`` and ``policies`` (flow id
    -> its policy) are copies the hub no longer changes; ``wall_offset`` turns the
    engine's monotonic times into wall times."""
    return Derived(flows, partial(_flow_view, labels, policies, wall_offset))


def _flow_view(
    labels: Mapping[Dpid, str], policies: Mapping[int, Policy], offset: float, flow: TrackedFlow
) -> FlowView:
    policy = policies.get(flow.flow_id)
    strategy = policy.strategy if policy else None
    if policy is not None and flow.fell_back:
        strategy = policy.fallback
    return FlowView(
        flow_id=flow.flow_id,
        five_tuple=flow.five_tuple,
        dscp=flow.dscp,
        policy=flow.policy,
        strategy=strategy.value if strategy else "",
        path=tuple(label(labels, d) for d in flow.path.switches),
        path_links=tuple(
            link_name(lid, label(labels, lid.src.dpid), label(labels, lid.dst.dpid))
            for lid in flow.path.links
        ),
        rate_bps=flow.rate_bps,
        placed_at=flow.placed_at + offset if flow.placed_at else 0.0,
        moves=flow.moves,
        last_move_reason=flow.last_move_reason,
        last_move_at=flow.last_move_at + offset if flow.last_move_at else 0.0,
        fell_back=flow.fell_back,
    )
