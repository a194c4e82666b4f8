"""StandbyObserver: what a cluster standby learns of the fabric without writing to it.

A standby holds the SLAVE role on every switch: it may read (port
descriptions, port counters) and receive port-status messages, and it asks
the switches for the packet-ins of controller actions too, so it sees the
LLDP probes the leader sends (signed with the key the cluster shares). From
these it keeps its own topology (switches, ports, links with their last
sighting) and its own link monitor (rates) up to date. When it becomes the
leader, the engine starts from both: links are known before its own first
probe returns and rates before its own first poll, so a takeover needs no
re-learning from scratch.

It never programs anything, never places a flow and never answers a host:
packet-ins other than LLDP are dropped here, and congestion it detects is
not acted on (the leader acts; the new leader starts with a fresh detector).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from controller.engine.discovery import SETTLING_ROUNDS
from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import (
    EngineOutput,
    Request,
    RoleRequest,
    SlavePacketIns,
    TablePart,
    TableRead,
)
from controller.engine.polling import StatsPolls
from controller.engine.tablesync import OFPP_LOCAL
from controller.fabric import frames
from controller.fabric.lldp_auth import LldpSigner
from controller.fabric.model import Dpid, Host, Link, Port, PortNo, PortRef
from controller.fabric.topology import Topology
from controller.telemetry import PortCounters

__all__ = ["StandbyObserver"]


class StandbyObserver:
    def __init__(
        self,
        *,
        signer: LldpSigner,
        monitor: LinkMonitor,
        polls: StatsPolls,
        link_timeout_s: float,
        lldp_interval_s: float,
    ) -> None:
        self.signer = signer
        self.monitor = monitor
        self.polls = polls
        self.link_timeout_s = link_timeout_s
        self.lldp_interval_s = lldp_interval_s
        # The leader's probe rounds as seen here: it may stretch its interval
        # (discovery's budget), and a link is silent only if rounds go on without it.
        self.last_probe = 0.0  # when the latest valid probe arrived
        self._round_start = 0.0
        # Seconds between the starts of its last rounds: the longest of a few counts
        # (a stall in the middle of one round must not look like a short interval).
        self._periods: deque[float] = deque(maxlen=SETTLING_ROUNDS)
        self.topo = Topology()
        self.port_since: dict[PortRef, float] = {}  # up ports: since when (edge trust)
        self._reading: dict[Dpid, list[Port]] = {}  # port descriptions arriving in parts

    # ------------------------------------------------------------ switches
    def switch_features(self, dpid: Dpid, *, generation: int) -> list[Request]:
        """Claim SLAVE, ask for the leader's LLDP as packet-ins, read the ports."""
        self._reading[dpid] = []
        return [
            RoleRequest(dpid, master=False, generation=generation),
            SlavePacketIns(dpid),
            TableRead(dpid, TablePart.PORTS),
        ]

    def port_desc(self, dpid: Dpid, ports: list[Port], *, more: bool, now: float) -> None:
        parts = self._reading.get(dpid)
        if parts is None:
            return  # not asked for (or the switch left meanwhile)
        parts.extend(ports)
        if more:
            return
        del self._reading[dpid]
        name = next((p.name for p in parts if p.port_no == OFPP_LOCAL), "")
        self.topo.switch_up(dpid, name=name or f"{dpid:016x}", ports=parts, now=now)
        for port in parts:
            if port.up and port.port_no != OFPP_LOCAL:
                self.port_since.setdefault(PortRef(dpid, port.port_no), now)

    def port_status(self, dpid: Dpid, port: Port, *, deleted: bool, now: float) -> None:
        ref = PortRef(dpid, port.port_no)
        if deleted:
            self.topo.port_deleted(dpid, port.port_no, now=now)
        else:
            self.topo.port_update(dpid, port, now=now)
        if port.up and not deleted:
            self.port_since.setdefault(ref, now)
        else:
            self.port_since.pop(ref, None)

    def switch_disconnected(self, dpid: Dpid, *, now: float) -> None:
        self._reading.pop(dpid, None)
        self.topo.switch_down(dpid, now=now)
        for ref in [r for r in self.port_since if r.dpid == dpid]:
            del self.port_since[ref]
        self.polls.forget(dpid)
        self.monitor.switch_gone(dpid)

    # ------------------------------------------------------------ what arrives
    def packet_in(self, dpid: Dpid, *, in_port: int, data: bytes, now: float) -> bool:
        """A packet-in: True if it was a valid probe of the leader (a link sighting)."""
        if dpid not in self.topo.switches:
            return False
        pkt = frames.parse(data)
        if pkt.kind != "lldp":
            return False  # the leader handles hosts and flows
        sender = frames.parse_lldp(self.signer, pkt.lldp, now=now)
        if sender is None:
            return False
        self.topo.lldp_seen(tx=PortRef(*sender), rx=PortRef(dpid, in_port), now=now)
        if now - self.last_probe > self.lldp_interval_s / 4:  # a quiet gap: a new round
            if self._round_start:
                self._periods.append(now - self._round_start)
            self._round_start = now
        self.last_probe = now
        return True

    def port_stats(
        self, dpid: Dpid, counters: list[tuple[int, PortCounters]], *, more: bool, now: float
    ) -> None:
        update = self.monitor.port_stats(dpid, counters, now=now, topo=self.topo)
        for port in update.receiving:
            self.topo.link_alive(PortRef(dpid, port), now=now)
        self.polls.port.answered(dpid, now, more=more)

    @property
    def round_period(self) -> float:
        """The leader's LLDP interval as seen here (0 until two rounds came)."""
        return max(self._periods, default=0.0)

    # ------------------------------------------------------------ time
    def tick(self, *, now: float) -> EngineOutput:
        """Links the leader's probes stopped proving expire; counters are polled.

        Silence counts while the leader's rounds go on (up to its latest probe), in
        its intervals as seen here: a leader that stretched its interval, or stopped
        probing (it died: this node takes over and probes itself), expires nothing."""
        stretch = max(1.0, self.round_period / self.lldp_interval_s)
        self.topo.expire_links(now=self.last_probe, timeout=self.link_timeout_s * stretch)
        polls = self.polls.due(now=now, switches=self.topo.connected(), ingress=set())
        out = EngineOutput(requests=list(polls.requests))
        next_poll = self.polls.next_due()
        if next_poll is not None:
            out.wake_in = max(0.0, next_poll - now)
        return out

    def show_hosts(self, hosts: Iterable[Host]) -> None:
        """The hosts the leader stored (a standby learns none itself): shown in its
        views; restored ones never block discovery (see Topology.lldp_seen)."""
        self.topo.hosts.clear()
        for host in hosts:
            self.topo.hosts[host.mac] = host

    def links(self) -> list[Link]:
        return list(self.topo.links.values())

    def lost_uplinks(self) -> dict[Dpid, tuple[tuple[PortNo, Dpid], ...]]:
        """Per switch, the uplinks it lost while observed (see Topology.lost_uplinks)."""
        lost = {d: self.topo.lost_uplinks(d) for d in self.topo.switches}
        return {d: ports for d, ports in lost.items() if ports}
