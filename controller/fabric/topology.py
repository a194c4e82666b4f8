"""Topology: the mutable, hub-owned record of switches, links and hosts.

Discovery rules live here, as pure logic fed by the shim:
- a port becomes an inter-switch port only when LLDP proves it;
- LLDP arriving on a port with a learned host never creates a link
  (a host must not be able to fake a fabric link by replaying LLDP);
- hosts are never learned on inter-switch ports;
- a port going down, a switch leaving or LLDP silence removes links at once.
Every mutation returns the events it caused. Nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import networkx as nx

from controller.fabric.events import (
    FabricEvent,
    HostLearned,
    HostMoved,
    LinkDown,
    LinkUp,
    LldpIgnored,
    PortChanged,
    SwitchDown,
    SwitchUp,
)
from controller.fabric.model import (
    OFPP_MAX,
    Dpid,
    Host,
    Link,
    LinkId,
    Port,
    PortNo,
    PortRef,
    Switch,
    graph_of,
)

__all__ = ["Topology"]


class Topology:
    """What the controller knows about the fabric right now."""

    def __init__(self) -> None:
        self.switches: dict[Dpid, Switch] = {}
        self.links: dict[LinkId, Link] = {}
        self.hosts: dict[str, Host] = {}  # by MAC
        self._graph: nx.DiGraph | None = None
        self._capacity_for: dict[LinkId, float] = {}
        self.drained: set[LinkId] = set()

    # ------------------------------------------------------------------ switches
    def switch_up(
        self, dpid: Dpid, *, name: str, ports: list[Port], now: float
    ) -> list[FabricEvent]:
        real = {p.port_no: p for p in ports if p.port_no < OFPP_MAX}
        self.switches[dpid] = Switch(dpid=dpid, name=name, ports=real, connected=True)
        self._graph = None
        return [SwitchUp(time=now, dpid=dpid, name=name)]

    def switch_down(self, dpid: Dpid, *, now: float) -> list[FabricEvent]:
        sw = self.switches.get(dpid)
        if sw is None or not sw.connected:
            return []
        self.switches[dpid] = replace(sw, connected=False)
        events: list[FabricEvent] = [SwitchDown(time=now, dpid=dpid, name=sw.name)]
        events += self._drop_links(
            lambda lid: dpid in (lid.src.dpid, lid.dst.dpid), "switch-down", now
        )
        self._graph = None
        return events

    def port_update(self, dpid: Dpid, port: Port, *, now: float) -> list[FabricEvent]:
        sw = self.switches.get(dpid)
        if sw is None or port.port_no >= OFPP_MAX:
            return []
        old = sw.ports.get(port.port_no)
        self.switches[dpid] = sw.with_port(port)
        events: list[FabricEvent] = []
        if old is None or old.up != port.up:
            events.append(PortChanged(time=now, port=PortRef(dpid, port.port_no), up=port.up))
        if not port.up:
            ref = PortRef(dpid, port.port_no)
            events += self._drop_links(lambda lid: ref in (lid.src, lid.dst), "port-down", now)
        return events

    def port_deleted(self, dpid: Dpid, port_no: PortNo, *, now: float) -> list[FabricEvent]:
        sw = self.switches.get(dpid)
        if sw is None or port_no not in sw.ports:
            return []
        ports = dict(sw.ports)
        old = ports.pop(port_no)
        self.switches[dpid] = replace(sw, ports=ports)
        return self.port_update(dpid, replace(old, up=False), now=now)

    # --------------------------------------------------------------------- links
    def lldp_seen(self, *, tx: PortRef, rx: PortRef, now: float) -> list[FabricEvent]:
        """LLDP sent out of ``tx`` arrived on ``rx``: the directed link tx -> rx exists."""
        for end in (tx, rx):
            if any(h.confirmed for h in self.hosts_on(end)):
                return [LldpIgnored(time=now, port=rx, reason=f"host learned on {end}")]
        # Hosts remembered from an earlier run but not seen since do not block
        # discovery: the cable may have been re-plugged while we were away.
        for end in (tx, rx):
            for host in self.hosts_on(end):
                del self.hosts[host.mac]
        if tx.dpid == rx.dpid and tx.port == rx.port:
            return [LldpIgnored(time=now, port=rx, reason="looped back to its own port")]
        for end in (tx, rx):
            sw = self.switches.get(end.dpid)
            if sw is None or not sw.connected:
                return [LldpIgnored(time=now, port=rx, reason=f"switch of {end} not connected")]
            port = sw.ports.get(end.port)
            if port is not None and not port.up:
                return [LldpIgnored(time=now, port=rx, reason=f"port {end} is down")]
        lid = LinkId(tx, rx)
        existing = self.links.get(lid)
        if existing is not None:
            self.links[lid] = replace(existing, last_seen=now)
            return []
        # A cable re-plugged elsewhere: forget links that used either port.
        events = self._drop_links(
            lambda other: other != lid and (other.src == tx or other.dst == rx), "rewired", now
        )
        self.links[lid] = Link(
            link_id=lid,
            last_seen=now,
            capacity_bps=self._capacity_for.get(lid, 0.0),
            drained=lid in self.drained,
        )
        self._graph = None
        events.append(LinkUp(time=now, link=lid))
        return events

    def link_alive(self, rx: PortRef, *, now: float) -> None:
        """Traffic arrived on ``rx``: the link into it is alive even if LLDP probes
        are lost in a saturated queue (so a busy link never times out falsely)."""
        for lid, link in self.links.items():
            if lid.dst == rx:
                self.links[lid] = replace(link, last_seen=max(link.last_seen, now))

    def expire_links(self, *, now: float, timeout: float) -> list[FabricEvent]:
        return self._drop_links(
            lambda lid: now - self.links[lid].last_seen > timeout, "lldp-timeout", now
        )

    def set_capacity(self, lid: LinkId, capacity_bps: float) -> None:
        self._capacity_for[lid] = capacity_bps
        if lid in self.links:
            self.links[lid] = replace(self.links[lid], capacity_bps=capacity_bps)

    def set_drained(self, lid: LinkId, drained: bool) -> None:
        if drained:
            self.drained.add(lid)
        else:
            self.drained.discard(lid)
        if lid in self.links:
            self.links[lid] = replace(self.links[lid], drained=drained)

    def _drop_links(
        self, doomed: Callable[[LinkId], bool], reason: str, now: float
    ) -> list[FabricEvent]:
        gone = sorted(lid for lid in self.links if doomed(lid))
        for lid in gone:
            del self.links[lid]
        if gone:
            self._graph = None
        return [LinkDown(time=now, link=lid, reason=reason) for lid in gone]

    # --------------------------------------------------------------------- hosts
    def host_seen(
        self, *, mac: str, ipv4: str | None, at: PortRef, now: float
    ) -> list[FabricEvent]:
        """A packet from ``mac`` arrived on ``at``. Learn it unless ``at`` is a fabric port."""
        mac = mac.lower()
        if self.is_fabric_port(at) or at.dpid not in self.switches:
            return []
        old = self.hosts.get(mac)
        ip = ipv4 if ipv4 not in (None, "0.0.0.0") else (old.ipv4 if old else None)
        self.hosts[mac] = Host(mac=mac, ipv4=ip, attach=at, last_seen=now)
        if old is None:
            return [HostLearned(time=now, mac=mac, ipv4=ip, attach=at)]
        if old.attach != at:
            return [HostMoved(time=now, mac=mac, ipv4=ip, old=old.attach, attach=at)]
        if old.ipv4 != ip:
            return [HostLearned(time=now, mac=mac, ipv4=ip, attach=at)]
        return []

    def host_by_ip(self, ipv4: str) -> Host | None:
        for host in self.hosts.values():
            if host.ipv4 == ipv4:
                return host
        return None

    def hosts_on(self, ref: PortRef) -> list[Host]:
        return [h for h in self.hosts.values() if h.attach == ref]

    # ------------------------------------------------------------------- queries
    def is_fabric_port(self, ref: PortRef) -> bool:
        return any(ref in (lid.src, lid.dst) for lid in self.links)

    def fabric_ports(self, dpid: Dpid) -> set[PortNo]:
        ports = {lid.src.port for lid in self.links if lid.src.dpid == dpid}
        ports |= {lid.dst.port for lid in self.links if lid.dst.dpid == dpid}
        return ports

    def edge_ports(self, dpid: Dpid) -> list[PortNo]:
        """Up ports of ``dpid`` that are not proven inter-switch ports."""
        sw = self.switches.get(dpid)
        if sw is None or not sw.connected:
            return []
        fabric = self.fabric_ports(dpid)
        return sorted(p.port_no for p in sw.ports.values() if p.up and p.port_no not in fabric)

    def connected(self) -> list[Dpid]:
        return sorted(d for d, sw in self.switches.items() if sw.connected)

    def label(self, dpid: Dpid) -> str:
        sw = self.switches.get(dpid)
        return sw.label if sw else f"{dpid:016x}"

    def link_name(self, lid: LinkId) -> str:
        """``leaf1/3->spine1/1``: switch labels and port numbers of both ends."""
        src, dst = lid.src, lid.dst
        return f"{self.label(src.dpid)}/{src.port}->{self.label(dst.dpid)}/{dst.port}"

    def resolve(self, ref: str) -> Dpid | None:
        """A switch by name or by 16-hex-digit dpid (with or without ``0x``)."""
        found = self.dpid_by_name(ref)
        if found is not None:
            return found
        text = ref.lower().removeprefix("0x")
        if text and len(text) <= 16 and all(c in "0123456789abcdef" for c in text):
            dpid = int(text, 16)
            return dpid if dpid in self.switches else None
        return None

    def dpid_by_name(self, name: str) -> Dpid | None:
        for dpid, sw in self.switches.items():
            if sw.name == name:
                return dpid
        return None

    def graph(self) -> nx.DiGraph:
        """Graph of connected switches and up links (cached until a change)."""
        if self._graph is None:
            self._graph = graph_of(self.switches, self.links)
        return self._graph
