"""The Ryu application: the only module that talks to ``ryu.controller``.

It translates, and decides nothing: OpenFlow events become calls on the core
(through the runtime), and what the core returns becomes OpenFlow messages.
Programs run one after another in a single green thread, phase by phase,
with barriers between phases (make-before-break).

Runs in the hub (eventlet, no monkey patching): only ``hub.sleep`` and green
primitives here, never a blocking stdlib call.
"""

from __future__ import annotations

import logging
import random

import eventlet.hubs
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller.engine.outputs import ArpReply, EngineOutput, PacketOut
from controller.engine.placement import FlowSample
from controller.fabric import frames as packets
from controller.fabric.lldp_auth import LldpSigner
from controller.fabric.model import FiveTuple, Port, PortRef
from controller.flowprog.entries import Cookie, CookieKind
from controller.flowprog.flowrules import FLOW_COOKIE_MASK, FLOW_KIND_COOKIE
from controller.flowprog.tables import SwitchTable
from controller.southbound import ofmsg
from controller.telemetry import PortCounters

log = logging.getLogger("fabricd.of")

BARRIER_TIMEOUT_S = 5.0
SYNC_TIMEOUT_S = 10.0
TICK_S = 0.25


class _Sync:
    """Replies we wait for after a switch connects, before the core hears of it."""

    def __init__(self):
        self.ports: list[Port] = []
        self.name = ""
        self.table = SwitchTable()
        self.waiting = {"ports"}
        self.started = 0.0


class FabricApp(app_manager.RyuApp):
    OFP_VERSIONS = [ofp.OFP_VERSION]

    def __init__(self, *args, fabric_runtime=None, **kwargs):
        super().__init__(*args, **kwargs)
        if fabric_runtime is None:
            raise RuntimeError("FabricApp needs the fabric_runtime context (start it with fabricd)")
        self.rt = fabric_runtime
        self.core = fabric_runtime.core
        self.ctl = fabric_runtime.ctl
        self.metrics = fabric_runtime.metrics
        self.clock = fabric_runtime.clock
        self.signer = LldpSigner(max_age_s=max(10.0, 5 * fabric_runtime.config.lldp_interval))
        self.dps = {}
        self.syncs: dict[int, _Sync] = {}
        self.barriers: dict[tuple[int, int], hub.Event] = {}
        self.stats_sent: dict[tuple[int, int], float] = {}
        self.jobs = hub.Queue()
        self.resync_due: dict[int, float] = {}
        self.errors_logged: set = set()
        fabric_runtime.attach(self.execute)
        self._threads = [
            hub.spawn(self._program_loop),
            hub.spawn(self._tick_loop),
            hub.spawn(self._mailbox_loop),
            hub.spawn(self._poll_loop),
        ]

    # ------------------------------------------------------------ sending
    def _send(self, dp, msg):
        dp.set_xid(msg)
        dp.send_msg(msg)
        self.metrics.openflow_messages_sent.labels(type=ofmsg.msg_type(msg)).inc()
        return msg.xid

    def _barrier(self, dp):
        ev = hub.Event()
        xid = self._send(dp, parser.OFPBarrierRequest(dp))
        self.barriers[(dp.id, xid)] = ev
        return dp.id, xid, ev

    def _packet_out(self, pkt: PacketOut):
        dp = self.dps.get(pkt.dpid)
        if dp is None:
            return
        port = pkt.out_port if pkt.out_port is not None else ofp.OFPP_TABLE
        in_port = pkt.in_port if pkt.in_port is not None else ofp.OFPP_CONTROLLER
        msg = parser.OFPPacketOut(
            datapath=dp,
            buffer_id=ofp.OFP_NO_BUFFER,
            in_port=in_port,
            actions=[parser.OFPActionOutput(port, 0)],
            data=pkt.data,
        )
        self._send(dp, msg)

    def _send_packet(self, item):
        if isinstance(item, ArpReply):
            data = packets.build_arp_reply(
                target_mac=item.target_mac,
                target_ip=item.target_ip,
                requester_mac=item.requester_mac,
                requester_ip=item.requester_ip,
            )
            self._packet_out(PacketOut(dpid=item.dpid, data=data, out_port=item.port))
        else:
            self._packet_out(item)

    def execute(self, out: EngineOutput):
        """Send what the core decided: packets now, programs in order."""
        self.rt.absorb(out)
        for dpid in out.resync:
            self._schedule_resync(dpid)
        for dpid, ops in out.immediate:
            dp = self.dps.get(dpid)
            if dp is not None and self.core.prog.is_synced(dpid):
                for op in ops:
                    self._send(dp, ofmsg.op_to_msg(dp, op))
        for item in out.packets:
            self._send_packet(item)
        if out.programs or out.packets_after:
            self.jobs.put((out.programs, out.packets_after))

    def _program_loop(self):
        while True:
            programs, after = self.jobs.get()
            try:
                for program in programs:
                    self._run_program(program)
                    if program.done_key is not None:
                        for pkt in self.ctl.flows.program_done(program.done_key):
                            self._packet_out(pkt)
                for pkt in after:
                    self._packet_out(pkt)
            except Exception:  # a bug must not stop all future programming
                log.exception("programming failed")

    def _run_program(self, program):
        start = self.clock.mono()
        for phase in program.phases:
            waits = []
            for dpid, ops in phase.ops.items():
                dp = self.dps.get(dpid)
                if dp is None or not self.core.prog.is_synced(dpid):
                    continue
                for op in ops:
                    self._send(dp, ofmsg.op_to_msg(dp, op))
                waits.append(self._barrier(dp))
            for dpid, xid, ev in waits:
                if not ev.wait(timeout=BARRIER_TIMEOUT_S):
                    log.warning(
                        "switch %016x did not confirm a barrier in %.0f s", dpid, BARRIER_TIMEOUT_S
                    )
                    self._schedule_resync(dpid)
                self.barriers.pop((dpid, xid), None)
        if program.phases:
            done = self.clock.mono()
            self.metrics.flow_programming_seconds.observe(done - start)
            if program.reason == "flow-setup" and program.created_at:
                self.metrics.flow_setup_seconds.observe(done - program.created_at)

    # ------------------------------------------------------ switch lifecycle
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        dp = ev.msg.datapath
        self.dps[dp.id] = dp
        self._send(dp, parser.OFPSetConfig(dp, ofp.OFPC_FRAG_NORMAL, ofp.OFPCML_NO_BUFFER))
        self._start_sync(dp)

    def _start_sync(self, dp):
        sync = _Sync()
        sync.started = self.clock.mono()
        self.syncs[dp.id] = sync
        self._send(dp, parser.OFPPortDescStatsRequest(dp, 0))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev):
        dp = ev.msg.datapath
        sync = self.syncs.get(dp.id)
        if sync is None or "ports" not in sync.waiting:
            return
        for p in ev.msg.body:
            if p.port_no == ofp.OFPP_LOCAL:
                sync.name = _text(p.name)
            sync.ports.append(_port(p))
        if ev.msg.flags & ofp.OFPMPF_REPLY_MORE:
            return
        sync.waiting = {"flows", "groups", "meters"}
        self._send(dp, parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY))
        self._send(dp, parser.OFPGroupDescStatsRequest(dp, 0))
        self._send(dp, parser.OFPMeterConfigStatsRequest(dp, 0, ofp.OFPM_ALL))

    def _collect(self, ev, part, entries):
        """Fold one reply of a switch's table dump into its pending sync.

        Returns False when no sync waits for ``part`` (the reply is not ours)."""
        dp = ev.msg.datapath
        sync = self.syncs.get(dp.id)
        if sync is None or part not in sync.waiting:
            return False
        store = getattr(sync.table, part)
        for key, value in entries:
            store[key] = value
        if not ev.msg.flags & ofp.OFPMPF_REPLY_MORE:
            self._sync_part_done(dp, part)
        return True

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        entries = ((e.key, e) for e in map(ofmsg.flow_from_stats, ev.msg.body))
        if not self._collect(ev, "flows", entries):
            self._flow_stats_sample(ev)

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def _group_desc(self, ev):
        groups = filter(None, map(ofmsg.group_from_desc, ev.msg.body))
        self._collect(ev, "groups", ((g.group_id, g) for g in groups))

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    def _meter_config(self, ev):
        meters = filter(None, map(ofmsg.meter_from_config, ev.msg.body))
        self._collect(ev, "meters", ((m.meter_id, m) for m in meters))

    def _sync_part_done(self, dp, part):
        sync = self.syncs.get(dp.id)
        if sync is None:
            return
        sync.waiting.discard(part)
        if sync.waiting:
            return
        del self.syncs[dp.id]
        now = self.clock.mono()
        if self.core.prog.is_synced(dp.id):  # a resync of a connected switch
            out = self.core.resync(dp.id, reported=sync.table, now=now)
        else:
            out = self.core.switch_connected(
                dp.id, name=sync.name, ports=sync.ports, reported=sync.table, now=now
            )
            log.info(
                "switch %s (%016x) connected: %d ports, %d flows, %d groups kept by the switch",
                sync.name or "?",
                dp.id,
                len(sync.ports),
                len(sync.table.flows),
                len(sync.table.groups),
            )
        self.execute(out)

    @set_ev_cls(ofp_event.EventOFPStateChange, [DEAD_DISPATCHER])
    def _state_change(self, ev):
        dp = ev.datapath
        if dp.id is None or self.dps.get(dp.id) is not dp:
            return
        del self.dps[dp.id]
        self.syncs.pop(dp.id, None)
        for key, waiter in list(self.barriers.items()):
            if key[0] == dp.id:
                waiter.set()
        log.info("switch %s (%016x) disconnected", self.core.topo.label(dp.id), dp.id)
        self.rt.monitor.switch_gone(dp.id)
        self.execute(self.core.switch_disconnected(dp.id, now=self.clock.mono()))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        msg = ev.msg
        dp = msg.datapath
        if not self.core.prog.is_synced(dp.id):
            return  # the sync in progress will report current port state
        port = _port(msg.desc)
        deleted = msg.reason == ofp.OFPPR_DELETE
        self.execute(self.core.port_status(dp.id, port, deleted=deleted, now=self.clock.mono()))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        waiter = self.barriers.get((ev.msg.datapath.id, ev.msg.xid))
        if waiter is not None:
            waiter.set()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        msg = ev.msg
        dpid = msg.datapath.id
        kind = _error_name(msg.type)
        self.metrics.openflow_errors.labels(type=kind).inc()
        key = (dpid, msg.type, msg.code)
        if key not in self.errors_logged:
            self.errors_logged.add(key)
            log.error(
                "switch %016x reported %s code %d (xid %d)", dpid or 0, kind, msg.code, msg.xid
            )
        sync = self.syncs.get(dpid)
        if sync is not None and msg.type == ofp.OFPET_BAD_REQUEST and "meters" in sync.waiting:
            self._sync_part_done(msg.datapath, "meters")  # a switch without meters
            return
        self._schedule_resync(dpid)

    def _schedule_resync(self, dpid):
        self.resync_due.setdefault(dpid, self.clock.mono() + 1.0)

    # ------------------------------------------------------------ packet-in
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        if not self.core.prog.is_synced(dp.id):
            return
        in_port = msg.match["in_port"]
        at = PortRef(dp.id, in_port)
        now = self.clock.mono()
        try:
            pkt = packets.parse(msg.data)
        except Exception:  # malformed frames from a host must not hurt the hub
            self.metrics.count_packet_in(self.core.topo.label(dp.id), "other")
            return
        self.metrics.count_packet_in(self.core.topo.label(dp.id), pkt.kind)
        if pkt.kind == "lldp":
            sender = packets.parse_lldp(self.signer, pkt.lldp, now=now)
            if sender is None:
                self.metrics.lldp_ignored.labels(switch=self.core.topo.label(dp.id)).inc()
                return
            out = self.core.lldp_received(tx=PortRef(*sender), rx=at, now=now)
        elif pkt.kind == "arp":
            out = self.core.arp_received(
                at=at,
                opcode=pkt.arp_op,
                src_mac=pkt.eth_src,
                src_ip=pkt.arp_src_ip,
                dst_ip=pkt.arp_dst_ip,
                data=msg.data,
                now=now,
            )
        elif pkt.kind == "ipv4":
            cookie = Cookie.decode(msg.cookie)
            if cookie is not None and cookie.kind is CookieKind.CLASS_TRAP:
                ft = FiveTuple(pkt.ip_src, pkt.ip_dst, pkt.ip_proto, pkt.src_port, pkt.dst_port)
                out = self.ctl.trapped_packet(
                    at=at,
                    ft=ft,
                    dscp=pkt.dscp,
                    src_mac=pkt.eth_src,
                    dst_mac=pkt.eth_dst,
                    data=msg.data,
                    now=now,
                )
            else:
                out = self.core.unicast_missed(
                    at=at,
                    src_mac=pkt.eth_src,
                    dst_mac=pkt.eth_dst,
                    src_ip=pkt.ip_src,
                    data=msg.data,
                    now=now,
                )
        else:
            return
        self.execute(out)
        # Let the programmer and timers run between packet-ins: under a storm the
        # event loop would otherwise starve them (eventlet is cooperative), and
        # barrier replies would wait while the storm grows.
        hub.sleep(0)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        msg = ev.msg
        idle = msg.reason == ofp.OFPRR_IDLE_TIMEOUT
        self.execute(
            self.ctl.flows.flow_removed(
                msg.datapath.id, msg.cookie, idle=idle, now=self.clock.mono()
            )
        )

    # ----------------------------------------------------------- statistics
    def _poll_loop(self):
        interval = self.rt.config.poll_interval
        next_poll: dict[int, float] = {}
        while True:
            hub.sleep(min(interval / 4, 0.25))
            now = self.clock.mono()
            ingress = self.ctl.flows.ingress_switches()
            for dpid, dp in list(self.dps.items()):
                if not self.core.prog.is_synced(dpid):
                    continue
                due = next_poll.setdefault(dpid, now + random.uniform(0, interval))
                if now < due:
                    continue
                # Jitter keeps switches from being polled in lockstep.
                next_poll[dpid] = now + interval * random.uniform(0.9, 1.1)
                self._request_stats(dp, now, flows=dpid in ingress)
            for dpid in list(next_poll):
                if dpid not in self.dps:
                    del next_poll[dpid]

    def _request_stats(self, dp, now, *, flows):
        key = (dp.id, 0)
        sent = self.stats_sent.get(key)
        if sent is not None and now - sent < 3 * self.rt.config.poll_interval + 2.0:
            return  # previous request still unanswered: do not pile up
        if sent is not None:
            self.metrics.stats_failures.labels(switch=self.core.topo.label(dp.id)).inc()
            log.warning("switch %s did not answer port stats", self.core.topo.label(dp.id))
        self.stats_sent[key] = now
        self._send(dp, parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY))
        if flows:  # the switch is the ingress of placed flows: their rates
            self.stats_sent[(dp.id, 1)] = now
            self._send(
                dp,
                parser.OFPFlowStatsRequest(
                    dp,
                    0,
                    ofp.OFPTT_ALL,
                    ofp.OFPP_ANY,
                    ofp.OFPG_ANY,
                    FLOW_KIND_COOKIE,
                    FLOW_COOKIE_MASK,
                ),
            )

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev):
        dp = ev.msg.datapath
        now = self.clock.mono()
        sent = self.stats_sent.get((dp.id, 0))
        batch = [
            (
                s.port_no,
                PortCounters(
                    rx_bytes=s.rx_bytes,
                    tx_bytes=s.tx_bytes,
                    rx_packets=s.rx_packets,
                    tx_packets=s.tx_packets,
                    rx_dropped=s.rx_dropped,
                    tx_dropped=s.tx_dropped,
                    rx_errors=s.rx_errors,
                    tx_errors=s.tx_errors,
                ),
            )
            for s in ev.msg.body
            if s.port_no < ofp.OFPP_MAX
        ]
        out, congestion = self.ctl.port_stats(dp.id, batch, now=now)
        if not ev.msg.flags & ofp.OFPMPF_REPLY_MORE:
            if sent is not None:
                self.metrics.observe_stats_request("port", now - sent)
            self.stats_sent.pop((dp.id, 0), None)
        self.rt.congestion(congestion)
        self.execute(out)

    def _flow_stats_sample(self, ev):
        dpid = ev.msg.datapath.id
        now = self.clock.mono()
        samples = [FlowSample(s.cookie, s.byte_count) for s in ev.msg.body]
        self.ctl.flow_stats(dpid, samples, now=now)
        sent = self.stats_sent.pop((dpid, 1), None)
        if sent is not None and not ev.msg.flags & ofp.OFPMPF_REPLY_MORE:
            self.metrics.observe_stats_request("flow", now - sent)

    # ---------------------------------------------------------------- loops
    def _tick_loop(self):
        announced = False
        while True:
            hub.sleep(TICK_S)
            try:
                self._tick()
                if not announced:
                    announced = True
                    self.rt.set_ready()
            except Exception:
                log.exception("periodic work failed")

    def _tick(self):
        now = self.clock.mono()
        out, probes = self.core.tick(now=now)
        for probe in probes:
            data = packets.build_lldp(
                self.signer,
                dpid=probe.port.dpid,
                port=probe.port.port,
                hw_addr=probe.hw_addr,
                now=now,
            )
            self._packet_out(PacketOut(dpid=probe.port.dpid, data=data, out_port=probe.port.port))
        self.execute(out)
        self.execute(self.ctl.tick(now=now))
        for dpid, due in list(self.resync_due.items()):
            if now >= due:
                del self.resync_due[dpid]
                dp = self.dps.get(dpid)
                if dp is not None and dpid not in self.syncs:
                    log.info("re-reading the tables of switch %016x to reconcile", dpid)
                    self._start_sync(dp)
        for dpid, sync in list(self.syncs.items()):
            if now - sync.started > SYNC_TIMEOUT_S:
                log.warning("switch %016x did not report its tables; retrying", dpid)
                dp = self.dps.get(dpid)
                del self.syncs[dpid]
                if dp is not None:
                    self._start_sync(dp)
        if self.core.topo.links and now > self.rt.started_at + 4 * self.core.config.link_timeout_s:
            self.rt.report_unmatched_overrides()
        self.rt.publish()

    def _mailbox_loop(self):
        fd = self.rt.mailbox.fileno()
        while not self.rt.mailbox.closed:
            try:
                eventlet.hubs.trampoline(fd, read=True)
            except Exception:
                if self.rt.mailbox.closed:
                    return
                raise
            if self.rt.mailbox.run_pending():
                self.rt.publish(force=True)


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _port(p) -> Port:
    up = not (p.state & ofp.OFPPS_LINK_DOWN) and not (p.config & ofp.OFPPC_PORT_DOWN)
    return Port(
        port_no=p.port_no,
        name=_text(p.name),
        hw_addr=p.hw_addr,
        up=up,
        speed_bps=float(p.curr_speed) * 1000.0,
    )


_ERROR_NAMES = {
    getattr(ofp, n): n.removeprefix("OFPET_").lower() for n in dir(ofp) if n.startswith("OFPET_")
}


def _error_name(code) -> str:
    return _ERROR_NAMES.get(code, "unknown")
