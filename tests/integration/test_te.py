"""AI-flow placement and movement on a real fabric (issue: intelligent routing).

Assertions are functional (which spine a flow took, how much got through, how
many packets were lost) with generous waits, never tight timing.
"""

from __future__ import annotations

import time
from dataclasses import replace

import grpc
from fabric.v1 import fabric_pb2 as pb
from streams import RATE_PPS, roce_stream

from controller.api import convert
from controller.api.client import FabricClient
from controller.devtools.process import wait_discovered, wait_until
from controller.fabric.model import FiveTuple
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from mininet_topos.harness import FLOWGEN

CAP = 20  # Mbit/s on every leaf-spine link


def _ready(fabricd_factory, fabric_factory, *extra, host_bw=None, hosts=2):
    fd = fabricd_factory("--link-capacity-mbps", str(CAP), "--poll-interval", "0.5", *extra)
    fab = fabric_factory(2, 2, hosts, controller_port=fd.of_port, bw=CAP, host_bw=host_bw)
    wait_discovered(fd, switches=4, links=8)
    time.sleep(1.5)
    for j in (1, 2):  # every host talks once: the controller learns all of them
        for i in range(1, hosts + 1):
            assert fab.ping(fab.host(j, i), fab.ip(3 - j, 1), count=2) >= 1
    return fd, fab


def _flows(client, **match) -> list:
    return [
        f
        for f in client.list_flows()
        if all(getattr(f.five_tuple, k) == v for k, v in match.items())
    ]


def _events(client, seconds: float) -> list:
    """Recent and live events for ``seconds`` (the stream replays recent ones first)."""
    out = []
    try:
        for event in client.watch_events(timeout=seconds):
            out.append(event)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    return out


def _spine_of(flow) -> str:
    return next(s for s in flow.path if s.startswith("spine"))


def _placed(client, count: int, **match) -> list:
    return wait_until(
        lambda: f if len(f := _flows(client, **match)) == count else None,
        timeout=8,
        what=f"{count} flow(s) matching {match} placed",
    )


def _quiet(client, timeout: float = 10.0) -> None:
    """Wait until no link shows load: rates are smoothed over several polls, and a
    run started while the previous run's load still shows on one uplink more than
    on the other places by that stale difference, not by the new flows."""
    deadline = time.monotonic() + timeout
    while max(link.utilization for link in client.list_links()) > 0.05:
        assert time.monotonic() < deadline, "links still loaded after the previous run"
        time.sleep(0.2)


def _pair_run(fab, client, tmp_path, port_base: int, seconds: float) -> tuple[set[str], float]:
    """Two AI TCP flows leaf1 -> leaf2 from both hosts: (spines used, summed goodput Mbit/s)."""
    _quiet(client)
    handles = [
        fab.start_flow(
            fab.host(1, i),
            fab.host(2, i),
            proto="tcp",
            port=port_base + i,
            duration=seconds,
            workdir=str(tmp_path),
        )
        for i in (1, 2)
    ]
    flows = [_placed(client, 1, dst_port=port_base + i)[0] for i in (1, 2)]
    goodput = sum(fab.finish_flow(h)[1]["goodput_bps"] for h in handles) / 1e6
    return {_spine_of(f) for f in flows}, goodput


def test_least_utilized_separates_ai_flows_and_fills_both_uplinks(
    fabricd_factory, fabric_factory, tmp_path
):
    fd, fab = _ready(fabricd_factory, fabric_factory, host_bw=CAP)
    runs = []
    with FabricClient(fd.grpc_target) as client:
        # Six tries: a placement blind to load (hash, random) separates two flows
        # on two spines half the time, so it passes all six 1 time in 64.
        for attempt in range(6):
            spines, goodput = _pair_run(fab, client, tmp_path, 29500 + 2 * attempt, 4.0)
            runs.append((sorted(spines), round(goodput, 1)))
            assert len(spines) == 2, f"try {attempt}: both AI flows on {spines}; runs {runs}"
            # Two TCP flows sharing one 20 Mbit/s uplink deliver at most CAP together
            # (its HTB rate; measured 19-20 Mbit/s); on two uplinks each can reach its
            # host's CAP (35.9-38.8 Mbit/s in 4 s runs here, 28.3 once on a loaded CI
            # machine, where the emulator's CPU, not the fabric, was the limit).
            # Above 1.25 x CAP both uplinks carried traffic: the data plane followed
            # the placement.
            assert goodput >= 1.25 * CAP, f"try {attempt}: {goodput:.1f} Mbit/s; runs {runs}"
        # The same job under hash ECMP, side by side: reported, not asserted.
        hashed = replace(convert.policy_from_proto(client.get_policy("ai-training")), version=0)
        client.apply_policy(replace(hashed, strategy=Strategy.ECMP))
        ecmp = []
        for attempt in range(3):
            spines, goodput = _pair_run(fab, client, tmp_path, 29560 + 2 * attempt, 3.0)
            ecmp.append((sorted(spines), round(goodput, 1)))
    collided = sum(1 for spines, _ in ecmp if len(spines) == 1)
    print(f"\nleast-utilized: {runs}\nhash ecmp: {ecmp} ({collided}/{len(ecmp)} collided)")
    fd.assert_clean_log()


def test_two_roce_flows_of_one_host_pair_use_both_spines(fabricd_factory, fabric_factory, tmp_path):
    fd, fab = _ready(fabricd_factory, fabric_factory, hosts=1)
    src, dst = fab.host(1, 1), fab.host(2, 1)
    sink = fab.start_sink(dst, proto="udp", port=4791, duration=9, workdir=str(tmp_path))
    time.sleep(0.3)
    # Each paced below one uplink (14 < 20 Mbit/s), together above it (28 > 20).
    senders = [
        fab.start_sender(
            src,
            dst,
            proto="udp",
            port=4791,
            sport=sport,
            rate=14,
            duration=5,
            workdir=str(tmp_path),
            size=1000,
            tag=k,
        )
        for k, sport in enumerate((49152, 49153))
    ]
    with FabricClient(fd.grpc_target) as client:
        flows = _placed(client, 2, dst_port=4791)
        assert {_spine_of(f) for f in flows} == {"spine1", "spine2"}, [list(f.path) for f in flows]
    sent = [fab.finish(s) for s in senders]
    got = fab.finish(sink)
    for k, report in enumerate(sent):
        received = got["flows"][str(k)]["packets"]
        assert received >= 0.97 * report["packets"], (k, received, report["packets"])
    fd.assert_clean_log()


def _hot_spot_under(fab, client, tmp_path, ai_port: int):
    """Start a default-policy TCP flow leaf1 -> leaf2 on the AI flow's spine.

    The switch's SELECT hash decides where it goes (TCP ports count in it; for
    UDP Open vSwitch's default hash ignores them), so try source ports until the
    uplink *not* carrying the AI flow stays quiet, or the controller already
    moved the AI flow away from the collision. Returns (background, seconds from
    the background's start to the AI flow's move, the moved flow).
    """
    src, dst = fab.host(1, 2), fab.host(2, 2)
    for sport in range(20001, 20041):
        sink = fab.start_sink(dst, proto="tcp", port=5001, duration=30, workdir=str(tmp_path))
        time.sleep(0.3)
        spine = int(_spine_of(_flows(client, dst_port=ai_port)[0])[-1])
        quiet = fab.uplink_port(1, 3 - spine)
        before = fab.port_counters("leaf1")[quiet][3]
        started = time.monotonic()
        sender = fab.start_sender(
            src, dst, proto="tcp", port=5001, sport=sport, duration=25, workdir=str(tmp_path)
        )
        time.sleep(1.0)
        flow = _flows(client, dst_port=ai_port)[0]
        collided = fab.port_counters("leaf1")[quiet][3] - before < 500_000
        if flow.moves or collided:
            moved = wait_until(
                lambda: f if (f := _flows(client, dst_port=ai_port)[0]).moves >= 1 else None,
                timeout=15,
                what="the AI flow to leave the congested spine",
            )
            return {"sink": sink, "sender": sender}, time.monotonic() - started, moved, spine
        for handle in (sender, sink):
            fab.kill(handle["pid"])
            fab.wait_pid(handle["pid"])
    raise AssertionError("no source port made the switch hash onto the AI flow's spine")


def test_congestion_moves_ai_flow_and_throughput_recovers(
    fabricd_factory, fabric_factory, tmp_path
):
    fd, fab = _ready(fabricd_factory, fabric_factory)
    with FabricClient(fd.grpc_target) as client:
        ai = fab.start_flow(
            fab.host(1, 1),
            fab.host(2, 1),
            proto="tcp",
            port=29500,
            duration=20,
            workdir=str(tmp_path),
        )
        _placed(client, 1, dst_port=29500)
        time.sleep(1.0)
        background, elapsed, moved, hot = _hot_spot_under(fab, client, tmp_path, 29500)
        assert moved.last_move_reason == "congestion", moved.last_move_reason
        assert _spine_of(moved) == f"spine{3 - hot}"
        _, got = fab.finish_flow(ai)
        for handle in (background["sender"], background["sink"]):
            fab.kill(handle["pid"])
            fab.wait_pid(handle["pid"])
    # Throughput after the move: the last 3 s of the sink's timeline.
    tail = got["timeline_bps"][-30:]
    recovered = sum(tail) / len(tail) / 1e6
    print(f"\nmoved after {elapsed:.1f} s; AI goodput after the move {recovered:.1f} Mbit/s")
    assert recovered >= 0.7 * CAP, f"AI flow got {recovered:.1f} Mbit/s after the move"
    fd.assert_clean_log()


def test_uplink_failure_repaired_with_bounded_loss(fabricd_factory, fabric_factory, tmp_path):
    fd, fab = _ready(fabricd_factory, fabric_factory, hosts=1)
    with FabricClient(fd.grpc_target) as client:
        stream = roce_stream(fab, tmp_path, 8)
        flow = _placed(client, 1, dst_port=4791)[0]
        spine = int(_spine_of(flow)[-1])
        time.sleep(2.0)
        fab.set_link("leaf1", f"spine{spine}", up=False)
        sent, got = fab.finish_flow(stream)
        now_on = _spine_of(_flows(client, dst_port=4791)[0])
    lost = got["lost"]
    print(
        f"\nuplink failure: {lost} of {sent['packets']} packets lost "
        f"({lost / RATE_PPS * 1000:.0f} ms at {RATE_PPS} pps), "
        f"max gap {got['max_gap_s'] * 1000:.0f} ms"
    )
    # The ingress fast-failover group repairs in the datapath: the README's 7-13 ms.
    # 60 ms allows a loaded 2-core machine five times that; the controller alone
    # (no group) would need a poll-free PortStatus round trip plus reprogramming.
    assert lost <= 60, f"{lost} packets lost ({lost} ms at {RATE_PPS} pps)"
    assert got["packets"] >= sent["packets"] - 60
    assert now_on == f"spine{3 - spine}", "the controller did not re-place the flow"
    fd.assert_clean_log()


def test_planned_move_by_drain_loses_nothing(fabricd_factory, fabric_factory, tmp_path):
    fd, fab = _ready(fabricd_factory, fabric_factory, hosts=1)
    with FabricClient(fd.grpc_target) as client:
        stream = roce_stream(fab, tmp_path, 6)
        flow = _placed(client, 1, dst_port=4791)[0]
        spine = _spine_of(flow)
        time.sleep(2.0)
        result = client.drain_link(f"leaf1-{spine}")
        assert result.flows_moved == 1
        sent, got = fab.finish_flow(stream)
        after = _flows(client, dst_port=4791)[0]
        assert _spine_of(after) != spine and after.last_move_reason == "drain"
        client.undrain_link(f"leaf1-{spine}")
    print(f"\ndrain: {got['lost']} lost, {got['reordered']} reordered of {sent['packets']}")
    assert got["lost"] == 0, f"a planned move lost {got['lost']} packets"
    assert got["packets"] == sent["packets"]  # to the last one, not only below the highest seen
    fd.assert_clean_log()


def test_impossible_pinned_path_falls_back_and_says_so(fabricd_factory, fabric_factory, tmp_path):
    fd, fab = _ready(fabricd_factory, fabric_factory, hosts=1)
    pin = Policy(
        name="pin-spine1",
        priority=300,
        match=(FlowMatch(ip_proto=17, dst_ports=(PortRange(6001, 6001),)),),
        strategy=Strategy.PINNED,
        pinned_path=("leaf1", "spine1", "leaf2"),
        fallback=Strategy.LEAST_UTILIZED,
    )
    with FabricClient(fd.grpc_target) as client:
        client.apply_policy(pin)
        fab.set_link("leaf1", "spine1", up=False)
        wait_discovered(fd, switches=4, links=6, timeout=10)
        stream = fab.start_flow(
            fab.host(1, 1),
            fab.host(2, 1),
            proto="udp",
            port=6001,
            sport=6001,
            rate=2,
            size=500,
            duration=3,
            workdir=str(tmp_path),
        )
        flow = _placed(client, 1, dst_port=6001)[0]
        assert flow.fell_back and _spine_of(flow) == "spine2"
        explained = client.explain_path(FiveTuple(fab.ip(1, 1), fab.ip(2, 1), 17, 6001, 6001))
        assert explained.fell_back and "pinned" in explained.reason
        sent, got = fab.finish_flow(stream)
        # Every packet, to the last: "no loss below the highest seen" is not enough.
        assert got["packets"] == sent["packets"] > 0, f"the fallback path dropped: {sent} {got}"
        fallbacks = [
            e
            for e in _events(client, 2.0)
            if e.subject == "pin-spine1" and e.kind == pb.EVENT_KIND_POLICY_FALLBACK
        ]
        assert fallbacks, "no policy-fallback event (a policy-applied one does not count)"
        # The link heals: the flow returns to its pinned path, no longer fallen back.
        fab.set_link("leaf1", "spine1", up=True)
        wait_discovered(fd, switches=4, links=8, timeout=15)
        back = wait_until(
            lambda: f if (f := _flows(client, dst_port=6001)) and not f[0].fell_back else None,
            timeout=10,
            what="the flow back on its pinned path",
        )
        assert _spine_of(back[0]) == "spine1" and back[0].last_move_reason == "policy"
    fd.assert_clean_log()


def test_burst_of_new_flows_is_rate_limited_and_controller_stays_responsive(
    fabricd_factory, fabric_factory
):
    fd, fab = _ready(
        fabricd_factory,
        fabric_factory,
        "--packet-in-rate",
        "300",
        "--flow-setup-budget",
        "100",
        hosts=1,
    )
    src = fab.host(1, 1)
    # 1,000 new RoCE 5-tuples in about a second: one datagram from each source port.
    burst = fab.spawn(src, f"python3 {FLOWGEN} burst --dst {fab.ip(2, 1)} --port 4791 --count 1000")
    polls_before = fd.value("fabric_stats_request_duration_seconds_count", kind="port")
    slowest = 0.0
    with FabricClient(fd.grpc_target, timeout=5) as client:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            t = time.monotonic()
            client.list_links()
            slowest = max(slowest, time.monotonic() - t)
            time.sleep(0.1)
        assert fab.wait_pid(burst, timeout=20)
        time.sleep(1.0)
        placed = len(_flows(client, dst_port=4791))
    shed = fd.value("fabric_packet_in_dropped_total", reason="shed")
    polls_after = fd.value("fabric_stats_request_duration_seconds_count", kind="port")
    print(
        f"\nburst: {placed} flows placed, {shed:.0f} shed by the budget, "
        f"slowest ListLinks {slowest * 1000:.0f} ms"
    )
    assert placed < 1000, "nothing limited the burst"
    # The budget admits 100 a second (plus a burst of 100): the burst lasted 1-3 s.
    assert 100 <= placed <= 100 * 4 + 100, f"{placed} flows placed with a 100/s budget"
    assert shed > 0, "the budget shed nothing, yet not every flow was placed"
    assert slowest < 2.0, f"gRPC stalled {slowest:.1f} s during the burst"
    assert polls_after > polls_before, "port polling stopped during the burst"
    fd.assert_clean_log()
