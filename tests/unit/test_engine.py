"""The engine through the shim's entry points: table sync, packet-in classification, polls,
statistics, congestion, drains, flow expiry and restarts, on the fake OpenFlow fabric.

Every program the engine produces in these tests is applied twice by the lab
and must leave the tables unchanged the second time (redundant-safe).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from apilab import roce_policy, udp_frame
from enginelab import BASE_COOKIE, TRAP_COOKIE, EngineLab, LabHost
from synthetic import leaf_spine

from controller.engine.engine import EngineConfig
from controller.engine.inputs import SwitchError
from controller.engine.outputs import (
    EngineOutput,
    FlowStatsRequest,
    PortStatsRequest,
    TablePart,
    TableRead,
)
from controller.fabric.model import FiveTuple, LinkId, PortRef
from controller.flowprog.entries import Cookie, CookieKind
from controller.flowprog.forwarding import PRIO_FLOW
from controller.routing import slotarrays
from controller.store.drains import DrainView
from controller.telemetry import CapacityConfig, PortCounters

LINK_MBPS = 100.0


def lab(**config: object) -> EngineLab:
    cfg = EngineConfig(
        capacity=CapacityConfig.from_config(LINK_MBPS, {}),
        default_demand_bps=LINK_MBPS * 1e6,
        poll_interval_s=1.0,
        **config,  # type: ignore[arg-type]
    )
    return EngineLab(leaf_spine(2, 2), config=cfg, policies=(roce_policy(),)).ready()


def place(lab: EngineLab, src: LabHost, dst: LabHost, *, sport: int = 40000) -> FiveTuple:
    ft = FiveTuple(src.ip, dst.ip, 17, sport, 4791)
    lab.packet_in(src.port, udp_frame(ft, src_mac=src.mac, dst_mac=dst.mac), cookie=TRAP_COOKIE)
    return ft


def sample(lab: EngineLab, seconds: float) -> None:
    """Let polls run for ``seconds`` (in quarter-second ticks, as the shim ticks)."""
    for _ in range(int(seconds / 0.25)):
        lab.advance(0.25)
        lab.tick()


def load(
    lab: EngineLab,
    link: LinkId,
    bps: float,
    seconds: float,
    *,
    flow_cookie: int = 0,
    flow_bps: float = 0.0,
) -> None:
    """Traffic of ``bps`` crosses ``link`` for ``seconds`` (of which ``flow_bps`` is the
    flow whose ingress rule has ``flow_cookie``): the counters grow."""
    for _ in range(int(seconds / 0.25)):
        for ref, field in ((link.src, "tx_bytes"), (link.dst, "rx_bytes")):
            have = lab.counters.get(ref, PortCounters())
            grown = {field: getattr(have, field) + int(bps / 32), "rx_packets": 1 + have.rx_packets}
            lab.counters[ref] = replace(have, **grown)
        if flow_cookie:
            lab.flow_bytes[flow_cookie] = lab.flow_bytes.get(flow_cookie, 0) + int(flow_bps / 32)
        lab.advance(0.25)
        lab.tick()


def entries_with(lab: EngineLab, cookie: int) -> list[object]:
    return [e for sw in lab.fake.switches.values() for e in sw.flows.values() if e.cookie == cookie]


# ------------------------------------------------------------------------ table sync
def test_a_connecting_switch_is_read_ports_first_then_its_tables() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    dpid = lab.dpid("leaf1")
    first = lab.engine.switch_features(dpid, now=lab.now)
    assert first.requests == [TableRead(dpid, TablePart.PORTS)]
    assert not lab.engine.is_synced(dpid)
    out = lab.run(first)
    asked = [r.part for r in out.requests if isinstance(r, TableRead)]
    assert asked == [TablePart.PORTS, TablePart.FLOWS, TablePart.GROUPS, TablePart.METERS]
    assert lab.engine.is_synced(dpid)
    assert lab.notices("switch-up") == ["leaf1"]


def test_a_switch_without_meters_finishes_its_read_on_the_error() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    dpid = lab.dpid("leaf1")
    engine = lab.engine
    engine.switch_features(dpid, now=lab.now)
    ports = lab.ports[dpid]
    engine.port_desc(dpid, ports, more=False, now=lab.now)
    engine.flow_stats(dpid, [], more=False, now=lab.now)
    assert not engine.group_desc(dpid, [], more=False, now=lab.now).notices
    assert not engine.is_synced(dpid)  # still waiting for meters
    out = engine.switch_error(dpid, SwitchError("bad_request", 3, 7), now=lab.now)
    assert engine.is_synced(dpid) and [n.kind.value for n in out.notices] == ["switch-up"]
    value = lab.metrics.registry.get_sample_value(
        "fabric_openflow_errors_total", {"type": "bad_request"}
    )
    assert value == 1.0


def test_a_stalled_read_is_restarted_and_an_error_rereads_the_tables_once() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    dpid = lab.dpid("leaf1")
    engine = lab.engine
    engine.switch_features(dpid, now=lab.now)  # nobody answers
    lab.fake.switch(dpid)
    lab.advance(engine.config.sync_timeout_s + 1)
    out = engine.tick(now=lab.now)
    assert TableRead(dpid, TablePart.PORTS) in out.requests
    lab.run(out)  # now answered
    assert engine.is_synced(dpid)
    # Errors in a burst schedule one re-read, a second later.
    for code in (1, 2, 3):
        engine.switch_error(dpid, SwitchError("flow_mod_failed", code, 9), now=lab.now)
    assert TableRead(dpid, TablePart.PORTS) not in engine.tick(now=lab.now).requests
    lab.advance(1.1)
    reads = [r for r in engine.tick(now=lab.now).requests if isinstance(r, TableRead)]
    assert reads == [TableRead(dpid, TablePart.PORTS)]


def test_a_resync_repairs_a_switch_that_lost_entries() -> None:
    lab = EngineLab(leaf_spine(2, 2)).ready()
    dpid = lab.dpid("leaf1")
    good = lab.fake.table_hash(dpid)
    lab.fake.switches[dpid].flows.clear()  # the switch lost its table
    assert lab.undelivered()
    lab.run(lab.engine.barrier_timeout(dpid, now=lab.now))
    lab.advance(1.1)
    lab.tick()  # the re-read is due: the engine reads the switch and fixes it
    assert lab.fake.table_hash(dpid) == good
    assert lab.undelivered() == []


# ------------------------------------------------------------ packet-in classification
def test_the_cookie_decides_trap_or_table_miss() -> None:
    lab_ = lab()
    src, dst = lab_.hosts[0], lab_.hosts[2]
    ft = FiveTuple(src.ip, dst.ip, 17, 40000, 4791)
    frame = udp_frame(ft, src_mac=src.mac, dst_mac=dst.mac)
    lab_.packet_in(src.port, frame, cookie=BASE_COOKIE)  # a table miss: no placement
    assert lab_.engine.placer.te.flow_by_five_tuple(ft) is None
    lab_.packet_in(src.port, frame, cookie=TRAP_COOKIE)  # the class trap: placed
    flow = lab_.engine.placer.te.flow_by_five_tuple(ft)
    assert flow is not None
    assert lab_.send(src, dst, udp_src=40000).paths == {flow.path.switches}
    counts = lab_.metrics.registry.get_sample_value(
        "fabric_packet_in_total", {"switch": "leaf1", "kind": "ipv4"}
    )
    assert counts == 2.0


def test_unsigned_or_garbled_lldp_is_counted_and_ignored() -> None:
    lab_ = EngineLab(leaf_spine(2, 2)).ready()
    links = set(lab_.net.topo.links)
    at = lab_.hosts[0].port
    bare = b"\x01\x80\xc2\x00\x00\x0e" + b"\x02" * 6 + b"\x88\xcc" + b"\x02\x07\x07dpid:00"
    lab_.packet_in(at, bare, cookie=BASE_COOKIE)
    lab_.packet_in(at, b"\x00" * 9, cookie=BASE_COOKIE)  # too short to be anything
    assert set(lab_.net.topo.links) == links
    ignored = lab_.metrics.registry.get_sample_value(
        "fabric_lldp_ignored_total", {"switch": "leaf1"}
    )
    assert ignored == 1.0


def test_packet_ins_before_the_read_finished_are_dropped() -> None:
    lab_ = EngineLab(leaf_spine(2, 2))
    dpid = lab_.dpid("leaf1")
    lab_.engine.switch_features(dpid, now=lab_.now)
    host = lab_.hosts[0]
    out = lab_.engine.packet_in(
        dpid, in_port=host.port.port, cookie=TRAP_COOKIE, data=b"x" * 60, now=lab_.now
    )
    assert not out


# --------------------------------------------------------------------------- polls
def test_polls_ask_port_counters_everywhere_and_flow_counters_at_ingress_only() -> None:
    lab_ = lab()
    place(lab_, lab_.hosts[0], lab_.hosts[2])
    seen: list[object] = []
    for _ in range(12):
        lab_.advance(0.25)
        seen += lab_.engine.tick(now=lab_.now).requests
    ports = {r.dpid for r in seen if isinstance(r, PortStatsRequest)}
    flows = {r.dpid for r in seen if isinstance(r, FlowStatsRequest)}
    assert ports == set(lab_.fabric.names)
    assert flows == {lab_.dpid("leaf1")}


def test_a_switch_that_never_answers_stats_is_counted_once_per_give_up() -> None:
    lab_ = lab()
    lab_.answer_stats = False
    sample(lab_, 12.0)  # give-up after 3 intervals + 2 s: at most two failures per switch
    failures = lab_.metrics.registry.get_sample_value(
        "fabric_stats_failures_total", {"switch": "spine1"}
    )
    assert failures is not None and 1.0 <= failures <= 2.0
    lab_.answer_stats = True
    sample(lab_, 3.0)
    rtt = lab_.metrics.registry.get_sample_value(
        "fabric_stats_request_duration_seconds_count", {"kind": "port"}
    )
    assert rtt is not None and rtt > 0


def test_flow_counters_become_the_flows_rate() -> None:
    lab_ = lab()
    ft = place(lab_, lab_.hosts[0], lab_.hosts[2])
    flow = lab_.engine.placer.te.flow_by_five_tuple(ft)
    assert flow is not None and not flow.measured
    cookie = Cookie(CookieKind.FLOW, flow.flow_id, flow.generation).encode()
    for _ in range(16):
        lab_.flow_bytes[cookie] = lab_.flow_bytes.get(cookie, 0) + 1_250_000  # 40 Mbit/s
        lab_.advance(0.25)
        lab_.tick()
    measured = lab_.engine.placer.te.flow_by_five_tuple(ft)
    assert measured is not None and measured.measured
    assert measured.rate_bps == pytest.approx(40e6, rel=0.15)


# ----------------------------------------------------------------------- reactions
def test_background_on_a_placed_flows_link_moves_it() -> None:
    lab_ = lab(congestion_samples=2)
    ft = place(lab_, lab_.hosts[0], lab_.hosts[2])
    flow = lab_.engine.placer.te.flow_by_five_tuple(ft)
    assert flow is not None
    hot = flow.path.links[0]
    cookie = Cookie(CookieKind.FLOW, flow.flow_id, flow.generation).encode()
    # The flow sends 40 Mbit/s; background on its first link makes the link 95% busy.
    load(lab_, hot, 95e6, 6.0, flow_cookie=cookie, flow_bps=40e6)
    moved = lab_.engine.placer.te.flow_by_five_tuple(ft)
    assert moved is not None and moved.moves >= 1 and hot not in moved.path.links
    # Whichever saw the hot link first: the congestion detector or the periodic round.
    assert moved.last_move_reason in ("congestion", "rebalance")
    rerouted = lab_.notices("flow-rerouted")
    assert rerouted and rerouted[0].startswith(str(flow.flow_id))


def hot_spot_detected_after(lab_: EngineLab, link: LinkId, *, bps: float, step: float) -> float:
    """Seconds from the onset of ``bps`` on ``link`` to the engine's link-congested notice,
    ticking every ``step`` (the shim ticks as soon as the engine asks for it)."""
    onset = lab_.now
    while lab_.now - onset < 10.0:
        for ref, field in ((link.src, "tx_bytes"), (link.dst, "rx_bytes")):
            have = lab_.counters.get(ref, PortCounters())
            grown = {field: getattr(have, field) + int(bps * step / 8), "rx_packets": 1}
            lab_.counters[ref] = replace(have, **grown)
        lab_.advance(step)
        lab_.tick()
        if lab_.notices("link-congested"):
            return lab_.now - onset
    raise AssertionError("the hot spot was never detected")


@pytest.mark.parametrize("phase", [0.0, 0.3, 0.6, 0.9])
def test_a_hot_link_is_confirmed_within_two_poll_intervals(phase: float) -> None:
    # One poll a second. The detector needs two hot samples; with smoothed rates
    # and a full interval between the samples a hot spot took about three.
    lab_ = lab(congestion_samples=2)
    sample(lab_, 4.0)  # baselines everywhere
    lab_.advance(phase)
    hot = lab_.cable("leaf1", "spine1")
    delay = hot_spot_detected_after(lab_, hot, bps=0.95 * LINK_MBPS * 1e6, step=0.05)
    assert delay <= 2.0
    (notice,) = lab_.notices("link-congested")
    assert notice.startswith(lab_.engine.net.topo.link_name(hot))


def test_a_single_hot_sample_is_not_congestion_but_is_checked_again_soon() -> None:
    lab_ = lab(congestion_samples=2)
    sample(lab_, 4.0)
    hot = lab_.cable("leaf1", "spine1")
    asked: list[float] = []
    answer = lab_._answer

    def record(req: object) -> EngineOutput:
        if isinstance(req, PortStatsRequest) and req.dpid == hot.src.dpid:
            asked.append(lab_.now)
        return answer(req)  # type: ignore[arg-type]

    lab_._answer = record  # type: ignore[method-assign]
    sample(lab_, 3.0)
    regular = [b - a for a, b in itertools.pairwise(asked)]
    assert regular and min(regular) >= 0.75  # cold links: one poll per interval
    asked.clear()
    # One interval of traffic above the threshold, then quiet again.
    for ref, field in ((hot.src, "tx_bytes"), (hot.dst, "rx_bytes")):
        have = lab_.counters.get(ref, PortCounters())
        lab_.counters[ref] = replace(
            have, **{field: getattr(have, field) + int(LINK_MBPS * 1e6 / 8)}
        )
    for _ in range(60):
        lab_.advance(0.05)
        lab_.tick()
    gaps = [b - a for a, b in itertools.pairwise(asked)]
    assert gaps and min(gaps) <= 0.35  # the hot sample was checked again a quarter later
    assert lab_.notices("link-congested") == []  # and dismissed: one sample is not enough


def test_an_idle_flow_is_forgotten_and_its_rules_removed() -> None:
    lab_ = lab()
    src = lab_.hosts[0]
    ft = place(lab_, src, lab_.hosts[2])
    flow = lab_.engine.placer.te.flow_by_five_tuple(ft)
    assert flow is not None
    cookie = Cookie(CookieKind.FLOW, flow.flow_id, flow.generation).encode()
    on_switches = [
        e for sw in lab_.fake.switches.values() for e in sw.flows.values() if e.cookie == cookie
    ]
    assert [e.priority for e in on_switches] == [PRIO_FLOW]  # transit hops: default routes
    lab_.run(lab_.engine.flow_removed(src.port.dpid, cookie=cookie, idle=True, now=lab_.now))
    assert lab_.engine.placer.te.flow_by_five_tuple(ft) is None
    left = [
        e for sw in lab_.fake.switches.values() for e in sw.flows.values() if e.cookie == cookie
    ]
    assert left == []
    assert lab_.notices("flow-expired") == [f"{flow.flow_id} idle"]


def test_placement_arrays_are_rebuilt_by_a_still_tick_not_by_the_next_new_flow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab_ = lab()
    state = lab_.engine.placer.state
    assert state.built  # ready()'s ticks after discovery built them
    leaf, spine = lab_.dpid("leaf1"), lab_.dpid("spine1")
    state.link_up(LinkId(PortRef(leaf, 90), PortRef(spine, 90)))  # a new cable: new slots
    assert not state.built
    lab_.advance(0.25)
    lab_.tick()
    assert not state.built  # the topology just changed: more may follow (discovery)
    lab_.advance(0.25)
    lab_.tick()
    assert state.built  # still for a tick: built here
    builds: list[int] = []
    real = slotarrays.build_layout
    monkeypatch.setattr(
        slotarrays, "build_layout", lambda *a, **k: builds.append(1) or real(*a, **k)
    )
    ft = place(lab_, lab_.hosts[0], lab_.hosts[2])
    assert lab_.engine.placer.te.flow_by_five_tuple(ft) is not None
    assert builds == []


def test_a_drain_is_stored_and_a_restarted_engine_still_avoids_the_link() -> None:
    lab_ = lab()
    ft = place(lab_, lab_.hosts[0], lab_.hosts[2])
    result, out = lab_.engine.drain("leaf1-spine1", drained=True, now=lab_.now)
    lab_.run(out)
    assert result.flows_moved == 1
    cable = {lab_.cable("leaf1", "spine1"), lab_.cable("spine1", "leaf1")}
    assert DrainView(lab_.store).links() == cable
    lab_.restart(hosts=list(lab_.net.topo.hosts.values()))
    assert cable <= lab_.engine.net.topo.drained
    for dpid in sorted(lab_.fabric.names):
        lab_.connect(dpid)
    sample(lab_, 6.0)
    ft2 = place(lab_, lab_.hosts[1], lab_.hosts[3], sport=40001)
    flow = lab_.engine.placer.te.flow_by_five_tuple(ft2)
    assert flow is not None and not cable & set(flow.path.links)
    del ft


def test_views_follow_the_engine_after_each_command() -> None:
    from apilab import ApiLab

    api = ApiLab()
    before = api.publisher.publications
    api.real.apply_policy(roce_policy())
    # One command, one publication (the shim publishes once per mailbox round).
    assert api.publisher.publications == before + 1
    assert [p.name for p in api.real.list_policies()] == ["roce"]
