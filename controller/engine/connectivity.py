"""Connectivity: discovery, host learning, ARP and default forwarding, driven by events.

The engine calls one method per thing that happened on the network and
hands back what comes out (:class:`EngineOutput`). All state here belongs to
the hub thread. Decisions only: no OpenFlow objects, no clocks, no sockets.

Edge ports: a port is trusted as a host port only after it has been up for
``edge_grace_s`` without LLDP proving it is an inter-switch port. Host
learning and ARP relaying use trusted edge ports only, so a fabric port whose
LLDP has not arrived yet can never be mistaken for a host port.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

from controller.engine.discovery import ConnectivityConfig, LldpPacing, LldpProbe
from controller.engine.fabricnotices import fabric_notice
from controller.engine.outputs import EngineOutput, PacketOut
from controller.fabric.events import (
    FabricEvent,
    LinkDown,
    LinkUp,
    LldpIgnored,
    PortChanged,
)
from controller.fabric.frames import build_arp_reply
from controller.fabric.model import Dpid, Host, Link, LinkId, Port, PortNo, PortRef
from controller.fabric.topology import Topology
from controller.flowprog.entries import Action
from controller.flowprog.forwarding import (
    ClassTrap,
    ForwardingCompiler,
    ForwardingInputs,
    compile_traps,
    host_route_key,
)
from controller.flowprog.fwdroutes import SetKey
from controller.flowprog.plan import Phase, Program
from controller.flowprog.programmer import Programmer
from controller.flowprog.tables import OwnerNeeds, SwitchTable
from controller.policy.model import Policy, Strategy

__all__ = ["ConnectivityConfig", "Connectivity", "FabricListener", "LldpProbe"]

ARP_REQUEST = 1
ARP_REPLY = 2
Takes = Callable[[Dpid, Action], bool]  # does default forwarding do this there?


# Layers above (per-flow traffic engineering) hear about fabric changes.
FabricListener = Callable[[list[FabricEvent], float], EngineOutput]


class Connectivity:
    def __init__(self, config: ConnectivityConfig | None = None) -> None:
        self.config = config or ConnectivityConfig()
        self.topo = Topology()
        self.prog = Programmer(warmup_s=self.config.warmup_s)
        self.traps: tuple[ClassTrap, ...] = ()
        # Per switch: the (edge ports, traps) its trap entries were compiled for.
        self._trap_inputs: dict[Dpid, tuple[tuple[PortNo, ...], tuple[ClassTrap, ...]]] = {}
        self.catch_all: Policy | None = None
        self.listeners: list[FabricListener] = []
        self.hosts_changed = False  # set when the host table changed (for persistence)
        self._port_since: dict[PortRef, float] = {}
        self._next_lldp = 0.0
        c = self.config
        self.lldp = LldpPacing(
            interval=c.lldp_interval_s, budget=c.lldp_budget, max_interval=c.lldp_interval_max_s
        )
        self.counters: dict[str, int] = {}
        self._forwarding = ForwardingCompiler()  # redoes only what a change touches
        self._set_keys: dict[Dpid, frozenset[SetKey]] = {}  # each switch's spread sets' owners
        self._holds: set[str] = set()  # who holds default forwarding back (see hold_forwarding)
        self._forwarding_due: list[str] = []  # reasons of recomputations held back
        # What a standby observed before it led (see remember()).
        self._remembered_links: dict[LinkId, float] = {}
        self._remembered_lost: dict[Dpid, Sequence[tuple[PortNo, Dpid]]] = {}
        self._remembered_since: dict[PortRef, float] = {}
        self._remembered_ends: set[PortRef] = set()
        self._remembered_at: dict[Dpid, set[LinkId]] = {}

    def remember(
        self,
        *,
        links: Iterable[Link] = (),
        port_since: Mapping[PortRef, float] | None = None,
        lost_uplinks: Mapping[Dpid, Sequence[tuple[PortNo, Dpid]]],
    ) -> None:
        """Links (with their last sighting), ports' up-since times and lost uplinks a
        standby observed before it became the leader (a lone restart: the lost
        uplinks stored, :mod:`controller.store.uplinks`). Each is adopted as its
        switches connect, so discovery and edge trust go on where the observation
        left off instead of starting from nothing (and a leaf that lost an uplink
        keeps its routes); a link not seen within the link timeout is not
        adopted, and an adopted one expires like any other."""
        self._remembered_lost = dict(lost_uplinks)
        self._remembered_links = {link.link_id: link.last_seen for link in links}
        self._remembered_since = dict(port_since or {})
        self._remembered_ends = set()
        self._remembered_at = {}
        for lid in self._remembered_links:  # indexed: each switch's connect is O(its links)
            for ref in (lid.src, lid.dst):
                self._remembered_ends.add(ref)
                self._remembered_at.setdefault(ref.dpid, set()).add(lid)

    def lost_uplinks_to_keep(self) -> dict[Dpid, tuple[tuple[PortNo, Dpid], ...]]:
        """Lost uplinks a restarted controller needs (:mod:`controller.store.uplinks`):
        the topology's, and those remembered for switches not connected since."""
        kept = {d: tuple(ups) for d, ups in self._remembered_lost.items() if ups}
        kept.update(self.topo.all_lost_uplinks())
        return kept

    # ------------------------------------------------------------------ switches
    def switch_connected(
        self, dpid: Dpid, *, name: str, ports: list[Port], reported: SwitchTable, now: float
    ) -> EngineOutput:
        """A switch connected and reported its ports and tables (flows, groups, meters)."""
        events = self.topo.switch_up(dpid, name=name, ports=ports, now=now)
        self.topo.restore_lost_uplinks(dpid, self._remembered_lost.pop(dpid, ()))
        # A port at a remembered link's end is a fabric port until shown otherwise:
        # no edge trust (no traps on uplinks while the far switch is not back).
        for port in ports:
            if port.up:
                ref = PortRef(dpid, port.port_no)
                since = self._remembered_since.pop(ref, now)
                fabric_end = ref in self._remembered_ends
                self._port_since[ref] = now if fabric_end else min(now, since)
        events += self._adopt_links(dpid, now)
        out = EngineOutput()
        # The desired state first, then this switch against what it really holds.
        refresh = self.refresh_forwarding(now=now, reason="switch-up")
        ops = self.prog.switch_synced(dpid, reported, now=now)
        if ops:
            phase = Phase()
            phase.add(dpid, ops)
            out.add_program(Program(phases=[phase], reason="reconcile"))
        out.add_program(refresh)
        self._next_lldp = min(self._next_lldp, now)  # probe the new switch at once
        return out.merge(self._react(events, now))

    def resync(self, dpid: Dpid, *, reported: SwitchTable, now: float) -> EngineOutput:
        """Re-read tables of a connected switch (after an error): fix them fully."""
        out = EngineOutput()
        ops = self.prog.switch_synced(dpid, reported, now=now, warm=False)
        if ops:
            phase = Phase()
            phase.add(dpid, ops)
            out.add_program(Program(phases=[phase], reason="resync"))
        return out

    def _adopt_links(self, dpid: Dpid, now: float) -> list[FabricEvent]:
        events: list[FabricEvent] = []
        for lid in sorted(self._remembered_at.pop(dpid, ())):
            seen = self._remembered_links.get(lid)
            if seen is None:
                continue  # adopted already
            ends = [self.topo.switches.get(ref.dpid) for ref in (lid.src, lid.dst)]
            if not all(sw is not None and sw.connected for sw in ends):
                continue  # adopted when the other end connects (it is listed there too)
            del self._remembered_links[lid]
            if now - seen <= self.lldp.stretched(self.config.link_timeout_s):
                events += self.topo.lldp_seen(tx=lid.src, rx=lid.dst, now=seen)
        return events

    def switch_disconnected(self, dpid: Dpid, *, now: float) -> EngineOutput:
        # A leaf that comes back (its flows kept) finds its lost uplinks as it left
        # them, and its routes keep their names (see restore_lost_uplinks).
        if lost := self.topo.lost_uplinks(dpid):
            self._remembered_lost[dpid] = lost
        events = self.topo.switch_down(dpid, now=now)
        self.prog.switch_lost(dpid)
        for ref in [r for r in self._port_since if r.dpid == dpid]:
            del self._port_since[ref]
        out = self._react(events, now)
        out.add_program(self.refresh_forwarding(now=now, reason="switch-down"))
        return out

    def port_status(self, dpid: Dpid, port: Port, *, deleted: bool, now: float) -> EngineOutput:
        ref = PortRef(dpid, port.port_no)
        facing = self.topo.host_facing(dpid)
        if deleted:
            events = self.topo.port_deleted(dpid, port.port_no, now=now)
        else:
            events = self.topo.port_update(dpid, port, now=now)
        if port.up and not deleted:
            self._port_since.setdefault(ref, now)
        else:
            self._port_since.pop(ref, None)
        if any(isinstance(e, PortChanged) and e.up for e in events):
            self._next_lldp = min(self._next_lldp, now)
        out = self._react(events, now)
        if any(isinstance(e, LinkDown) for e in events) or self.topo.host_facing(dpid) != facing:
            out.add_program(self.refresh_forwarding(now=now, reason="port-status"))
        elif events:  # routes stay as they are: only the switch's edge ports moved
            out.add_program(self.refresh_traps(dpid, now=now, reason="port-status"))
        return out

    # --------------------------------------------------------------- discovery
    def lldp_received(self, *, tx: PortRef, rx: PortRef, now: float) -> EngineOutput:
        events = self.topo.lldp_seen(tx=tx, rx=rx, now=now)
        out = self._react(events, now)
        if any(isinstance(e, LinkUp | LinkDown) for e in events):
            out.add_program(self.refresh_forwarding(now=now, reason="link-up"))
        return out

    def tick(self, *, now: float) -> tuple[EngineOutput, list[LldpProbe]]:
        """Periodic work: LLDP probes, link expiry, end of warm-ups, edge ports settling."""
        out = EngineOutput()
        probes: list[LldpProbe] = []
        if now >= self._next_lldp:
            self.lldp.round_starts()
            self._next_lldp = now + self.lldp.interval
            probes = self._lldp_probes()
        timeout = self.lldp.stretched(self.config.link_timeout_s)
        events = self.topo.expire_links(now=now, timeout=timeout)
        if events:
            out.merge(self._react(events, now))
            out.add_program(self.refresh_forwarding(now=now, reason="lldp-timeout"))
        elif self._edges_settling(now):
            out.add_program(self.refresh_forwarding(now=now, reason="edge-trusted"))
        if not self._holds:  # else the warm-ups end after the release
            out.add_program(self.prog.end_warmups(now=now))
        return out, probes

    def _trap_ports(self, dpid: Dpid, now: float) -> tuple[PortNo, ...]:
        """Ports that get class traps: trusted edge ports only. A port not yet proven
        either way may be a fabric port whose LLDP has not arrived: a trap there
        would take the transit traffic of AI flows for new flows."""
        return tuple(
            p for p in self.topo.edge_ports(dpid) if self.trusted_edge(PortRef(dpid, p), now)
        )

    def _edges_settling(self, now: float) -> bool:
        """Whether a port became a trusted edge port since the traps were compiled."""
        if not self.traps:
            return False
        return any(
            self._trap_inputs.get(dpid, ((), ()))[0] != self._trap_ports(dpid, now)
            for dpid in self.topo.connected()
        )

    def _lldp_probes(self) -> list[LldpProbe]:
        probes = []
        for dpid in self.topo.connected():
            sw = self.topo.switches[dpid]
            for port in sorted(sw.ports.values(), key=lambda p: p.port_no):
                ref = PortRef(dpid, port.port_no)
                # Never hand a host a signed LLDP frame it could replay elsewhere.
                if port.up and not self.topo.hosts_on(ref):
                    probes.append(LldpProbe(port=ref, hw_addr=port.hw_addr))
        return probes

    # ------------------------------------------------------------------- hosts
    def trusted_edge(self, ref: PortRef, now: float) -> bool:
        """Whether hosts may be learned, ARP relayed and new flows trapped at ``ref``:
        up without a link for the grace period, and not a port that carried one
        since it came up (a leaf's port to a lost spine)."""
        since = self._port_since.get(ref)
        return (
            since is not None
            and now - since >= self.lldp.stretched(self.config.edge_grace_s)
            and not self.topo.is_fabric_port(ref)
            and not self.topo.was_fabric(ref)
        )

    def learn_host(self, *, mac: str, ipv4: str | None, at: PortRef, now: float) -> EngineOutput:
        if self.topo.seen_just_now(mac=mac, ipv4=ipv4, at=at, now=now):
            return EngineOutput()  # every packet-in of a busy host: nothing to learn
        if not self.trusted_edge(at, now) or _is_special_mac(mac):
            return EngineOutput()
        events = self.topo.host_seen(mac=mac, ipv4=ipv4, at=at, now=now)
        if not events:
            return EngineOutput()
        out = self._react(events, now)
        self.hosts_changed = True
        out.add_program(self.refresh_forwarding(now=now, reason="host-learned"))
        return out

    def restore_hosts(self, hosts: Iterable[Host]) -> None:
        """Hosts remembered from a previous run (revalidated as traffic flows)."""
        for host in hosts:
            self.topo.hosts.setdefault(host.mac, host)

    def arp_received(
        self,
        *,
        at: PortRef,
        opcode: int,
        src_mac: str,
        src_ip: str,
        dst_ip: str,
        data: bytes,
        now: float,
    ) -> EngineOutput:
        """ARP is never flooded: answer from the host table, else relay to edge ports."""
        self._count("arp")
        if not self.trusted_edge(at, now):
            self._count("arp-non-edge")
            return EngineOutput()
        out = self.learn_host(mac=src_mac, ipv4=src_ip, at=at, now=now)
        if opcode == ARP_REQUEST and src_ip != dst_ip:
            target = self.topo.host_by_ip(dst_ip)
            if target is not None and target.attach != at:
                reply = build_arp_reply(
                    target_mac=target.mac,
                    target_ip=dst_ip,
                    requester_mac=src_mac.lower(),
                    requester_ip=src_ip,
                )
                out.packets.append(PacketOut(dpid=at.dpid, data=reply, out_port=at.port))
            elif target is None:
                out.packets += self._to_edge_ports(data, exclude=at, now=now)
        elif opcode == ARP_REPLY:
            requester = self.topo.host_by_ip(dst_ip)
            if requester is not None and requester.attach != at:
                out.packets.append(
                    PacketOut(dpid=requester.attach.dpid, data=data, out_port=requester.attach.port)
                )
        return out

    def _to_edge_ports(self, data: bytes, *, exclude: PortRef, now: float) -> list[PacketOut]:
        self._count("arp-relay")
        outs = []
        for dpid in self.topo.connected():
            for port_no in self.topo.edge_ports(dpid):
                ref = PortRef(dpid, port_no)
                if ref != exclude and self.trusted_edge(ref, now):
                    outs.append(PacketOut(dpid=dpid, data=data, out_port=port_no))
        return outs

    def unicast_missed(
        self,
        *,
        at: PortRef,
        src_mac: str,
        dst_mac: str,
        src_ip: str | None,
        data: bytes,
        now: float,
    ) -> EngineOutput:
        """A unicast packet hit table-miss: learn its sender; re-inject it only if a route
        now exists (never bounce a packet between the switch and the controller)."""
        self._count("miss")
        out = self.learn_host(mac=src_mac, ipv4=src_ip, at=at, now=now)
        if dst_mac.lower() in self.topo.hosts and self._has_route(at.dpid, dst_mac.lower()):
            out.packets_after.append(PacketOut(dpid=at.dpid, data=data, in_port=at.port))
        return out

    def _has_route(self, dpid: Dpid, mac: str) -> bool:
        return host_route_key(mac) in self.prog.desired.table(dpid).flows

    # -------------------------------------------------------------- forwarding
    def set_traps(self, traps: Iterable[ClassTrap], *, now: float) -> Program:
        self.traps = tuple(traps)
        return self.refresh_forwarding(now=now, reason="policy")

    def set_catch_all(self, policy: Policy | None, *, now: float) -> Program:
        self.catch_all = policy
        return self.refresh_forwarding(now=now, reason="policy")

    def set_policies(
        self, *, catch_all: Policy | None, traps: Iterable[ClassTrap], now: float
    ) -> Program:
        """Both policy inputs of default forwarding at once: one recomputation."""
        self.catch_all = catch_all
        self.traps = tuple(traps)
        return self.refresh_forwarding(now=now, reason="policy")

    def set_drained(self, links: Iterable[LinkId], drained: bool, *, now: float) -> Program:
        for lid in links:
            self.topo.set_drained(lid, drained)
        return self.refresh_forwarding(now=now, reason="drain" if drained else "undrain")

    def hold_forwarding(self, holder: str = "bulk") -> None:
        """Hold default forwarding back until every holder called :meth:`release_forwarding`.

        For changes that come in bulk (a fabric brought up at once, a takeover
        waiting for its switches): one recomputation at the end replaces one per
        switch, link and host. Switches keep what they had until the
        release, warm-ups included (the desired state is incomplete while held).
        """
        self._holds.add(holder)

    def release_forwarding(self, *, now: float, holder: str = "bulk") -> Program:
        """End ``holder``'s hold: one recomputation, once no one holds, if anything
        asked for one while held."""
        self._holds.discard(holder)
        if self._holds or not self._forwarding_due:
            return Program(reason="held")
        reasons, self._forwarding_due = self._forwarding_due, []
        return self.refresh_forwarding(now=now, reason="+".join(sorted(set(reasons))))

    def default_takes(self, ip: str, *, host: Host | None = None) -> Takes | None:
        """Where default forwarding already carries packets to ``ip`` (its host routes;
        see :meth:`Programmer.takes`; ``host``: that host, if looked up), or None."""
        host = host or self.topo.host_by_ip(ip)
        return None if host is None else self.prog.takes(host_route_key(host.mac))

    def refresh_forwarding(self, *, now: float, reason: str) -> Program:
        """Recompute default forwarding; program only the differences.

        Host routes follow every topology change; a switch's class traps are
        compiled again only when the traps or its edge ports changed (a policy
        book can hold thousands of trap matches per edge port).
        """
        if self._holds:
            self._forwarding_due.append(reason)
            return Program(reason=reason)
        switches = sorted(self.topo.switches)
        inputs = ForwardingInputs(
            switches=switches,
            links=self.topo.sorted_links(),
            hosts=sorted(self.topo.hosts.values(), key=lambda h: h.mac),
            edge_ports=self.topo.edge_ports,
            host_facing=self.topo.host_facing,
            lost_uplinks=self.topo.lost_uplinks,
            drained=frozenset(self.topo.drained),
            single_path=self._catch_all_strategy() is Strategy.SHORTEST,
            neighbour_weight=self._neighbour_weight(),
            packet_in_pps=self.config.packet_in_pps,
            spread_l4=self.config.spread_l4,
            local_repair=self.config.local_repair,
        )
        updates: dict[Hashable, OwnerNeeds] = {}
        for dpid, fwd in self._forwarding.compile(inputs).items():
            updates[("fwd", dpid)], updates[("fwd-tail", dpid)] = fwd.routes, fwd.tail
            for key in self._set_keys.get(dpid, frozenset()) - fwd.sets.keys():
                updates[("fwd-set", dpid, key)] = OwnerNeeds()  # a set no longer claimed
            for key, needs in fwd.sets.items():
                updates[("fwd-set", dpid, key)] = needs
            self._set_keys[dpid] = frozenset(fwd.sets)
        updates.update(self._trap_updates(switches, now))
        return self.prog.set_owners(updates, now=now, reason=reason)

    def refresh_traps(self, dpid: Dpid, *, now: float, reason: str) -> Program:
        """Recompute one switch's class traps (its edge ports changed, its routes
        did not: a port without a link or a host went up or down)."""
        if self._holds:
            self._forwarding_due.append(reason)
            return Program(reason=reason)
        return self.prog.set_owners(self._trap_updates([dpid], now), now=now, reason=reason)

    def _trap_updates(self, switches: Iterable[Dpid], now: float) -> dict[Hashable, OwnerNeeds]:
        """New trap entries of those of ``switches`` whose edge ports or traps changed."""
        updates: dict[Hashable, OwnerNeeds] = {}
        metered = self.config.packet_in_pps > 0
        for dpid in switches:
            ports = self._trap_ports(dpid, now)
            key = (ports, self.traps)
            if self._trap_inputs.get(dpid) != key:
                self._trap_inputs[dpid] = key
                entries = compile_traps(ports, self.traps, metered=metered)
                updates[("trap", dpid)] = OwnerNeeds.build(flows={dpid: entries})
        return updates

    def _catch_all_strategy(self) -> Strategy:
        return self.catch_all.strategy if self.catch_all else Strategy.ECMP

    def _neighbour_weight(self) -> Callable[[Dpid], float] | None:
        policy = self.catch_all
        if policy is None or policy.strategy is not Strategy.WEIGHTED:
            return None
        weights = policy.weight_map

        def weight(dpid: Dpid) -> float:
            sw = self.topo.switches.get(dpid)
            for key in (sw.name if sw else "", f"{dpid:016x}"):
                if key in weights:
                    return weights[key]
            return 1.0

        return weight

    # ------------------------------------------------------------------ events
    def _react(self, events: list[FabricEvent], now: float) -> EngineOutput:
        topo = self.topo
        out = EngineOutput(notices=[n for e in events if (n := fabric_notice(e, topo)) is not None])
        for event in events:
            if isinstance(event, LldpIgnored):
                self._count("lldp-ignored")
        if events:
            for listener in self.listeners:
                out.merge(listener(events, now))
        return out

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1


def _is_special_mac(mac: str) -> bool:
    first = int(mac.split(":")[0], 16)
    return bool(first & 1) or mac == "00:00:00:00:00:00"
