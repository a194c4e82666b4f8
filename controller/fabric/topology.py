"""Topology: the mutable, hub-owned record of switches, links and hosts.

Discovery rules live here, as pure logic fed by the shim:
- a port becomes an inter-switch port only when LLDP proves it;
- LLDP arriving on a port with a learned host never creates a link
  (a host must not be able to fake a fabric link by replaying LLDP);
- hosts are never learned on inter-switch ports;
- a port going down, a switch leaving or LLDP silence removes links at once.
Every mutation returns the events it caused. Nothing here reads a clock.
Lookups the hub makes per packet or per flow (is this a fabric port, which
host has this IP, which links touch this port) go through indexes kept up to
date by every mutation, never through a scan of the whole fabric.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from controller.fabric.hosttable import HostTable, unlist
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
    link_order,
)

__all__ = ["HOST_SEEN_RESOLUTION_S", "Topology", "link_name"]

# A host's ``last_seen`` is refreshed at most this often: every new flow's first
# packet passes through host learning, and most come from hosts seen just before.
# A move or a new address is news at once; only the time stamp waits, and nothing
# ages hosts by it (it tells a host seen in this run from one remembered from the
# store). At 1 s, 1,024 hosts opening 1,000 flows/s rewrote a host on about half
# the packet-ins (~5 us each at 64 x 512).
HOST_SEEN_RESOLUTION_S = 30.0


_NO_PORTS: frozenset[PortNo] = frozenset()


class Topology:
    """What the controller knows about the fabric right now."""

    def __init__(self) -> None:
        self.switches: dict[Dpid, Switch] = {}
        self.links: dict[LinkId, Link] = {}  # change only through this class
        self.hosts: dict[str, Host] = HostTable()  # by MAC
        self._graph: nx.DiGraph | None = None
        # Bumped by every change of switches or links (not ports, hosts or drains):
        # readers keep what they derived from the links until it moves.
        self.version = 0
        self._capacity_for: dict[LinkId, float] = {}
        self.drained: set[LinkId] = set()
        self._port_links: dict[PortRef, set[LinkId]] = {}  # links leaving or entering a port
        self._switch_links: dict[Dpid, set[LinkId]] = {}  # links leaving or entering a switch
        self._fabric_at: dict[Dpid, set[PortNo]] = {}  # a switch's ports in _port_links
        self._by_name: dict[str, Dpid] = {}
        # edge_ports per switch, dropped when the switch's ports or links change: a
        # flow's rules ask for a spine's, which walks hundreds of links otherwise.
        self._edge_ports: dict[Dpid, tuple[PortNo, ...]] = {}
        # Ports that carried a link since they last came up and lost it while staying
        # up (a link timed out, its peer went down or disconnected): edge ports, but
        # facing a switch, so they do not make a spine look like a leaf.
        self._ex_fabric: set[PortRef] = set()
        # Ports whose link to a switch facing no hosts (an uplink) was lost, kept while
        # the port exists: default forwarding keeps their share of the switch's spread
        # in place instead of renaming every route (see spread.degraded_set).
        self._lost_uplinks: dict[Dpid, dict[PortNo, Dpid]] = {}  # port -> its spine
        self._host_facing: dict[Dpid, bool] = {}
        # links_at per switch, sorted once per change of its links: every port-stats
        # reply reads it (a spine of 64 x 512 has 1,024 links to sort otherwise).
        self._links_at: dict[Dpid, tuple[LinkId, ...]] = {}
        self._sorted: tuple[int, list[LinkId]] = (-1, [])  # (version, links in order)

    # ------------------------------------------------------------------ switches
    def switch_up(
        self, dpid: Dpid, *, name: str, ports: list[Port], now: float
    ) -> list[FabricEvent]:
        real = {p.port_no: p for p in ports if p.port_no < OFPP_MAX}
        self.switches[dpid] = Switch(dpid=dpid, name=name, ports=real, connected=True)
        self._forget_ports(dpid)
        self._lost_uplinks.pop(dpid, None)
        self._by_name = {}
        for known, sw in self.switches.items():  # the first switch of a name wins, as before
            self._by_name.setdefault(sw.name, known)
        self._graph = None
        self.version += 1
        return [SwitchUp(time=now, dpid=dpid, name=name)]

    def switch_down(self, dpid: Dpid, *, now: float) -> list[FabricEvent]:
        sw = self.switches.get(dpid)
        if sw is None or not sw.connected:
            return []
        doomed = self._switch_links.get(dpid, set())
        roles = self._roles(doomed)  # as they were: a switch that went reads as a spine
        self.switches[dpid] = replace(sw, connected=False)
        self._forget_ports(dpid)
        events: list[FabricEvent] = [SwitchDown(time=now, dpid=dpid, name=sw.name)]
        events += self._drop_links(doomed, "switch-down", now, roles=roles)
        self._lost_uplinks.pop(dpid, None)  # its own links just dropped included
        self._graph = None
        self.version += 1
        return events

    def port_update(self, dpid: Dpid, port: Port, *, now: float) -> list[FabricEvent]:
        sw = self.switches.get(dpid)
        if sw is None or port.port_no >= OFPP_MAX:
            return []
        old = sw.ports.get(port.port_no)
        self.switches[dpid] = sw.with_port(port)
        self._forget_ports(dpid)
        events: list[FabricEvent] = []
        if old is None or old.up != port.up:
            events.append(PortChanged(time=now, port=PortRef(dpid, port.port_no), up=port.up))
        if not port.up:
            ref = PortRef(dpid, port.port_no)
            events += self._drop_links(self._port_links.get(ref, ()), "port-down", now)
            self._ex_fabric.discard(ref)  # whatever is plugged in when it is up again
        return events

    def port_deleted(self, dpid: Dpid, port_no: PortNo, *, now: float) -> list[FabricEvent]:
        sw = self.switches.get(dpid)
        if sw is None or port_no not in sw.ports:
            return []
        ports = dict(sw.ports)
        old = ports.pop(port_no)
        self.switches[dpid] = replace(sw, ports=ports)
        self._forget_ports(dpid)
        self._lost_uplinks.get(dpid, {}).pop(port_no, None)
        return self.port_update(dpid, replace(old, up=False), now=now)

    # --------------------------------------------------------------------- links
    def lldp_seen(self, *, tx: PortRef, rx: PortRef, now: float) -> list[FabricEvent]:
        """LLDP sent out of ``tx`` arrived on ``rx``: the directed link tx -> rx exists."""
        by_port = self._host_table.by_port
        # Runs for every link every probe round; a host on a probed port is rare.
        if by_port.get(tx) or by_port.get(rx):
            ignored = self._hosts_at_ends(tx, rx, now)
            if ignored:
                return ignored
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
            self.links[lid] = existing.seen(now)
            return []
        # A cable re-plugged elsewhere: forget links that used either port.
        rewired = [
            other
            for other in (*self._port_links.get(tx, ()), *self._port_links.get(rx, ()))
            if other != lid and (other.src == tx or other.dst == rx)
        ]
        events = self._drop_links(rewired, "rewired", now)
        self._add_link(
            Link(
                link_id=lid,
                last_seen=now,
                capacity_bps=self._capacity_for.get(lid, 0.0),
                drained=lid in self.drained,
            )
        )
        events.append(LinkUp(time=now, link=lid))
        return events

    def _hosts_at_ends(self, tx: PortRef, rx: PortRef, now: float) -> list[FabricEvent]:
        """A confirmed host on either end refutes the probe; hosts remembered from
        an earlier run but not seen since are forgotten instead (they do not block
        discovery: the cable may have been re-plugged while we were away)."""
        for end in (tx, rx):
            if any(h.confirmed for h in self.hosts_on(end)):
                return [LldpIgnored(time=now, port=rx, reason=f"host learned on {end}")]
        for end in (tx, rx):
            for host in self.hosts_on(end):
                del self.hosts[host.mac]
        return []

    def link_alive(self, rx: PortRef, *, now: float) -> None:
        """Traffic arrived on ``rx``: the link into it is alive even if LLDP probes
        are lost in a saturated queue (so a busy link never times out falsely)."""
        links = self.links
        for lid in self._port_links.get(rx, ()):
            if lid.dst == rx:
                link = links[lid]
                if now > link.last_seen:
                    links[lid] = link.seen(now)

    def expire_links(self, *, now: float, timeout: float) -> list[FabricEvent]:
        stale = [lid for lid, link in self.links.items() if now - link.last_seen > timeout]
        return self._drop_links(stale, "lldp-timeout", now)

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

    def lost_uplinks(self, dpid: Dpid) -> tuple[tuple[PortNo, Dpid], ...]:
        """``dpid``'s ports whose link to a switch facing no hosts was lost (the port
        still exists and has no link since), with that switch; sorted."""
        return tuple(sorted(self._lost_uplinks.get(dpid, {}).items()))

    def all_lost_uplinks(self) -> dict[Dpid, tuple[tuple[PortNo, Dpid], ...]]:
        """:meth:`lost_uplinks` of every switch that has some."""
        return {d: tuple(sorted(ups.items())) for d, ups in self._lost_uplinks.items() if ups}

    def uplinks_lacking(self, dpid: Dpid) -> frozenset[PortNo]:
        """``dpid``'s uplinks it uses towards no destination: lost (the port without
        its link) or drained. A leaf's spread sets' failover chains go round them too
        (a chain passes a down port by), and so does a new flow's: its chain is then
        the set's own group, on the switch already."""
        lost = self._lost_uplinks.get(dpid)
        if not lost and not self.drained:
            return _NO_PORTS
        ports = set(lost or ())
        for lid in self.drained:
            if lid.src.dpid == dpid and not self.host_facing(lid.dst.dpid):
                ports.add(lid.src.port)
        return frozenset(ports)

    def was_fabric(self, ref: PortRef) -> bool:
        """Whether ``ref`` carried a link since it came up (also a lost uplink
        restored from before a restart): not a port a host is behind, though it is
        up without a link (a spine lost with its links up, a link timed out). A
        port that goes down and up again is a new port."""
        return ref in self._ex_fabric

    def lost_uplink_count(self) -> int:
        """How many uplinks :meth:`all_lost_uplinks` would list (nothing built)."""
        return sum(map(len, self._lost_uplinks.values()))

    def restore_lost_uplinks(self, dpid: Dpid, lost: Iterable[tuple[PortNo, Dpid]]) -> None:
        """Uplinks of ``dpid`` another controller saw lost: kept for ports it has
        that carry no link (a takeover keeps the leaf's routes as they were). An
        up one carried a link since it came up, as far as anyone knows: no host's
        port (:meth:`was_fabric`) until it goes down."""
        sw = self.switches.get(dpid)
        for port, spine in lost:
            ref = PortRef(dpid, port)
            if sw is not None and port in sw.ports and ref not in self._port_links:
                self._lost_uplinks.setdefault(dpid, {})[port] = spine
                if sw.ports[port].up:
                    self._ex_fabric.add(ref)
                    self._forget_ports(dpid)

    def _roles(self, links: Iterable[LinkId]) -> dict[Dpid, bool]:
        """Whether each far end of ``links`` faces hosts, now."""
        return {d: self.host_facing(d) for d in {lid.dst.dpid for lid in links}}

    def _drop_links(
        self,
        doomed: Iterable[LinkId],
        reason: str,
        now: float,
        *,
        roles: Mapping[Dpid, bool] | None = None,
    ) -> list[FabricEvent]:
        gone = sorted(set(doomed))
        facing = self._roles(gone) if roles is None else roles
        for lid in gone:
            if not facing.get(lid.dst.dpid, True):
                self._lost_uplinks.setdefault(lid.src.dpid, {})[lid.src.port] = lid.dst.dpid
        for lid in gone:
            del self.links[lid]
            for ref in (lid.src, lid.dst):
                self._ex_fabric.add(ref)
                unlist(self._port_links, ref, lid)
                unlist(self._switch_links, ref.dpid, lid)
                if ref not in self._port_links:
                    unlist(self._fabric_at, ref.dpid, ref.port)
                self._forget_ports(ref.dpid)
                self._links_at.pop(ref.dpid, None)
        if gone:
            self._graph = None
            self.version += 1
        return [LinkDown(time=now, link=lid, reason=reason) for lid in gone]

    def _add_link(self, link: Link) -> None:
        lid = link.link_id
        self.links[lid] = link
        for ref in (lid.src, lid.dst):
            self._lost_uplinks.get(ref.dpid, {}).pop(ref.port, None)  # cabled again
            self._ex_fabric.discard(ref)
            self._port_links.setdefault(ref, set()).add(lid)
            self._switch_links.setdefault(ref.dpid, set()).add(lid)
            self._fabric_at.setdefault(ref.dpid, set()).add(ref.port)
            self._forget_ports(ref.dpid)
            self._links_at.pop(ref.dpid, None)
        self._graph = None
        self.version += 1

    # --------------------------------------------------------------------- hosts
    def host_seen(
        self, *, mac: str, ipv4: str | None, at: PortRef, now: float
    ) -> list[FabricEvent]:
        """A packet from ``mac`` arrived on ``at``. Learn it unless ``at`` is a fabric port."""
        mac = mac.lower()
        if self.seen_just_now(mac=mac, ipv4=ipv4, at=at, now=now):
            return []  # seen a moment ago, where it was: nothing to write
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

    def seen_just_now(self, *, mac: str, ipv4: str | None, at: PortRef, now: float) -> bool:
        """``mac`` (lower case) was seen on ``at`` with this address less than
        :data:`HOST_SEEN_RESOLUTION_S` ago: a packet from it now changes nothing
        (:meth:`host_seen` returns no event, wherever ``at`` is). The check every
        packet-in makes first, so it is the cheap one."""
        old = self.hosts.get(mac)
        return (
            old is not None
            and old.confirmed
            and 0 <= now - old.last_seen < HOST_SEEN_RESOLUTION_S
            and old.attach == at
            and (ipv4 is None or ipv4 == "0.0.0.0" or ipv4 == old.ipv4)
        )

    def host_by_ip(self, ipv4: str) -> Host | None:
        """The host with this address (the first learned, if several claim it)."""
        macs = self._host_table.by_ip.get(ipv4)
        if not macs:
            return None
        if len(macs) == 1:
            return self.hosts[next(iter(macs))]
        return next(h for h in self.hosts.values() if h.mac in macs)

    def hosts_on(self, ref: PortRef) -> list[Host]:
        macs = self._host_table.by_port.get(ref)
        if not macs:
            return []
        return (
            [h for h in self.hosts.values() if h.mac in macs]
            if len(macs) > 1
            else [self.hosts[next(iter(macs))]]
        )

    @property
    def _host_table(self) -> HostTable:
        hosts = self.hosts
        if not isinstance(hosts, HostTable):  # replaced by a plain dict: index it again
            table = HostTable()
            table.update(hosts)
            self.hosts = hosts = table
        return hosts

    # ------------------------------------------------------------------- queries
    def is_fabric_port(self, ref: PortRef) -> bool:
        return ref in self._port_links

    def links_at(self, dpid: Dpid) -> tuple[LinkId, ...]:
        """Up links leaving or entering ``dpid``, sorted (its port stats touch only these)."""
        cached = self._links_at.get(dpid)
        if cached is None:
            cached = self._links_at[dpid] = tuple(sorted(self._switch_links.get(dpid, ())))
        return cached

    def sorted_links(self) -> list[LinkId]:
        """Every up link in :func:`link_order`, sorted once per :attr:`version` (default
        forwarding reads them all on every change: 65,536 at 64 x 512). Not to modify."""
        version, links = self._sorted
        if version != self.version:
            up = self.links
            kept = [lid for lid in links if lid in up]  # links only lost: no new sort
            links = kept if len(kept) == len(up) else sorted(up, key=link_order)
            self._sorted = (self.version, links)
        return links

    def fabric_ports(self, dpid: Dpid) -> set[PortNo]:
        """``dpid``'s ports at an end of an up link (kept up to date as links come and
        go: a lost spine changes every leaf's, 128 links each at 64 x 512)."""
        return set(self._fabric_at.get(dpid, ()))

    def edge_ports(self, dpid: Dpid) -> list[PortNo]:
        """Up ports of ``dpid`` that are not proven inter-switch ports."""
        cached = self._edge_ports.get(dpid)
        if cached is None:
            sw = self.switches.get(dpid)
            if sw is None or not sw.connected:
                cached = ()
            else:
                fabric = self.fabric_ports(dpid)
                cached = tuple(
                    sorted(p.port_no for p in sw.ports.values() if p.up and p.port_no not in fabric)
                )
            self._edge_ports[dpid] = cached
        return list(cached)

    def host_facing(self, dpid: Dpid) -> bool:
        """Whether ``dpid`` has an edge port that may face a host: one that has not
        carried a link since it came up. A spine whose link timed out (or whose
        peer's port went down first) keeps that port up without a link; it is still
        a spine to forwarding (local repair, detours), not a leaf."""
        facing = self._host_facing.get(dpid)
        if facing is None:
            facing = self._host_facing[dpid] = any(
                PortRef(dpid, p) not in self._ex_fabric for p in self.edge_ports(dpid)
            )
        return facing

    def _forget_ports(self, dpid: Dpid) -> None:
        self._edge_ports.pop(dpid, None)
        self._host_facing.pop(dpid, None)

    def connected(self) -> list[Dpid]:
        return sorted(d for d, sw in self.switches.items() if sw.connected)

    def labels(self) -> dict[Dpid, str]:
        """Every switch's label (a new dict: a copy readers in other threads may keep)."""
        return {dpid: sw.label for dpid, sw in self.switches.items()}

    def label(self, dpid: Dpid) -> str:
        sw = self.switches.get(dpid)
        return sw.label if sw else f"{dpid:016x}"

    def link_name(self, lid: LinkId) -> str:
        return link_name(lid, self.label(lid.src.dpid), self.label(lid.dst.dpid))

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
        return self._by_name.get(name)

    def graph(self) -> nx.DiGraph:
        """Graph of connected switches and up links (cached until a change)."""
        if self._graph is None:
            self._graph = graph_of(self.switches, self.links)
        return self._graph


def link_name(lid: LinkId, src_label: str, dst_label: str) -> str:
    """``leaf1/3->spine1/1``: the ends' switch labels and port numbers (the one
    spelling of a link for users: events, drains, metrics and views)."""
    return f"{src_label}/{lid.src.port}->{dst_label}/{lid.dst.port}"
