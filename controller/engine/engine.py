"""FabricEngine: the one entry into the controller's logic.

The OpenFlow shim hands it plain events (a switch connected, a table part
arrived, a packet-in, a port changed, counters came back, time passed) and
sends what comes back: one :class:`EngineOutput` per call. Northbound
commands (policies, drains, explain) come from the API through the mailbox
and return ``(result, EngineOutput)`` the same way.

Everything that decides lives below this class: it classifies packet-ins
(trap or table-miss, by cookie), runs the table sync of every switch,
schedules statistics polls and resyncs, signs and checks LLDP probes, and
times its own warnings. It owns all mutable state and runs in the hub thread
only. It never reads the time (``now`` is an argument), never sends and never
touches a socket; randomness is seeded. The one clock it reads is the CPU
clock it is given (``work_clock``), to pace statistics polls by what reading
their answers costs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from controller.engine.commands import NorthboundCommands
from controller.engine.config import EngineConfig
from controller.engine.connectivity import Connectivity
from controller.engine.discovery import LldpProbe, probe_packets
from controller.engine.heap import HeapPolicy
from controller.engine.inputs import FlowStat, SwitchError
from controller.engine.jobs import JOB_DONE, JobManager
from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import (
    EngineOutput,
    PacketOut,
    RoleRequest,
    TablePart,
    congestion_notice,
)
from controller.engine.placement import FlowPlacer, FlowSample
from controller.engine.policies import PolicyManager
from controller.engine.polling import StatsPolls
from controller.engine.roles import ClusterRoles
from controller.engine.standby import StandbyObserver
from controller.engine.tablesync import SyncedSwitch, TableSync
from controller.fabric import frames
from controller.fabric.lldp_auth import LldpSigner
from controller.fabric.model import FiveTuple, Port, PortRef
from controller.fabric.topology import Topology
from controller.flowprog.entries import Cookie, CookieKind, GroupEntry, MeterEntry
from controller.flowprog.plan import Program
from controller.observability.metrics import FabricMetrics
from controller.store.documents import DocumentStore
from controller.store.drains import DrainView
from controller.store.hosts import HostView
from controller.store.jobs import JobStore, PlanStore
from controller.store.policies import PolicyView
from controller.store.uplinks import UplinkView
from controller.te.engineer import TrafficEngineer
from controller.telemetry import PortCounters

__all__ = ["EngineConfig", "FabricEngine"]

# A link read above the congestion threshold is sampled again after this
# fraction of the poll interval, so a hot spot is confirmed (or dismissed)
# within about one and a quarter intervals of the first hot sample.
CONFIRM_FRACTION = 0.25

log = logging.getLogger("fabricd.engine")


class FabricEngine(ClusterRoles, NorthboundCommands):
    def __init__(
        self,
        config: EngineConfig,
        *,
        store: DocumentStore,
        metrics: FabricMetrics,
        now: float,
        lldp_key: bytes | None = None,
        lldp_clock_offset: float = 0.0,
        work_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.config = config
        self.work_clock = work_clock
        self.metrics = metrics
        metrics.lldp_interval.set(config.lldp_interval_s)  # the tick sets the one in use
        self.store = store
        self.signer = LldpSigner(
            lldp_key,
            max_age_s=max(10.0, 5 * config.lldp_interval_s),
            clock_offset=lldp_clock_offset,
        )
        self._connected: set[int] = set()  # OpenFlow connections, in any role
        self._errors_logged: set[tuple[int, str, int]] = set()
        self.heap = HeapPolicy(
            enabled=config.heap_freeze,
            interval_s=config.poll_interval_s,
            collect_s=config.heap_collect_s,
            now=now,
        )
        self._build(now)

    def _build(self, now: float, *, warm: StandbyObserver | None = None) -> None:
        """The state of a controller that just started: everything from the store,
        nothing known of the switches yet (a takeover is a restart, in-process),
        except what a standby observed before it led (``warm``)."""
        config, store = self.config, self.store
        self.drains = DrainView(store)
        self.net = Connectivity(config.connectivity())
        self.net.restore_hosts(HostView(store).list())
        for lid in self.drains.links():  # operators' drains outlive a restart
            self.net.topo.set_drained(lid, True)
        self.monitor = self._new_monitor()
        # Lost uplinks name the leaves' spread sets: stored ones, unless a standby
        # saw the switch itself.
        lost = UplinkView(store).lost()
        if warm is not None:
            lost.update(warm.lost_uplinks())
            self.net.remember(links=warm.links(), port_since=warm.port_since, lost_uplinks=lost)
            self.monitor.rates = warm.monitor.rates  # rates now, not after two polls
        elif lost:
            self.net.remember(lost_uplinks=lost)
        self.policies = PolicyManager(PolicyView(store))
        self.placer = FlowPlacer(
            self.net,
            self.monitor,
            book=lambda: self.policies.book,
            engineer=TrafficEngineer(
                seed=config.seed,
                visibility_s=_visibility(config.poll_interval_s),
                max_moves_per_round=config.max_moves_per_round,
                default_demand_bps=config.default_demand_bps,
                joint_rebalance=config.joint_rebalance,
            ),
            setup_budget=config.flow_setup_budget,
            default_rebalance_s=config.rebalance_period_s,
            failover_groups=config.failover_groups,
            local_repair=config.local_repair,
        )
        self.started_at = now
        self.jobs = JobManager(
            self.net,
            jobs=JobStore(store),
            plans=PlanStore(store),
            book=lambda: self.policies.book,
            view=self.placer.network_view,
            settled=self._settled,
            link_capacity_bps=config.default_demand_bps,
            now=now,
            failover=config.failover_groups,
            local_repair=config.local_repair,
            next_hops=self.placer.state.next_hops,
        )
        self.sync = TableSync(timeout_s=config.sync_timeout_s)
        self.polls = self._new_polls()
        self._reported_unmatched = False
        self.install_policies(now=now)
        if self.standby is not None:
            self.standby.show_hosts(self.net.topo.hosts.values())

    def _new_monitor(self) -> LinkMonitor:
        config = self.config
        return LinkMonitor(
            capacity=config.capacity,
            alpha=config.ewma_alpha,
            threshold=config.congestion_threshold,
            clear_threshold=config.clear_threshold,
            samples=config.congestion_samples,
        )

    def _new_polls(self) -> StatsPolls:
        config = self.config
        self.metrics.poll_interval.set(config.poll_interval_s)
        return StatsPolls(
            interval=config.poll_interval_s,
            rng=random.Random(config.seed),
            budget=config.poll_budget,
            max_interval=config.poll_interval_max_s,
        )

    def _paced_polls(self, previous: float) -> None:
        """The poll interval changed with the cost of a round: what depends on it follows."""
        polls = self.polls
        if polls.interval == previous:
            return
        log.log(
            logging.WARNING if polls.interval > polls.configured else logging.INFO,
            "a round of statistics costs the hub %.2f s: polling every %.1f s (poll_budget %.2f)",
            polls.round_work,
            polls.interval,
            polls.budget,
        )
        self.metrics.poll_interval.set(polls.interval)
        self.metrics.poll_round_work.set(polls.round_work)
        self.placer.te.set_visibility(_visibility(polls.interval))

    def visible(self) -> tuple[Topology, LinkMonitor]:
        """The topology and link loads this node shows (a standby: what it observes)."""
        if self.standby is not None:
            return self.standby.topo, self.standby.monitor
        return self.net.topo, self.monitor

    # ------------------------------------------------------------- switches
    def _settled(self, now: float) -> bool:
        """Discovery had time to finish and no switch is in its warm-up."""
        net = self.net
        if now < self.started_at + net.config.link_timeout_s:
            return False
        return not any(net.prog.warming(d, now) for d in net.topo.connected())

    def is_synced(self, dpid: int) -> bool:
        """Whether the switch's tables are known (programs may be sent to it)."""
        return self.net.prog.is_synced(dpid)

    def switch_features(self, dpid: int, *, now: float) -> EngineOutput:
        """A switch (re)connected: claim the role, then read its ports and tables."""
        self._connected.add(dpid)
        out = EngineOutput()
        if self.standby is not None:  # it reads the ports and observes; it writes nothing
            out.requests += self.standby.switch_features(dpid, generation=self.generation)
            return out
        if self.cluster_role is not None:
            out.requests.append(RoleRequest(dpid, master=True, generation=self.generation))
        out.requests += self.sync.start(dpid, now=now)
        return out

    def port_desc(self, dpid: int, ports: list[Port], *, more: bool, now: float) -> EngineOutput:
        if self.standby is not None:
            self.standby.port_desc(dpid, ports, more=more, now=now)
            return EngineOutput()
        return EngineOutput(requests=list(self.sync.ports(dpid, ports, more=more)))

    def flow_stats(
        self, dpid: int, stats: list[FlowStat], *, more: bool, now: float
    ) -> EngineOutput:
        """Flow statistics: a part of a table read, or counters of placed flows."""
        if self.sync.reading(dpid, TablePart.FLOWS):
            done = self.sync.flows(dpid, (s.entry for s in stats), more=more)
            return self._synced(done, now=now)
        start = self.work_clock()
        samples: list[FlowSample] = [(s.entry.cookie, s.byte_count) for s in stats]
        self.placer.flow_stats(dpid, samples, now=now)
        self.polls.work(self.work_clock() - start, port=False)
        rtt = self.polls.flow.answered(dpid, now, more=more)
        if rtt is not None:
            self.metrics.observe_stats_request("flow", rtt)
        return EngineOutput(heap=None if more else self.heap.answered("flow", dpid))

    def group_desc(
        self, dpid: int, groups: list[GroupEntry], *, more: bool, now: float
    ) -> EngineOutput:
        return self._synced(self.sync.groups(dpid, groups, more=more), now=now)

    def meter_config(
        self, dpid: int, meters: list[MeterEntry], *, more: bool, now: float
    ) -> EngineOutput:
        return self._synced(self.sync.meters(dpid, meters, more=more), now=now)

    def _synced(self, done: SyncedSwitch | None, *, now: float) -> EngineOutput:
        if done is None:
            return EngineOutput()
        if self.is_synced(done.dpid):  # a re-read of a connected switch
            return self._settle(self.net.resync(done.dpid, reported=done.table, now=now), now)
        self._first_read(done, now)
        out = self.net.switch_connected(
            done.dpid, name=done.name, ports=list(done.ports), reported=done.table, now=now
        )
        return self._settle(self._release_holds(out, now, synced=done.dpid), now)

    def switch_disconnected(self, dpid: int, *, now: float) -> EngineOutput:
        self._connected.discard(dpid)
        if self.standby is not None:
            self.standby.switch_disconnected(dpid, now=now)
        self.sync.forget(dpid)
        self.polls.forget(dpid)
        self.monitor.switch_gone(dpid)
        log.info("switch %s (%016x) disconnected", self.net.topo.label(dpid), dpid)
        return self._settle(self.net.switch_disconnected(dpid, now=now), now)

    def port_status(self, dpid: int, port: Port, *, deleted: bool, now: float) -> EngineOutput:
        if self.standby is not None:
            self.standby.port_status(dpid, port, deleted=deleted, now=now)
        if not self.is_synced(dpid):
            return EngineOutput()  # the read in progress will report current port state
        return self._settle(self.net.port_status(dpid, port, deleted=deleted, now=now), now)

    def switch_error(self, dpid: int, error: SwitchError, *, now: float) -> EngineOutput:
        """The switch answered a request with an error."""
        self.metrics.openflow_errors.labels(type=error.kind).inc()
        key = (dpid, error.kind, error.code)
        if key not in self._errors_logged:
            self._errors_logged.add(key)
            log.error(
                "switch %016x reported %s code %d (xid %d)", dpid, error.kind, error.code, error.xid
            )
        if error.kind == "role_request_failed":
            return EngineOutput()  # a newer leader exists: the election will say so
        if error.kind == "bad_request" and self.sync.reading(dpid, TablePart.METERS):
            # A switch without meters: its table read is complete without them.
            return self._synced(self.sync.part_done(dpid, TablePart.METERS), now=now)
        self.sync.schedule_resync(dpid, now=now)
        return EngineOutput()

    def barrier_timeout(self, dpid: int, *, now: float) -> EngineOutput:
        """A switch did not confirm a barrier: its tables may differ from ours."""
        log.warning("switch %016x did not confirm a barrier; re-reading its tables", dpid)
        self.sync.schedule_resync(dpid, now=now)
        return EngineOutput()

    def hold_forwarding(self) -> None:
        """Bulk changes ahead (a fabric brought up at once): default forwarding is
        recomputed once, at :meth:`release_forwarding`, not at every change."""
        self.net.hold_forwarding()

    def release_forwarding(self, *, now: float) -> EngineOutput:
        out = EngineOutput()
        out.add_program(self.net.release_forwarding(now=now))
        return out

    # ------------------------------------------------------------ packet-in
    def packet_in(
        self, dpid: int, *, in_port: int, cookie: int, data: bytes, now: float
    ) -> EngineOutput:
        if self.standby is not None:
            self.standby.packet_in(dpid, in_port=in_port, data=data, now=now)
            return EngineOutput()
        if not self.is_synced(dpid):
            return EngineOutput()
        # Discovery's work is timed from here for LLDP frames (checked without parsing).
        start = self.work_clock() if data[12:14] == _LLDP_TYPE else None
        label = self.net.topo.label(dpid)
        pkt = frames.parse(data)
        self.metrics.count_packet_in(label, pkt.kind)
        at = PortRef(dpid, in_port)
        if pkt.kind == "lldp":
            sender = frames.parse_lldp(self.signer, pkt.lldp, now=now)
            if sender is None:
                self.metrics.lldp_ignored.labels(switch=label).inc()
                return EngineOutput()
            out = self.net.lldp_received(tx=PortRef(*sender), rx=at, now=now)
            if start is not None and not out.notices and not out.programs:  # a link seen again
                self.net.lldp.work(self.work_clock() - start)
        elif pkt.kind == "arp":
            out = self.net.arp_received(
                at=at,
                opcode=pkt.arp_op,
                src_mac=pkt.eth_src,
                src_ip=pkt.arp_src_ip,
                dst_ip=pkt.arp_dst_ip,
                data=data,
                now=now,
            )
        elif pkt.kind == "ipv4" and _is_trap(cookie):
            ft = FiveTuple(pkt.ip_src, pkt.ip_dst, pkt.ip_proto, pkt.src_port, pkt.dst_port)
            out = self.placer.packet_in(
                at=at, ft=ft, dscp=pkt.dscp, src_mac=pkt.eth_src, data=data, now=now
            )
        elif pkt.kind == "ipv4":
            out = self.net.unicast_missed(
                at=at,
                src_mac=pkt.eth_src,
                dst_mac=pkt.eth_dst,
                src_ip=pkt.ip_src,
                data=data,
                now=now,
            )
        else:
            return EngineOutput()
        return self._settle(out, now)

    def flow_removed(self, dpid: int, *, cookie: int, idle: bool, now: float) -> EngineOutput:
        return self._settle(self.placer.flow_removed(dpid, cookie, idle=idle, now=now), now)

    def program_confirmed(self, program: Program, *, sent_at: float, now: float) -> EngineOutput:
        """Every phase of ``program`` was confirmed: release what waited for it."""
        if program.phases:
            self.metrics.flow_programming_seconds.observe(now - sent_at)
            if program.reason == "flow-setup" and program.created_at:
                self.metrics.flow_setup_seconds.observe(now - program.created_at)
        if program.done_key is None:
            return EngineOutput()
        if program.done_key[0] == JOB_DONE:
            return EngineOutput(notices=self.jobs.confirmed(program.done_key))
        return EngineOutput(packets=self.placer.program_done(program.done_key))

    # ------------------------------------------------------------ statistics
    def port_stats(
        self, dpid: int, counters: list[tuple[int, PortCounters]], *, more: bool, now: float
    ) -> EngineOutput:
        if self.standby is not None:
            self.standby.port_stats(dpid, counters, more=more, now=now)
            return EngineOutput()
        start = self.work_clock()
        topo = self.net.topo
        events, changed, receiving = self.monitor.port_stats(dpid, counters, now=now, topo=topo)
        self.placer.loads_changed(changed)
        for port in receiving:
            topo.link_alive(PortRef(dpid, port), now=now)  # traffic proves the link
        rtt = self.polls.port.answered(dpid, now, more=more)
        if rtt is not None:
            self.metrics.observe_stats_request("port", rtt)
        out = self.placer.on_congestion(events, now=now)
        for other in self.monitor.to_confirm(topo, dpid):
            # A link just read hot: its next sample, a quarter interval away
            # rather than a whole one, confirms or dismisses the hot spot.
            self.polls.expedite(other, now + CONFIRM_FRACTION * self.polls.interval)
            out.wake_in = CONFIRM_FRACTION * self.polls.interval
        if (hot := [ev.link for ev in events if ev.congested]) and len(self.jobs):
            out.merge(self.jobs.on_links(hot, now=now, reason="congestion"))
        out.notices += [congestion_notice(ev, self.net.topo.link_name) for ev in events]
        if not more:
            out.merge(EngineOutput(heap=self.heap.answered("port", dpid)))
        self.polls.work(self.work_clock() - start, port=not more)
        return self._settle(out, now)

    # ---------------------------------------------------------------- time
    def tick(self, *, now: float) -> EngineOutput:
        """Periodic work: LLDP, link expiry, warm-ups, rebalancing, polls, resyncs."""
        if self.standby is not None:
            if self._reload_due:  # follow what the leader stored (policies, jobs, drains)
                self.follow_store(now=now)
            out = self.standby.tick(now=now)
            out.heap = self.heap.tick(now)
            return out
        out, probes = self.net.tick(now=now)
        out.packets += self._probes(probes, now)
        self.metrics.lldp_interval.set(self.net.lldp.interval)
        self.placer.rounds.gap = self.polls.interval  # a retry waits for the next sample
        out.merge(self.placer.tick(now=now))
        out.merge(self.jobs.tick(now=now))
        self._settle(self._release_holds(out, now), now)
        connected = [d for d in self.net.topo.connected() if self.is_synced(d)]
        interval = self.polls.interval
        polls = self.polls.due(now=now, switches=connected, ingress=self.placer.ingress_switches())
        self._paced_polls(interval)
        for dpid in polls.unanswered:
            label = self.net.topo.label(dpid)
            self.metrics.stats_failures.labels(switch=label).inc()
            log.warning("switch %s did not answer port stats", label)
        out.requests += polls.requests
        reads, stalled = self.sync.due(now=now, connected=self.net.topo.switches)
        for line in stalled:
            log.warning("%s", line)
        out.requests += reads
        self._report_unmatched_overrides(now)
        next_poll = self.polls.next_due()
        if next_poll is not None:
            out.wake_in = max(0.0, next_poll - now)
        out.heap = self.heap.tick(now, polls.requests)
        return out

    def _rebuild(self, now: float, *, warm: StandbyObserver | None = None) -> None:
        """Start over from the store (a takeover or a standby following the leader);
        the parts left behind reference each other: a full collection reclaims them."""
        self._build(now, warm=warm)
        self.heap.collect_soon(now)

    def _probes(self, probes: list[LldpProbe], now: float) -> list[PacketOut]:
        if not probes:
            return []
        start = self.work_clock()
        out = probe_packets(self.signer, probes, now=now)
        self.net.lldp.work(self.work_clock() - start)  # discovery's share of the hub (pacing)
        return out

    def _report_unmatched_overrides(self, now: float) -> None:
        """Once discovery settled, name capacity overrides that match no link (once)."""
        topo = self.net.topo
        settled = now > self.started_at + 4 * self.net.config.link_timeout_s
        if self._reported_unmatched or not topo.links or not settled:
            return
        self._reported_unmatched = True
        for text in self.monitor.capacity.unmatched(topo.links, topo.label):
            log.error("link_capacity_overrides: %r matches no discovered link", text)
            self.metrics.config_errors.labels(kind="unknown-link").inc()

    def _settle(self, out: EngineOutput, now: float) -> EngineOutput:
        """Turn the parts' resync wishes into scheduled table reads."""
        for dpid in out.resync:
            self.sync.schedule_resync(dpid, now=now)
        out.resync.clear()
        return out


_TRAP_TAG = Cookie(CookieKind.CLASS_TRAP).encode() >> 48
_LLDP_TYPE = frames.ETH_LLDP.to_bytes(2, "big")


def _visibility(poll_interval: float) -> float:
    """How long a new flow's demand counts: until its rate is measured, two polls on."""
    return max(3.0, 3 * poll_interval)


def _is_trap(cookie: int) -> bool:
    """Whether ``cookie`` is a class trap's (tag and kind: the top 16 bits)."""
    return cookie >> 48 == _TRAP_TAG
