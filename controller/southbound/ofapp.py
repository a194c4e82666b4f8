"""The OpenFlow shim: the only module that talks to the framework's controller (Ryu or os-ken).

It translates and decides nothing. Each handler decodes one message into
plain data, makes one call on the engine, and sends what comes back. What
stays here is what only a datapath owner can do: encoding and sending
messages, running programs phase by phase with barriers between phases
(make-before-break), and the hub loops (programs, ticks, mailbox). Which
packet is a trap, when to poll or re-read a switch, what to log: all decided
by the engine.

Runs in the hub (eventlet, no monkey patching): only ``hub.sleep`` and green
primitives here, never a blocking stdlib call.
"""

from __future__ import annotations

import logging

import eventlet.hubs

from controller.southbound import ofmsg
from controller.southbound.collector import failure_reaction, tend_heap
from controller.southbound.framework import fw

log = logging.getLogger("fabricd.of")

BARRIER_TIMEOUT_S = 5.0
TICK_S = 0.25
MIN_TICK_S = 0.02

hub = fw.hub
ofp = fw.ofp
set_ev_cls = fw.set_ev_cls
ofp_event = fw.ofp_event
CONFIG, MAIN, DEAD = fw.CONFIG_DISPATCHER, fw.MAIN_DISPATCHER, fw.DEAD_DISPATCHER


class FabricApp(fw.app_base):
    OFP_VERSIONS = [ofp.OFP_VERSION]

    def __init__(self, *args, fabric_hub=None, **kwargs):
        super().__init__(*args, **kwargs)
        if fabric_hub is None:
            raise RuntimeError("FabricApp needs the fabric_hub context (start it with fabricd)")
        self.engine = fabric_hub.engine
        self.mailbox = fabric_hub.mailbox
        self.publisher = fabric_hub.publisher
        self.metrics = fabric_hub.metrics
        self.mono = fabric_hub.clock.mono
        self.dps = {}
        self.barriers = {}
        self.programs = hub.Queue()
        self._wake = hub.Event()  # set when an event handler wants the tick sooner
        # Not in ``self.threads``: the framework joins those at stop without killing them.
        self.loops = [
            hub.spawn(self._program_loop),
            hub.spawn(self._tick_loop),
            hub.spawn(self._mailbox_loop),
        ]

    def stop(self):
        for loop in self.loops:
            hub.kill(loop)
        hub.joinall(self.loops)
        super().stop()

    # ------------------------------------------------------------ sending
    def _send(self, dp, msg):
        dp.set_xid(msg)
        dp.send_msg(msg)
        self.metrics.openflow_messages_sent.labels(type=ofmsg.msg_type(msg)).inc()
        return msg.xid

    def _send_to(self, dpid, msg_for):
        dp = self.dps.get(dpid)
        if dp is not None:
            self._send(dp, msg_for(dp))

    def execute(self, out):
        """Send an engine output: requests and packets now, programs in order.

        A controller that may not write (a cluster standby, or a leader whose
        lease may have lapsed) sends only requests (roles, reads). The engine's
        collector policy (``out.heap``) is carried out first."""
        tend_heap(out.heap)
        for req in out.requests:
            self._send_to(req.dpid, lambda dp, req=req: ofmsg.request_to_msg(dp, req))
        if not self.engine.writes_allowed(self.mono()):
            self.publisher.absorb(out)
            return
        for dpid, ops in out.immediate:
            if self.engine.is_synced(dpid):
                for op in ops:
                    self._send_to(dpid, lambda dp, op=op: ofmsg.op_to_msg(dp, op))
        for program in out.urgent:
            self._send_urgent(program)
        for pkt in out.packets:
            self._send_to(pkt.dpid, lambda dp, pkt=pkt: ofmsg.packet_out_to_msg(dp, pkt))
        if out.programs or out.packets_after:
            self.programs.put((out.programs, out.packets_after))
        self.publisher.absorb(out)

    def _program_loop(self):
        while True:
            programs, after = self.programs.get()
            try:
                for program in programs:
                    sent_at = self.mono()
                    self._run_program(program)
                    self.execute(
                        self.engine.program_confirmed(program, sent_at=sent_at, now=self.mono())
                    )
                for pkt in after:
                    self._send_to(pkt.dpid, lambda dp, pkt=pkt: ofmsg.packet_out_to_msg(dp, pkt))
            except Exception:  # a bug must not stop all future programming
                log.exception("programming failed")

    def _run_program(self, program):
        for phase in program.phases:
            if not self.engine.writes_allowed(self.mono()):
                return  # leadership lost mid-program: the next leader reconciles
            self._await_barriers(self._send_ops(phase.ops))

    def _send_ops(self, ops_by_switch):
        """Send each synced switch its operations and a barrier; returns the waits."""
        waits = []
        for dpid, ops in ops_by_switch.items():
            dp = self.dps.get(dpid)
            if dp is None or not self.engine.is_synced(dpid):
                continue
            for op in ops:
                self._send(dp, ofmsg.op_to_msg(dp, op))
            waits.append(self._barrier(dp))
        return waits

    def _await_barriers(self, waits):
        for dpid, xid, ev in waits:
            if not ev.wait(timeout=BARRIER_TIMEOUT_S):
                self.execute(self.engine.barrier_timeout(dpid, now=self.mono()))
            self.barriers.pop((dpid, xid), None)

    def _send_urgent(self, program):
        """A program on one switch: sent now, ahead of the queue, phases joined by
        barriers; confirmed to the engine when its last barrier is answered."""
        sent_at = self.mono()
        waits = self._send_ops(program.joined())

        def confirm():
            self._await_barriers(waits)
            self.execute(self.engine.program_confirmed(program, sent_at=sent_at, now=self.mono()))

        hub.spawn(confirm)

    def _barrier(self, dp):
        ev = hub.Event()
        xid = self._send(dp, ofmsg.barrier_msg(dp))
        self.barriers[(dp.id, xid)] = ev
        return dp.id, xid, ev

    # ------------------------------------------------------ switch lifecycle
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG)
    def _features(self, ev):
        dp = ev.msg.datapath
        self.dps[dp.id] = dp
        self._send(dp, ofmsg.set_config_msg(dp))
        self.execute(self.engine.switch_features(dp.id, now=self.mono()))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN)
    def _port_desc(self, ev):
        msg = ev.msg
        ports = [ofmsg.port_from_desc(p) for p in msg.body]
        more = ofmsg.more_follows(msg)
        self.execute(self.engine.port_desc(msg.datapath.id, ports, more=more, now=self.mono()))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN)
    def _flow_stats(self, ev):
        msg = ev.msg
        stats, more = ofmsg.flow_stats(msg.body), ofmsg.more_follows(msg)
        self.execute(self.engine.flow_stats(msg.datapath.id, stats, more=more, now=self.mono()))

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN)
    def _group_desc(self, ev):
        msg = ev.msg
        groups = [g for g in map(ofmsg.group_from_desc, msg.body) if g is not None]
        more = ofmsg.more_follows(msg)
        self.execute(self.engine.group_desc(msg.datapath.id, groups, more=more, now=self.mono()))

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN)
    def _meter_config(self, ev):
        msg = ev.msg
        meters = [m for m in map(ofmsg.meter_from_config, msg.body) if m is not None]
        more = ofmsg.more_follows(msg)
        self.execute(self.engine.meter_config(msg.datapath.id, meters, more=more, now=self.mono()))

    @set_ev_cls(ofp_event.EventOFPStateChange, [DEAD])
    def _state_change(self, ev):
        dp = ev.datapath
        if dp.id is None or self.dps.get(dp.id) is not dp:
            return  # an older connection of a switch that reconnected
        del self.dps[dp.id]
        for key, waiter in list(self.barriers.items()):
            if key[0] == dp.id:
                waiter.set()
        with failure_reaction(self.engine.heap.enabled):
            out = self.engine.switch_disconnected(dp.id, now=self.mono())
        self.execute(out)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN)
    def _port_status(self, ev):
        msg = ev.msg
        port, deleted = ofmsg.port_from_desc(msg.desc), ofmsg.is_port_deleted(msg)
        with failure_reaction(self.engine.heap.enabled):
            out = self.engine.port_status(msg.datapath.id, port, deleted=deleted, now=self.mono())
        self.execute(out)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN)
    def _barrier_reply(self, ev):
        waiter = self.barriers.get((ev.msg.datapath.id, ev.msg.xid))
        if waiter is not None:
            waiter.set()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG, MAIN])
    def _error(self, ev):
        msg = ev.msg
        error = ofmsg.switch_error(msg)
        self.execute(self.engine.switch_error(msg.datapath.id or 0, error, now=self.mono()))

    # ------------------------------------------------------------ packet-in
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN)
    def _packet_in(self, ev):
        msg = ev.msg
        out = self.engine.packet_in(
            msg.datapath.id,
            in_port=msg.match["in_port"],
            cookie=msg.cookie,
            data=msg.data,
            now=self.mono(),
        )
        self.execute(out)
        # Let the programmer and timers run between packet-ins: under a storm the
        # event loop would otherwise starve them (eventlet is cooperative), and
        # barrier replies would wait while the storm grows.
        hub.sleep(0)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN)
    def _flow_removed(self, ev):
        msg = ev.msg
        idle = ofmsg.is_idle_removal(msg)
        self.execute(
            self.engine.flow_removed(msg.datapath.id, cookie=msg.cookie, idle=idle, now=self.mono())
        )

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN)
    def _port_stats(self, ev):
        msg = ev.msg
        counters, more = ofmsg.port_counters(msg.body), ofmsg.more_follows(msg)
        out = self.engine.port_stats(msg.datapath.id, counters, more=more, now=self.mono())
        self.execute(out)
        if out.wake_in is not None and out.wake_in < TICK_S:
            self._wake.set()  # a hot link is to be sampled again before the next tick

    # ---------------------------------------------------------------- loops
    def _tick_loop(self):
        while True:
            delay = TICK_S
            try:
                out = self.engine.tick(now=self.mono())
                self.execute(out)
                self.publisher.publish()
                self.publisher.set_ready()
                if out.wake_in is not None:
                    delay = min(TICK_S, max(MIN_TICK_S, out.wake_in))
            except Exception:
                log.exception("periodic work failed")
            self._wake.wait(timeout=delay)
            self._wake.clear()

    def _mailbox_loop(self):
        fd = self.mailbox.fileno()
        while not self.mailbox.closed:
            try:
                eventlet.hubs.trampoline(fd, read=True)
            except Exception:
                if self.mailbox.closed:
                    return
                raise
            if self.mailbox.closed:
                return  # closed while this loop waited: shutting down
            if self.mailbox.run_pending(self._finish):
                self.publisher.publish()

    def _finish(self, done):
        """A command ran in the hub: send its output and publish the views, then
        answer its caller (who may read its own write at once)."""
        self.execute(done.output)
        self.publisher.publish()
        return done.result
