"""Build the immutable read models (views) from hub-owned state.

Called only in the hub thread; the result is published by replacing one
reference, so readers in other threads never see a half-updated picture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.engine.views import HostView, LinkView, PortView, SwitchView, TopologyView
from controller.fabric.model import LinkId
from controller.fabric.topology import Topology

__all__ = ["LinkLoad", "build_topology_view", "link_view"]


@dataclass(frozen=True)
class LinkLoad:
    rate_bps: float = 0.0
    capacity_bps: float = 0.0
    utilization: float = 0.0


def link_view(
    topo: Topology, lid: LinkId, load: LinkLoad, *, up: bool, congested: bool
) -> LinkView:
    return LinkView(
        link=lid,
        name=topo.link_name(lid),
        src_switch=topo.label(lid.src.dpid),
        dst_switch=topo.label(lid.dst.dpid),
        up=up,
        drained=lid in topo.drained,
        capacity_bps=load.capacity_bps,
        rate_bps=load.rate_bps,
        utilization=load.utilization,
        congested=congested,
    )


def build_topology_view(
    topo: Topology,
    *,
    loads: Mapping[LinkId, LinkLoad] | None = None,
    congested: frozenset[LinkId] = frozenset(),
    known_down: Mapping[LinkId, str] | None = None,
) -> TopologyView:
    """``known_down``: links seen before that are down now (kept so users see them as down)."""
    loads = loads or {}
    switches = []
    for dpid in sorted(topo.switches):
        sw = topo.switches[dpid]
        fabric = topo.fabric_ports(dpid)
        ports = tuple(
            PortView(port_no=p.port_no, name=p.name, up=p.up, fabric=p.port_no in fabric)
            for p in sorted(sw.ports.values(), key=lambda p: p.port_no)
        )
        switches.append(SwitchView(dpid=dpid, name=sw.label, connected=sw.connected, ports=ports))
    links = [
        link_view(topo, lid, loads.get(lid, LinkLoad()), up=True, congested=lid in congested)
        for lid in sorted(topo.links)
    ]
    for lid in sorted(known_down or {}):
        if lid not in topo.links:
            links.append(link_view(topo, lid, LinkLoad(), up=False, congested=False))
    hosts = tuple(
        HostView(
            mac=h.mac,
            ipv4=h.ipv4 or "",
            switch=topo.label(h.attach.dpid),
            dpid=h.attach.dpid,
            port=h.attach.port,
        )
        for h in sorted(topo.hosts.values(), key=lambda h: (h.attach, h.mac))
    )
    return TopologyView(switches=tuple(switches), links=tuple(links), hosts=hosts)
