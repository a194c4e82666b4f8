"""FlowPlacer: per-flow placement and movement of policy-governed (AI) flows.

Hub-owned glue between the traffic engineer (which decides paths) and the
flow programmer (which turns paths into rules): the first packet of a new
flow arrives from a class trap, is placed, its rules are installed
make-before-break, and the packet is released through the new rules. Link
failures, drains, congestion, rebalancing rounds and policy changes become
moves, each programmed the same way. Flows that go idle expire on the switch
and are forgotten here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable

from controller.engine.budget import TokenBucket
from controller.engine.connectivity import Connectivity
from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import EngineOutput, EventKind, Notice, PacketOut
from controller.engine.provisional import ahead_of
from controller.engine.rounds import RoundSchedule, releases
from controller.errors import FailedPrecondition
from controller.fabric.events import FabricEvent, LinkDown, LinkUp, SwitchDown
from controller.fabric.model import Dpid, FiveTuple, Host, LinkId, PortRef
from controller.flowprog.entries import Action, Cookie, CookieKind, Output
from controller.flowprog.flowrules import FlowRules, compile_flow
from controller.flowprog.forwarding import host_route_key
from controller.flowprog.plan import Barrier, FlowAdd, Program, egress_order
from controller.flowprog.tables import OwnerNeeds
from controller.policy.book import PolicyBook
from controller.policy.model import Policy
from controller.routing.fabricstate import FabricState
from controller.routing.strategies import NetworkView
from controller.te.engineer import Move, Placement, TrafficEngineer
from controller.te.flowtable import TrackedFlow
from controller.te.results import Outcome, routing_identity
from controller.telemetry import CongestionEvent

__all__ = ["FlowPlacer", "FlowSample"]

log = logging.getLogger("fabricd.flows")

HOLD_PACKETS = 256  # packets kept per flow while its rules are being installed
STRAYS_PER_TICK = 16  # trapped packets of an installed flow re-injected per tick
STRAY_GRACE_S = 2.0  # after its ingress rule was sent, a flow's trapped packets are in flight


# One entry of a flow-stats reply, reduced to what rates need: (cookie, byte count).
# A plain tuple: the engine makes one per placed flow per poll.
FlowSample = tuple[int, int]


class FlowPlacer:
    def __init__(
        self,
        net: Connectivity,
        monitor: LinkMonitor,
        *,
        book: Callable[[], PolicyBook],
        engineer: TrafficEngineer,
        setup_budget: int = 500,
        default_rebalance_s: float = 2.0,
        failover_groups: bool = True,
        local_repair: bool = True,
    ) -> None:
        self.net = net
        self.monitor = monitor
        self.book = book
        self.te = engineer
        self.budget = TokenBucket(setup_budget)
        self.default_rebalance_s = default_rebalance_s
        self.failover_groups = failover_groups
        self.local_repair = local_repair
        self.rounds = RoundSchedule()
        self._bytes: dict[int, tuple[int, int, float]] = {}  # flow id -> (generation, bytes, t)
        self._held: dict[int, list[PacketOut]] = {}  # packets of flows whose rules are pending
        self._strays: dict[int, int] = {}  # trapped packets of ready flows since the last tick
        self._ruled_at: dict[int, float] = {}  # when the flow's first ingress rule was sent
        self.counters: dict[str, int] = {}
        # One placement state, updated as things happen: per-flow work reads it in
        # O(path) instead of building a view of every link for every flow.
        topo = net.topo
        self.state = FabricState.of_fabric(topo.switches.values(), topo.links.values())
        self._state_version = -1  # the state's topology version at the previous tick
        for lid in topo.drained:
            self.state.set_drained(lid, True)
        net.listeners.append(self.on_fabric_events)

    # ---------------------------------------------------------------- views
    def view(self) -> FabricState:
        """What placement reads: the state kept up to date by events and counters."""
        return self.state

    def loads_changed(self, links: Iterable[LinkId]) -> None:
        """New loads of ``links`` (a port-stats reply's): into the placement state."""
        loads = self.monitor.loads_of(links)
        self.state.set_loads({lid: load.rate_bps for lid, load in loads.items()})

    def network_view(self) -> NetworkView:
        """A full snapshot for whole-fabric work (joint job placement, explanations)."""
        topo = self.net.topo
        loads = self.monitor.loads(topo)
        return NetworkView(
            graph=topo.graph(),
            capacity={lid: load.capacity_bps for lid, load in loads.items()},
            load_bps={lid: load.rate_bps for lid, load in loads.items()},
            drained=frozenset(topo.drained),
            names={dpid: sw.name for dpid, sw in topo.switches.items() if sw.name},
        )

    # ------------------------------------------------------------ new flows
    def packet_in(
        self, *, at: PortRef, ft: FiveTuple, dscp: int, src_mac: str, data: bytes, now: float
    ) -> EngineOutput:
        """First packet(s) of a policy-governed flow, sent up by a class trap."""
        out = self.net.learn_host(mac=src_mac, ipv4=ft.src_ip, at=at, now=now)
        packet = PacketOut(dpid=at.dpid, data=data, in_port=at.port)
        existing = self.te.flow_by_five_tuple(ft)
        if existing is not None:
            return self._hold_or_release(existing, packet, out, now)
        admitted = self._admit(ft, dscp=dscp, now=now)
        if admitted is None:
            return out
        policy, dst = admitted
        try:
            placement = self.te.place(
                ft,
                dscp=dscp,
                ingress=at,
                egress=dst.attach,
                policy=policy,
                view=self.view(),
                now=now,
            )
        except FailedPrecondition:
            self._count("no-path")
            return out
        out.merge(self._install_new(placement.flow, policy, dst, packet, now))
        out.notices += self._placed_notices(placement, policy)
        return out

    def _admit(self, ft: FiveTuple, *, dscp: int, now: float) -> tuple[Policy, Host] | None:
        """The governing policy and destination of a new flow, if it may be placed now."""
        policy = self.book().governing(ft, dscp=dscp)
        dst = self.net.topo.host_by_ip(ft.dst_ip)
        if policy is None or policy.is_catch_all or dst is None:
            self._count("unplaceable")
            return None
        if not self.budget.take(now):
            self._count("shed")
            return None
        return policy, dst

    def _install_new(
        self, flow: TrackedFlow, policy: Policy, dst: Host, packet: PacketOut, now: float
    ) -> EngineOutput:
        """Rules for a just-placed flow, and what happens to its first packet.

        When the flow needs rules on its ingress switch only (on a 2-tier fabric
        the other hops' host routes already take it), they go at once, not queued
        behind other programs, and the packet right after them. Otherwise the
        placed path is programmed make-before-break (ingress rule last), and ahead
        of it go a provisional ingress rule forwarding as the default route does,
        a barrier and the packet: the flow's packets stop meeting the trap at
        once. Without a default route yet, the packet waits until the placed
        rules are confirmed.
        """
        out = EngineOutput()
        self._ruled_at[flow.flow_id] = now
        program = self._program(flow, policy, reason="flow-setup", now=now, dst=dst)
        if program and program.switches() == {flow.ingress.dpid}:
            out.urgent.append(program)
            out.packets.append(packet)
            return out
        route = self._default_route(flow, dst.mac)
        if route is None:
            program.done_key = ("flow-ready", flow.flow_id, flow.generation)
            self._held[flow.flow_id] = [packet]
        else:
            first = ahead_of(program, flow.ingress.dpid, route)
            if first is not None:
                out.immediate.append((flow.ingress.dpid, [FlowAdd(first), Barrier()]))
            out.packets.append(packet)
        out.add_program(program)
        return out

    def _placed_notices(self, placement: Placement, policy: Policy) -> list[Notice]:
        flow = placement.flow
        notices = [
            Notice(
                EventKind.FLOW_PLACED,
                str(flow.flow_id),
                reason=placement.reason,
                attributes=self._flow_attrs(flow),
            )
        ]
        if flow.fell_back:
            notices.append(Notice(EventKind.POLICY_FALLBACK, policy.name, reason=placement.reason))
        return notices

    def _hold_or_release(
        self, flow: TrackedFlow, packet: PacketOut, out: EngineOutput, now: float
    ) -> EngineOutput:
        held = self._held.get(flow.flow_id)
        if held is not None:  # rules not confirmed yet
            if len(held) < HOLD_PACKETS:
                held.append(packet)
            else:
                self._count("hold-overflow")
            return out
        # The rule was sent, yet the packet met the trap: it was in flight (or
        # queued here) before the rule landed; send it through the table again.
        # Long after the rule was sent, a stream of these means the switch lost
        # the rule: re-read its tables instead of bouncing packets.
        if now - self._ruled_at.get(flow.flow_id, now) < STRAY_GRACE_S:
            out.packets_after.append(packet)
            return out
        seen = self._strays.get(flow.flow_id, 0) + 1
        self._strays[flow.flow_id] = seen
        if seen <= STRAYS_PER_TICK:
            out.packets_after.append(packet)
        else:
            self._count("stray")
            out.resync.add(flow.ingress.dpid)
        return out

    def _default_route(self, flow: TrackedFlow, dst_mac: str) -> tuple[Action, ...] | None:
        """What the flow's ingress switch does by default with packets to its host."""
        dpid = flow.ingress.dpid
        if dpid == flow.egress.dpid:
            return (Output(flow.egress.port),)
        route = self.net.prog.desired.table(dpid).flows.get(host_route_key(dst_mac))
        if route is None or not route.actions:
            return None
        return route.actions

    def program_done(self, key: tuple[str, int, int]) -> list[PacketOut]:
        """The shim confirmed a program: packets held for its flow may go."""
        kind, flow_id, _generation = key
        if kind != "flow-ready":
            return []
        return self._held.pop(flow_id, [])

    def _program(
        self, flow: TrackedFlow, policy: Policy, *, reason: str, now: float, dst: Host | None = None
    ) -> Program:
        """The flow's rules, as a make-before-break program (``dst``: its destination
        host when the caller has it, else looked up by address)."""
        rules = self._rules(flow, policy, dst)
        program = self.net.prog.set_owner(
            ("flow", flow.flow_id),
            rules.needs,
            now=now,
            reason=reason,
            egress_first=rules.egress_first,
        )
        program.created_at = now
        return program

    def _rules(self, flow: TrackedFlow, policy: Policy, dst: Host | None = None) -> FlowRules:
        backups = {}
        if self.failover_groups and len(flow.path.switches) > 1:
            ingress = flow.ingress.dpid
            hops = self.state.next_hops(ingress, flow.egress.dpid)
            if lacking := self.net.topo.uplinks_lacking(ingress):  # the spread set's chain
                hops = tuple(sorted(lacking.union(hops)))
            backups = {ingress: hops}
        return compile_flow(
            flow.five_tuple,
            flow_id=flow.flow_id,
            generation=flow.generation,
            path=flow.path,
            egress_port=flow.egress.port,
            idle_timeout=policy.params.idle_timeout_s,
            backup_ports=backups,
            host_facing=self.net.topo.host_facing if self.local_repair else None,
            default_takes=self.net.default_takes(flow.five_tuple.dst_ip, host=dst),
        )

    # ---------------------------------------------------------------- moves
    def _apply_moves(self, moves: Iterable[Move], now: float) -> EngineOutput:
        """The moved flows' rules, one make-before-break program per reason (a lost
        spine moves ~1,700 flows at 64 x 512: each switch gets its new entries of
        all of them, one barrier, the flips, one barrier, the cleanup), and a notice
        per flow."""
        out = EngineOutput()
        batches: dict[str, tuple[dict[Hashable, OwnerNeeds], list[tuple[Dpid, ...]]]] = {}
        for move in moves:
            flow = self.te.flow(move.flow_id)
            policy = self.te.policy_of(move.flow_id)
            if flow is None or policy is None:
                continue
            rules = self._rules(flow, policy)
            needs, orders = batches.setdefault(move.reason, ({}, []))
            needs[("flow", flow.flow_id)] = rules.needs
            orders.append(rules.egress_first)
            topo = self.net.topo
            out.notices.append(
                Notice(
                    EventKind.FLOW_REROUTED,
                    str(flow.flow_id),
                    reason=move.reason,
                    attributes=(
                        *self._flow_attrs(flow),
                        ("from", " -> ".join(topo.label(d) for d in move.old_path.switches)),
                        ("detail", move.detail),
                    ),
                )
            )
        for why, (needs, orders) in batches.items():
            program = self.net.prog.set_owners(
                needs, now=now, reason=f"reroute-{why}", egress_first=egress_order(orders)
            )
            program.created_at = now
            out.add_program(program)
        return out

    def _flow_attrs(self, flow: TrackedFlow) -> tuple[tuple[str, str], ...]:
        label = self.net.topo.label
        return (
            ("five_tuple", str(flow.five_tuple)),
            ("policy", flow.policy),
            ("path", " -> ".join([label(d) for d in flow.path.switches])),
        )

    def _forget(self, flow_ids: Iterable[int], *, now: float, reason: str) -> EngineOutput:
        out = EngineOutput()
        for flow_id in flow_ids:
            flow = self.te.remove(flow_id)
            self._bytes.pop(flow_id, None)
            self._held.pop(flow_id, None)
            self._ruled_at.pop(flow_id, None)
            out.add_program(self.net.prog.drop_owner(("flow", flow_id), now=now, reason=reason))
            if flow is not None:
                out.notices.append(Notice(EventKind.FLOW_EXPIRED, str(flow_id), reason=reason))
        return out

    def on_fabric_events(self, events: list[FabricEvent], now: float) -> EngineOutput:
        down = [e.link for e in events if isinstance(e, LinkDown)]
        up = [e.link for e in events if isinstance(e, LinkUp)]
        topo = self.net.topo
        self.state.apply(events)
        for lid in up:
            self.state.set_capacity(lid, self.monitor.capacity_of(topo, lid))
        for e in events:
            if isinstance(e, LinkDown):
                self.monitor.link_gone(e.link)
        out = EngineOutput()
        if down:
            outcome = self.te.on_links_down(down, self.view(), now)
            out.merge(self._apply_moves(outcome.moves, now))
        if up:
            outcome = self.te.on_links_up(up, self.view(), now)
            out.merge(self._apply_moves(outcome.moves, now))
        if any(isinstance(e, SwitchDown) for e in events):
            self._count("switch-down")
        return out

    def on_congestion(self, events: list[CongestionEvent], *, now: float) -> EngineOutput:
        hot = [e.link for e in events if e.congested]
        if not hot or not len(self.te):
            return EngineOutput()
        outcome = self.te.rebalance(self.view(), now, reason="congestion", hot=hot)
        return self._round_done("congestion", outcome, now, lagging=not outcome.hot)

    def _round_done(
        self, what: str, outcome: Outcome, now: float, *, lagging: bool = False
    ) -> EngineOutput:
        """Log a round, book a retry (see rounds) for the flows it left held on hot
        links, or after the next poll when the planner's load ``lagging`` the event
        showed nothing hot, and apply its moves."""
        self._log_outcome(what, outcome)
        when = releases(self.te, outcome.held, now=now)
        self.rounds.retry(when, lag_from=now if lagging else None)
        return self._apply_moves(outcome.moves, now)

    def tick(self, *, now: float) -> EngineOutput:
        self._strays.clear()
        self._prepare_state()
        due = self.rounds.due(now, self._rebalance_period())
        if due is None or not len(self.te):
            return EngineOutput()
        # Links telemetry reports congested keep that reason even when found by
        # the periodic round (their congestion event may have come while
        # nothing could move yet); other hot spots are plain rebalancing.
        out = EngineOutput()
        if congested := list(self.monitor.congested()):
            outcome = self.te.rebalance(self.view(), now, reason="congestion", hot=congested)
            out.merge(self._round_done("congestion", outcome, now))
        if due == "retry":
            return out
        outcome = self.te.rebalance(self.view(), now, reason="rebalance")
        return out.merge(self._round_done("rebalance", outcome, now))

    def _prepare_state(self) -> None:
        """Once the topology has been still for a tick, build the placement arrays
        here rather than in the next new flow's packet-in (at 64 x 512 the slot
        layout takes about a second). While links keep arriving (discovery) each
        change would make a build here wasted work, so it waits for a still tick."""
        version = self.state.version
        if version == self._state_version:
            self.state.prepare()
        self._state_version = version

    def _log_outcome(self, what: str, outcome: Outcome) -> None:
        level = logging.INFO if outcome.moves else logging.DEBUG
        if (outcome.moves or outcome.hot) and log.isEnabledFor(level):
            hot = ", ".join(self.net.topo.link_name(lid) for lid in outcome.hot)
            log.log(
                level,
                "%s: %d moved, %d stuck, %d held; hot links: %s",
                what,
                len(outcome.moves),
                len(outcome.stuck),
                len(outcome.held),
                hot or "none",
            )

    def _rebalance_period(self) -> float:
        periods = [p.params.rebalance_period_s for p in self.book().all() if not p.is_catch_all]
        return min(periods) if periods else self.default_rebalance_s

    def drain(self, links: Iterable[LinkId], *, now: float) -> EngineOutput:
        drained = list(links)
        for lid in drained:
            self.state.set_drained(lid, True)
        outcome = self.te.drain(drained, self.view(), now)
        return self._apply_moves(outcome.moves, now)

    def undrain(self, links: Iterable[LinkId], *, now: float) -> EngineOutput:
        undrained = list(links)
        for lid in undrained:
            self.state.set_drained(lid, False)
        outcome = self.te.undrain(undrained, self.view(), now)
        return self._apply_moves(outcome.moves, now)

    def policies_changed(self, *, now: float) -> EngineOutput:
        book = self.book()

        def lookup(ft: FiveTuple, dscp: int) -> Policy | None:
            return book.governing(ft, dscp=dscp)

        moves, ungoverned = self.te.policies_changed(lookup, self.view(), now)
        out = self._apply_moves(moves, now)
        return out.merge(self._forget(ungoverned, now=now, reason="policy"))

    def affected_by(self, book: PolicyBook) -> int:
        """How many tracked flows a policy book would re-place or release (dry runs)."""
        count = 0
        for flow in self.te.snapshot():
            new = book.governing(flow.five_tuple, dscp=flow.dscp)
            old = self.te.policy_of(flow.flow_id)
            if new is None or new.is_catch_all or old is None:
                count += 1  # released to default forwarding
            elif routing_identity(new) != routing_identity(old):
                count += 1
        return count

    # ----------------------------------------------------------- switch news
    def flow_removed(self, dpid: int, cookie: int, *, idle: bool, now: float) -> EngineOutput:
        decoded = Cookie.decode(cookie)
        if decoded is None or decoded.kind is not CookieKind.FLOW or not idle:
            return EngineOutput()
        flow = self.te.flow(decoded.flow_id)
        if flow is None or flow.generation != decoded.generation or flow.ingress.dpid != dpid:
            return EngineOutput()  # an older placement's entry, or not the ingress: ignore
        return self._forget([flow.flow_id], now=now, reason="idle")

    def flow_stats(self, dpid: int, samples: Iterable[FlowSample], *, now: float) -> None:
        rates: dict[int, float] = {}
        flow_of, seen = self.te.flow, self._bytes
        for cookie, byte_count in samples:
            parts = Cookie.flow_parts(cookie)
            if parts is None:
                continue
            flow_id, generation = parts
            flow = flow_of(flow_id)
            if flow is None or flow.ingress.dpid != dpid or flow.generation != generation:
                continue
            prev = seen.get(flow_id)
            seen[flow_id] = (generation, byte_count, now)
            if prev is None or prev[0] != generation or byte_count < prev[1]:
                continue  # new placement or replaced entry: counters restarted
            dt = now - prev[2]
            if dt > 0:
                rates[flow_id] = (byte_count - prev[1]) * 8 / dt
        if rates:
            self.te.update_rates(rates, now)

    def ingress_switches(self) -> set[int]:
        return self.te.ingress_switches()

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1
