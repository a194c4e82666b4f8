"""EngineDriver: the real engine driving a fake OpenFlow fabric through the shim's entry points.

The driver plays the part of the OpenFlow shim and the switches: it calls
exactly the engine methods the shim calls (``switch_features``,
``port_desc``, ``flow_stats``, ``packet_in``, ``port_stats``, ``tick`` ...)
and does what comes back the way a switch would: programs are applied to the
:class:`~controller.devtools.fakeoftable.FakeFabric` tables, table reads and
statistics requests are answered from them, LLDP probes sent out of a cabled
port arrive as packet-ins at the other end. With ``check_redundant`` every
program is applied twice, and the second application must leave every table
unchanged (redundant-safe programming, as Faucet checks it); with
``tend_heap`` the engine's garbage-collector policy is carried out as the
shim's hub loop does. Time only moves when the caller moves it.

Shared by the unit tests (``tests/unit/enginelab.py`` builds one from a
synthetic fabric) and the scale benchmark. It decides nothing the engine
should decide.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Self

from prometheus_client import CollectorRegistry

from controller.devtools.fakeoftable import FakeFabric, WalkResult
from controller.engine.connectivity import ARP_REQUEST, Connectivity
from controller.engine.engine import EngineConfig, FabricEngine
from controller.engine.inputs import FlowStat
from controller.engine.outputs import (
    EngineOutput,
    FlowStatsRequest,
    HeapWork,
    PacketOut,
    PortStatsRequest,
    Request,
    RoleRequest,
    TablePart,
    TableRead,
)
from controller.fabric import frames
from controller.fabric.model import Dpid, FiveTuple, Host, LinkId, Port, PortRef
from controller.flowprog.entries import Cookie, CookieKind
from controller.flowprog.plan import Program
from controller.observability.metrics import FabricMetrics
from controller.policy.model import Policy
from controller.southbound.collector import failure_reaction, tend_heap
from controller.store.documents import DocumentStore
from controller.store.hosts import HostView
from controller.store.memory import MemoryStore
from controller.store.policies import PolicyView
from controller.telemetry import PortCounters

__all__ = [
    "BASE_COOKIE",
    "TRAP_COOKIE",
    "LabHost",
    "SentProbe",
    "EngineDriver",
    "arp_frame",
    "udp_frame",
    "port_mac",
]

BASE_COOKIE = Cookie(CookieKind.BASE).encode()
TRAP_COOKIE = Cookie(CookieKind.CLASS_TRAP).encode()
OFPP_LOCAL = 0xFFFFFFFE


@dataclass(frozen=True)
class LabHost:
    name: str
    mac: str
    ip: str
    port: PortRef


@dataclass(frozen=True)
class SentProbe:
    """An LLDP probe the engine sent out of ``port``."""

    port: PortRef


class EngineDriver:
    """A :class:`FabricEngine` on a :class:`FakeFabric` of ``switches`` and ``links``.

    ``switches`` maps dpids to the names they report (their bridge names);
    ``host_ports`` are the ports hosts hang on, in order (host k+1 gets
    ``host_ports[k]``, MAC ``02:00:00:00:..`` and IPv4 ``10.0.x.y`` numbered
    from k+1); ``policies`` seed the engine's store. ``keep_outputs`` records
    every output (for tests that read notices); a benchmark turns it off.
    """

    def __init__(
        self,
        *,
        switches: Mapping[Dpid, str],
        links: Sequence[LinkId],
        host_ports: Sequence[PortRef],
        config: EngineConfig | None = None,
        policies: tuple[Policy, ...] = (),
        store: DocumentStore | None = None,
        check_redundant: bool = True,
        keep_outputs: bool = True,
        tend_heap: bool = False,
    ) -> None:
        self.now = 1.0
        self.store = store if store is not None else MemoryStore()
        PolicyView(self.store).seed_if_empty(policies)
        self.config = config or EngineConfig()
        self.check_redundant = check_redundant
        self.keep_outputs = keep_outputs
        self.tend_heap = tend_heap
        self.heap_work: list[HeapWork] = []  # what the engine asked of the collector
        self.restart()
        self.name_of = dict(switches)
        self.fake = FakeFabric(switches=switches, links=links)
        ports: dict[Dpid, set[int]] = {d: set() for d in switches}
        for lid in links:
            ports[lid.src.dpid].add(lid.src.port)
        self.hosts: list[LabHost] = []
        for k, ref in enumerate(host_ports, 1):
            ports[ref.dpid].add(ref.port)
            self.hosts.append(
                LabHost(
                    f"h{k}",
                    f"02:00:00:00:{k >> 8:02x}:{k & 0xFF:02x}",
                    f"10.0.{k >> 8}.{k & 0xFF}",
                    ref,
                )
            )
        self.ports = {
            d: [
                Port(p, name=f"{self.name_of[d]}-eth{p}", hw_addr=port_mac(d, p))
                for p in sorted(ps)
            ]
            for d, ps in ports.items()
        }
        self.outputs: list[EngineOutput] = []
        self.sent: list[PacketOut] = []  # packets the engine sent that are not LLDP probes
        self.lldp_lost: set[PortRef] = set()  # probes sent out of these ports vanish
        self.counters: dict[PortRef, PortCounters] = {}  # what port-stats replies report
        self.flow_bytes: dict[int, int] = {}  # cookie -> byte count in flow-stats replies
        self.answer_stats = True  # False: the switches ignore statistics requests
        self.roles: dict[Dpid, str] = {}  # the OpenFlow role each switch gave the engine
        self._after_lldp: Callable[[LinkId], None] | None = None
        self.on_output: Callable[[EngineOutput], None] | None = None  # sees every output once

    def restart(self, *, hosts: Iterable[Host] = ()) -> None:
        """A new engine (a restarted controller) on the same store and switches;
        ``hosts`` are what the previous one saved."""
        HostView(self.store).sync(list(hosts))
        self.metrics = FabricMetrics(CollectorRegistry())
        self.engine = FabricEngine(
            self.config, store=self.store, metrics=self.metrics, now=self.now
        )

    @property
    def net(self) -> Connectivity:
        """The engine's connectivity (rebuilt on a takeover, so always read it here)."""
        return self.engine.net

    def advance(self, seconds: float) -> None:
        self.now += seconds

    # ------------------------------------------------------------ the shim's part
    def run(self, out: EngineOutput) -> EngineOutput:
        """Do what the engine asked, as the shim and the switches would; returns
        everything that happened as one output (the engine's answers included)."""
        if self.keep_outputs:
            self.outputs.append(out)
        if self.on_output is not None:
            self.on_output(out)
        if out.heap is not None:
            self._tend(out.heap)
        total = EngineOutput().merge(out)
        for req in out.requests:
            total.merge(self._answer(req))
        if not self.engine.writes_allowed(self.now):
            return total  # a standby (or a leader whose lease may have lapsed) writes nothing
        for dpid, ops in out.immediate:
            if self.engine.is_synced(dpid):
                self.fake.apply_ops(dpid, ops)
        for program in out.urgent:
            for dpid, ops in program.joined().items():
                if self.engine.is_synced(dpid):
                    self.fake.apply_ops(dpid, ops)
        for pkt in out.packets:
            total.merge(self._deliver(pkt))
        for program in out.urgent:
            total.merge(self._confirm(program))
        for program in out.programs:
            self.fake.apply(program)
            total.merge(self._confirm(program))
        for pkt in out.packets_after:
            total.merge(self._deliver(pkt))
        return total

    def _confirm(self, program: Program) -> EngineOutput:
        """A program was applied: check it is safe to apply twice, confirm it."""
        if self.check_redundant:
            before = self.fake.contents()
            self.fake.apply(program, replay=True)
            assert self.fake.contents() == before, (
                f"program {program.reason!r} is not redundant-safe"
            )
        return self.run(self.engine.program_confirmed(program, sent_at=self.now, now=self.now))

    def _tend(self, work: HeapWork) -> None:
        """What the shim's hub loop does with the engine's collector policy."""
        self.heap_work.append(work)
        if self.tend_heap:
            tend_heap(work)

    def _deliver(self, pkt: PacketOut) -> EngineOutput:
        parsed = frames.parse(pkt.data)
        if parsed.kind != "lldp" or pkt.out_port is None:
            if self.keep_outputs:
                self.sent.append(pkt)
            return EngineOutput()
        src = PortRef(pkt.dpid, pkt.out_port)
        peer = self.fake.peer.get(src)
        if (
            peer is None
            or src in self.lldp_lost
            or src in self.fake.down
            or peer in self.fake.down
            or not self.fake.switch(peer.dpid).connected
        ):
            return EngineOutput()
        out = self.packet_in(peer, pkt.data, cookie=BASE_COOKIE)
        if self._after_lldp is not None:
            self._after_lldp(LinkId(src, peer))
        return out

    def _answer(self, req: Request) -> EngineOutput:
        sw = self.fake.switch(req.dpid)
        if not sw.connected:
            return EngineOutput()
        engine, now = self.engine, self.now
        match req:
            case TableRead(part=TablePart.PORTS):
                local = Port(OFPP_LOCAL, name=self.name_of[req.dpid], hw_addr=port_mac(req.dpid, 0))
                down = self.fake.down  # reported down, as a switch reports a cut cable
                ports = [
                    replace(p, up=PortRef(req.dpid, p.port_no) not in down)
                    for p in self.ports[req.dpid]
                ]
                ports.append(local)
                return self.run(engine.port_desc(req.dpid, ports, more=False, now=now))
            case TableRead(part=TablePart.FLOWS):
                stats = [FlowStat(e, 0) for e in sw.reported().flows.values()]
                return self.run(engine.flow_stats(req.dpid, stats, more=False, now=now))
            case TableRead(part=TablePart.GROUPS):
                groups = list(sw.reported().groups.values())
                return self.run(engine.group_desc(req.dpid, groups, more=False, now=now))
            case TableRead(part=TablePart.METERS):
                meters = list(sw.reported().meters.values())
                return self.run(engine.meter_config(req.dpid, meters, more=False, now=now))
            case PortStatsRequest() if self.answer_stats:
                counters = [
                    (p.port_no, self.counters.get(PortRef(req.dpid, p.port_no), PortCounters()))
                    for p in self.ports[req.dpid]
                ]
                return self.run(engine.port_stats(req.dpid, counters, more=False, now=now))
            case RoleRequest(master=master):
                self.roles[req.dpid] = "master" if master else "slave"
                return EngineOutput()
            case FlowStatsRequest(cookie=cookie, mask=mask) if self.answer_stats:
                stats = [
                    FlowStat(e, self.flow_bytes.get(e.cookie, 0))
                    for e in sw.reported().flows.values()
                    if e.cookie & mask == cookie & mask
                ]
                return self.run(engine.flow_stats(req.dpid, stats, more=False, now=now))
        return EngineOutput()

    # ------------------------------------------------------------ switch events
    def connect(self, dpid: Dpid) -> EngineOutput:
        """The switch connects and is read: everything the engine did in response."""
        self.fake.switch(dpid).connected = True
        return self.run(self.engine.switch_features(dpid, now=self.now))

    def disconnect(self, dpid: Dpid) -> EngineOutput:
        self.fake.switch(dpid).connected = False
        return self.run(self.switch_lost(dpid))

    def set_port(self, ref: PortRef, *, up: bool) -> EngineOutput:
        (self.fake.down.discard if up else self.fake.down.add)(ref)
        return self.run(self.port_changed(ref, up=up))

    def switch_lost(self, dpid: Dpid) -> EngineOutput:
        """The engine's reaction to losing ``dpid``'s connection, called as the shim
        calls it (:func:`failure_reaction`); not yet run."""
        with failure_reaction(self.tend_heap and self.engine.heap.enabled):
            return self.engine.switch_disconnected(dpid, now=self.now)

    def port_changed(self, ref: PortRef, *, up: bool) -> EngineOutput:
        """The engine's reaction to the port-status message of ``ref`` going up or
        down, called as the shim calls it; not yet run."""
        port = next(p for p in self.ports[ref.dpid] if p.port_no == ref.port)
        with failure_reaction(self.tend_heap and self.engine.heap.enabled):
            return self.engine.port_status(
                ref.dpid, replace(port, up=up), deleted=False, now=self.now
            )

    def packet_in(self, at: PortRef, data: bytes, *, cookie: int) -> EngineOutput:
        return self.run(
            self.engine.packet_in(at.dpid, in_port=at.port, cookie=cookie, data=data, now=self.now)
        )

    def lldp(self, lid: LinkId) -> EngineOutput:
        """A signed probe from ``lid.src`` arrives at ``lid.dst`` (wherever that is)."""
        src_port = next((p for p in self.ports[lid.src.dpid] if p.port_no == lid.src.port), None)
        hw_addr = src_port.hw_addr if src_port else port_mac(lid.src.dpid, lid.src.port)
        data = frames.build_lldp(
            self.engine.signer, dpid=lid.src.dpid, port=lid.src.port, hw_addr=hw_addr, now=self.now
        )
        return self.packet_in(lid.dst, data, cookie=BASE_COOKIE)

    def tick(self, *, after_each: Callable[[LinkId], None] | None = None) -> list[SentProbe]:
        """One periodic tick; LLDP probes that reach a live peer arrive at once.

        ``after_each`` runs after every LLDP arrival, to check each step of discovery.
        """
        out = self.engine.tick(now=self.now)
        probes = [
            SentProbe(PortRef(p.dpid, p.out_port))
            for p in out.packets
            if p.out_port is not None and frames.parse(p.data).kind == "lldp"
        ]
        self._after_lldp = after_each
        try:
            self.run(out)
        finally:
            self._after_lldp = None
        return probes

    def run_for(self, seconds: float) -> None:
        """Let ``seconds`` pass with a tick every half LLDP interval, as the shim does."""
        step = self.net.config.lldp_interval_s / 2
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.tick()

    def start(self) -> None:
        """Connect every switch, discover every cable, wait out the edge grace time."""
        for dpid in sorted(self.name_of):
            self.connect(dpid)
        self.tick()
        self.advance(self.net.config.edge_grace_s + 0.1)
        self.tick()

    def ready(self) -> Self:
        """Started, every host learned, warm-ups over."""
        self.start()
        self.learn_all()
        self.run_for(self.net.config.warmup_s)
        return self

    def notices(self, kind: str) -> list[str]:
        """Subjects (and reasons) of every notice of ``kind`` the engine produced so far."""
        return [
            f"{n.subject} {n.reason}".strip()
            for out in self.outputs
            for n in out.notices
            if n.kind.value == kind
        ]

    # -------------------------------------------------------------------- hosts
    def garp(self, host: LabHost) -> EngineOutput:
        """The host announces itself (gratuitous ARP)."""
        return self.arp(host, target_ip=host.ip)

    def arp(self, host: LabHost, *, target_ip: str, opcode: int = ARP_REQUEST) -> EngineOutput:
        """``host`` sends an ARP packet (a request, by default) that reaches the controller."""
        data = arp_frame(opcode=opcode, src_mac=host.mac, src_ip=host.ip, dst_ip=target_ip)
        return self.packet_in(host.port, data, cookie=BASE_COOKIE)

    def learn_all(self) -> None:
        for host in self.hosts:
            self.garp(host)

    def packet(self, src: LabHost, dst: LabHost, **fields: int | str) -> dict[str, int | str]:
        pkt: dict[str, int | str] = {
            "eth_src": src.mac,
            "eth_dst": dst.mac,
            "eth_type": frames.ETH_IPV4,
            "ipv4_src": src.ip,
            "ipv4_dst": dst.ip,
            "ip_proto": 17,
            "udp_src": 40000,
            "udp_dst": 4791,
        }
        pkt.update(fields)
        return pkt

    def send(
        self, src: LabHost, dst: LabHost, *, live_select: bool = False, **fields: int | str
    ) -> WalkResult:
        pkt = self.packet(src, dst, **fields)
        return self.fake.walk(src.port.dpid, src.port.port, pkt, live_select=live_select)

    def undelivered(self, *, live_select: bool = False) -> list[str]:
        """Every ordered host pair whose packet does not reach exactly the destination."""
        bad = []
        for src in self.hosts:
            for dst in self.hosts:
                if src is dst:
                    continue
                res = self.send(src, dst, live_select=live_select)
                if not res.only_to(dst.port):
                    bad.append(f"{src.name}->{dst.name}: {res.terminals}")
        return bad


def arp_frame(*, opcode: int, src_mac: str, src_ip: str, dst_ip: str) -> bytes:
    """A broadcast ARP frame as a host sends it."""
    mac = bytes.fromhex(src_mac.replace(":", ""))
    body = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        frames.ETH_IPV4,
        6,
        4,
        opcode,
        mac,
        socket.inet_aton(src_ip),
        b"\0" * 6,
        socket.inet_aton(dst_ip),
    )
    return b"\xff" * 6 + mac + frames.ETH_ARP.to_bytes(2, "big") + body


def udp_frame(ft: FiveTuple, *, src_mac: str, dst_mac: str, dscp: int = 0) -> bytes:
    """A minimal Ethernet/IPv4/UDP frame (what a class trap sends up)."""
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
    ip = bytes([0x45, dscp << 2]) + (28).to_bytes(2, "big") + b"\0\0\0\0" + bytes([64, 17])
    ip += (
        b"\0\0" + ipaddress.IPv4Address(ft.src_ip).packed + ipaddress.IPv4Address(ft.dst_ip).packed
    )
    udp = ft.src_port.to_bytes(2, "big") + ft.dst_port.to_bytes(2, "big") + b"\0\x08\0\0"
    return eth + b"\x08\x00" + ip + udp


def port_mac(dpid: Dpid, port: int) -> str:
    """The MAC address a fake switch's port reports."""
    raw = ((dpid & 0xFFFFFF) << 16 | port) & 0xFFFFFFFFFF
    return "0a:" + ":".join(f"{(raw >> s) & 0xFF:02x}" for s in range(32, -8, -8))
