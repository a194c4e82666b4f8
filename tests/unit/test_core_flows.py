"""Per-flow setup: ingress-only rules at once; else a provisional rule, then the path."""

from __future__ import annotations

from enginelab import EngineLab, LabHost
from synthetic import leaf_spine

from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import EventKind
from controller.engine.placement import FlowPlacer
from controller.fabric.events import LinkDown
from controller.fabric.model import FiveTuple, PortRef
from controller.flowprog.entries import Cookie, CookieKind, GroupEntry, Match
from controller.flowprog.forwarding import PRIO_HOST
from controller.flowprog.plan import Barrier, FlowAdd
from controller.policy.book import PolicyBook
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.te.engineer import TrafficEngineer
from controller.te.flowtable import TrackedFlow
from controller.telemetry import CapacityConfig

AI = Policy(
    name="ai",
    priority=100,
    match=(FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),),
    strategy=Strategy.LEAST_UTILIZED,
)


def ready(spines: int = 2, leaves: int = 2) -> tuple[EngineLab, FlowPlacer]:
    lab = started(spines, leaves)
    return lab, placer(lab)


def started(spines: int, leaves: int) -> EngineLab:
    """A fabric up, its hosts learned, the warm-up over."""
    lab = EngineLab(leaf_spine(spines, leaves))
    lab.start()
    lab.learn_all()
    lab.run_for(lab.net.config.warmup_s)
    return lab


def placer(lab: EngineLab) -> FlowPlacer:
    """A flow placer for the AI policy on the lab's fabric as it is now."""
    monitor = LinkMonitor(capacity=CapacityConfig.from_config(20.0, {}))
    book = PolicyBook([AI])
    return FlowPlacer(lab.net, monitor, book=lambda: book, engineer=TrafficEngineer())


def _forget_spine_routes(lab: EngineLab, dst_mac: str) -> None:
    """As if no spine's route to ``dst_mac`` had been written yet: placed flows then
    need rules on their spine too."""
    key = (0, PRIO_HOST, Match.of(eth_dst=dst_mac))
    leaves = {h.port.dpid for h in lab.hosts}
    for dpid, table in lab.net.prog.installed.items():
        if dpid not in leaves:
            del table.flows[key]


def test_a_flow_needing_rules_on_its_ingress_only_gets_them_at_once_then_its_packet() -> None:
    lab, flows = ready()
    src, dst = lab.hosts[0], lab.hosts[2]  # leaf1 -> leaf2
    ft = FiveTuple(src.ip, dst.ip, 17, 40005, 4791)
    out = flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"first", now=lab.now)

    # No provisional rule and nothing queued: the placed rules (the uplink's failover
    # group, then the ingress rule) go ahead of the queue, and the packet after them.
    assert out.immediate == [] and out.programs == []
    (program,) = out.urgent
    assert program.reason == "flow-setup" and program.switches() == {src.port.dpid}
    ops = program.joined()[src.port.dpid]
    assert isinstance(ops[-1], FlowAdd) and ops[-1].entry.ingress
    assert [p.data for p in out.packets] == [b"first"]
    held = lab.fake.switches[src.port.dpid].flows
    assert ops[-1].entry.key not in held
    lab.fake.apply_ops(src.port.dpid, ops)
    assert held[ops[-1].entry.key].actions == ops[-1].entry.actions
    flow = flows.te.flow_by_five_tuple(ft)
    assert flow is not None
    walk = lab.send(src, dst, udp_src=40005)
    assert walk.only_to(dst.port) and walk.paths == {flow.path.switches}

    # A packet that was in flight meets the trap: released through the table, no new rules.
    again = flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"late", now=lab.now)
    assert again.programs == [] and again.immediate == [] and again.urgent == []
    assert [p.data for p in again.packets_after] == [b"late"]


def test_first_packet_gets_a_provisional_rule_when_the_path_needs_rules_beyond_ingress() -> None:
    lab, flows = ready()
    src, dst = lab.hosts[0], lab.hosts[2]  # leaf1 -> leaf2
    _forget_spine_routes(lab, dst.mac)
    ft = FiveTuple(src.ip, dst.ip, 17, 40000, 4791)
    out = flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"first", now=lab.now)

    # At once: the ingress rule forwarding like the default route, a barrier, the packet.
    assert out.urgent == []
    assert len(out.immediate) == 1
    dpid, ops = out.immediate[0]
    assert dpid == src.port.dpid and isinstance(ops[-1], Barrier)
    provisional = ops[0]
    assert isinstance(provisional, FlowAdd) and provisional.entry.ingress
    route = lab.net.prog.desired.table(dpid).flows[(0, PRIO_HOST, Match.of(eth_dst=dst.mac))]
    assert provisional.entry.actions == route.actions
    assert [p.data for p in out.packets] == [b"first"]
    lab.fake.apply_ops(dpid, ops)
    assert lab.send(src, dst).only_to(dst.port)

    # Then the placed path: built egress-first, the ingress flipped last.
    flow = flows.te.flow_by_five_tuple(ft)
    assert flow is not None
    (program,) = out.programs
    assert program.reason == "flow-setup"
    assert program.switches() == {dpid, flow.path.switches[1]}
    assert list(program.phases[0].ops) == [flow.path.switches[1]]
    flip = [op for op in program.phases[-1].ops.get(dpid, []) if isinstance(op, FlowAdd)]
    assert flip and all(op.entry.ingress for op in flip)
    lab.fake.apply(program)
    walk = lab.send(src, dst)
    assert walk.only_to(dst.port)
    assert walk.paths == {flow.path.switches}


def test_a_flow_within_one_leaf_gets_its_placed_rule_at_once_and_only_once() -> None:
    lab, flows = ready()
    src = lab.hosts[0]
    dst = next(h for h in lab.hosts[1:] if h.port.dpid == src.port.dpid)
    ft = FiveTuple(src.ip, dst.ip, 17, 40002, 4791)
    out = flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"first", now=lab.now)

    # One rule on the one switch, sent at once; nothing provisional, nothing queued.
    assert out.immediate == [] and out.programs == []
    (program,) = out.urgent
    dpid = src.port.dpid
    ((at, ops),) = program.joined().items()
    (rule,) = ops
    assert at == dpid and isinstance(rule, FlowAdd)
    assert rule.entry.ingress and [a.port for a in rule.entry.actions] == [dst.port.port]
    assert [p.data for p in out.packets] == [b"first"]
    lab.fake.apply_ops(dpid, ops)
    walk = lab.send(src, dst, udp_src=40002)
    assert walk.only_to(dst.port) and not walk.reached_controller
    assert lab.fake.switches[dpid].flows[rule.entry.key].actions == rule.entry.actions
    assert lab.net.prog.installed[dpid].flows[rule.entry.key] == rule.entry


def test_a_flow_whose_rules_vanished_triggers_a_resync_not_a_bounce_loop() -> None:
    lab, flows = ready()
    src, dst = lab.hosts[0], lab.hosts[2]
    ft = FiveTuple(src.ip, dst.ip, 17, 40001, 4791)
    flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"x", now=lab.now)
    later = lab.now + 10.0  # long after the rule was sent
    released = resync = 0
    for _ in range(40):
        out = flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"x", now=later)
        released += len(out.packets_after)
        resync += src.port.dpid in out.resync
    assert released < 40 and resync > 0
    assert flows.counters["stray"] == 40 - released


def _place(lab: EngineLab, flows: FlowPlacer, udp_src: int) -> tuple[FiveTuple, int]:
    """A flow from leaf1 to leaf2, its setup applied to the fake switches."""
    src, dst = lab.hosts[0], lab.hosts[2]
    ft = FiveTuple(src.ip, dst.ip, 17, udp_src, 4791)
    out = flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"x", now=lab.now)
    for dpid, ops in out.immediate:
        lab.fake.apply_ops(dpid, ops)
    for program in (*out.urgent, *out.programs):
        lab.fake.apply(program)
    flow = flows.te.flow_by_five_tuple(ft)
    assert flow is not None
    return ft, Cookie(CookieKind.FLOW, flow.flow_id, flow.generation).encode()


def _holding(lab: EngineLab, cookie: int) -> set[int]:
    return {
        d
        for d, sw in lab.fake.switches.items()
        if any(e.cookie == cookie for e in sw.flows.values())
    }


def test_the_ingress_rule_alone_pins_a_path_that_default_forwarding_continues() -> None:
    lab, flows = ready()
    src, dst = lab.hosts[0], lab.hosts[2]
    ft, cookie = _place(lab, flows, 40003)
    flow = flows.te.flow_by_five_tuple(ft)
    assert flow is not None and len(flow.path.switches) == 3
    assert _holding(lab, cookie) == {src.port.dpid}
    walk = lab.send(src, dst, udp_src=40003)
    assert walk.only_to(dst.port) and walk.paths == {flow.path.switches}

    # A move rewrites that one rule; the path's other switches are not touched.
    out = flows.drain([flow.path.links[0]], now=lab.now)
    (program,) = out.programs
    assert {d for phase in program.phases for d in phase.ops} == {src.port.dpid}
    lab.fake.apply(program)
    moved = flows.te.flow_by_five_tuple(ft)
    assert moved is not None and moved.path.switches[1] != flow.path.switches[1]
    walk = lab.send(src, dst, udp_src=40003)
    assert walk.only_to(dst.port) and walk.paths == {moved.path.switches}


def test_a_transit_switch_not_known_to_hold_the_host_route_gets_the_flows_rule() -> None:
    lab, flows = ready()
    src, dst = lab.hosts[0], lab.hosts[2]
    _forget_spine_routes(lab, dst.mac)
    ft, cookie = _place(lab, flows, 40004)
    flow = flows.te.flow_by_five_tuple(ft)
    assert flow is not None
    assert _holding(lab, cookie) == {src.port.dpid, flow.path.switches[1]}
    assert lab.send(src, dst, udp_src=40004).paths == {flow.path.switches}


def test_a_new_flow_is_one_flow_mod_its_failover_chain_is_the_spread_sets() -> None:
    """On a leaf that spreads its default traffic, each uplink's failover chain is
    installed with the spread set: a new flow's ingress rule forwards through that
    very group, so its setup is the one flow-mod (no group to add first, no barrier),
    on whichever uplink it is placed; and a dead uplink's traffic still fails over."""
    lab, flows = ready(spines=4, leaves=3)
    src, dst = lab.hosts[0], lab.hosts[2]
    ingress = src.port.dpid
    uplinks, flow, group, sport = _one_flow_mod_each(lab, flows, src, dst)
    assert len(uplinks) == 4  # least-utilized spread them over every spine
    # The last flow's uplink dies (before the controller hears of it): the switch
    # sends the flow on through the next port of its chain.
    lab.fake.down.add(flow.path.links[0].src)
    backup = group.buckets[1].watch_port
    walk = lab.send(src, dst, udp_src=sport)
    assert walk.only_to(dst.port)
    ((_, second, _),) = walk.paths
    (via,) = [lid.dst.dpid for lid in lab.net.topo.links if lid.src == PortRef(ingress, backup)]
    assert second == via != flow.path.switches[1]


def test_after_a_lost_spine_a_new_flow_is_still_one_flow_mod() -> None:
    """spine4's connection is lost: each leaf's spread set is degraded in place and its
    buckets fail over by its parent's chains, which go round spine4's port too (passed
    by while down). A new flow's chain goes round the same ports, so it is that very
    group again: one flow-mod, on the three spines left."""
    lab = started(4, 3)
    lost = lab.cable("leaf1", "spine4").src.port
    lab.disconnect(lab.dpid("spine4"))
    uplinks, *_ = _one_flow_mod_each(lab, placer(lab), lab.hosts[0], lab.hosts[2])
    assert len(uplinks) == 3 and lost not in uplinks


def _one_flow_mod_each(
    lab: EngineLab, flows: FlowPlacer, src: LabHost, dst: LabHost
) -> tuple[set[int], TrackedFlow, GroupEntry, int]:
    """40 new flows ``src`` -> ``dst``, each set up by one flow-mod whose failover
    chain (4 ports, its primary first) the ingress holds already; each delivered on
    its path. Returns their primary uplinks, and the last flow, its group, its port."""
    ingress = src.port.dpid
    installed = lab.fake.switches[ingress].groups
    uplinks = set()
    for sport in range(40000, 40040):
        ft = FiveTuple(src.ip, dst.ip, 17, sport, 4791)
        out = flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"", now=lab.now)
        (program,) = out.urgent
        (op,) = program.joined()[ingress]
        assert isinstance(op, FlowAdd) and op.entry.ingress
        (action,) = op.entry.actions
        group = installed[action.group_id]  # type: ignore[union-attr]
        flow = flows.te.flow_by_five_tuple(ft)
        assert flow is not None
        primary = flow.path.links[0].src.port
        assert group.buckets[0].watch_port == primary and len(group.buckets) == 4
        uplinks.add(primary)
        lab.fake.apply(program)
        assert lab.send(src, dst, udp_src=sport).paths == {flow.path.switches}
    return uplinks, flow, group, sport


def test_a_failure_moves_its_flows_in_one_program_new_paths_built_before_any_flip() -> None:
    """The flows a lost link moves are programmed together: every new path's entries
    and groups on every switch, then every ingress flip, then the cleanup (a lost
    spine moves ~1,700 flows at 64 x 512: three phases, not three per flow)."""
    lab, flows = ready(spines=3)
    src, dst = lab.hosts[0], lab.hosts[2]  # leaf1 -> leaf2
    _forget_spine_routes(lab, dst.mac)  # so that every path has rules on its spine
    for sport in range(40000, 40012):
        ft = FiveTuple(src.ip, dst.ip, 17, sport, 4791)
        out = flows.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"", now=lab.now)
        for program in [*out.urgent, *out.programs]:
            lab.fake.apply(program)
    link = lab.cable("leaf1", "spine1")
    on_link = {f.flow_id for f in flows.te.flows_on(link)}
    assert len(on_link) >= 2  # least-utilized spreads them over the three spines
    events = [LinkDown(lab.now, lid, "port-down") for lid in (link, link.reverse())]
    out = flows.on_fabric_events(events, lab.now)

    (program,) = out.programs
    assert program.reason == "reroute-failure"
    moved = {int(n.subject) for n in out.notices if n.kind is EventKind.FLOW_REROUTED}
    assert moved == on_link
    build, flip, *_ = program.phases
    flips = [op.entry for ops in flip.ops.values() for op in ops if isinstance(op, FlowAdd)]
    assert {(Cookie.flow_parts(e.cookie) or (0, 0))[0] for e in flips} == moved
    assert all(e.ingress for e in flips)
    built = [op.entry for ops in build.ops.values() for op in ops if isinstance(op, FlowAdd)]
    assert {(Cookie.flow_parts(e.cookie) or (0, 0))[0] for e in built} == moved  # spines'
    assert not any(e.ingress for e in built)
    lab.fake.apply(program)
    for sport in range(40000, 40012):
        flow = flows.te.flow_by_five_tuple(FiveTuple(src.ip, dst.ip, 17, sport, 4791))
        assert flow is not None and link not in flow.path.links
        walk = lab.send(src, dst, udp_src=sport)
        assert walk.only_to(dst.port) and walk.paths == {flow.path.switches}
