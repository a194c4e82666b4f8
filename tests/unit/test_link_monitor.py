"""LinkMonitor: a port-stats reply recomputes only the loads it can change."""

from __future__ import annotations

import random

from controller.engine.monitor import LinkMonitor
from controller.fabric.model import LinkId, Port, PortRef
from controller.fabric.topology import Topology
from controller.telemetry import CapacityConfig, CongestionDetector, PortCounters, link_load

CAPACITY = CapacityConfig.from_config(100.0, {})  # 100 Mbit/s


def _fabric() -> Topology:
    """Three switches, cables 1-2, 1-3 and 2-3 (both directions each)."""
    topo = Topology()
    for dpid in (1, 2, 3):
        topo.switch_up(dpid, name=f"s{dpid}", ports=[Port(p) for p in (1, 2)], now=0.0)
    for (a, pa), (b, pb) in (((1, 1), (2, 1)), ((1, 2), (3, 1)), ((2, 2), (3, 2))):
        topo.lldp_seen(tx=PortRef(a, pa), rx=PortRef(b, pb), now=0.0)
        topo.lldp_seen(tx=PortRef(b, pb), rx=PortRef(a, pa), now=0.0)
    assert len(topo.links) == 6
    return topo


def _every_link_recomputed(
    monitor: LinkMonitor, detector: CongestionDetector, topo: Topology, dpid: int
) -> list[object]:
    """The reference: after ``dpid``'s reply, every link at ``dpid`` recomputed and
    fed to a detector of its own (what the monitor did before it skipped any)."""
    events: list[object] = []
    for lid in topo.links_at(dpid):
        capacity = monitor.capacity_of(topo, lid)
        rate = monitor.rates.latest_raw(lid.src) or monitor.rates.latest_raw(lid.dst)
        if rate is not None and link_load(lid, monitor.rates, capacity).measured:
            raw = link_load(lid, monitor.rates, capacity, raw=True)
            event = detector.observe(lid, raw.utilization, rate.time)
            if event is not None:
                events.append(event)
    return events


def test_random_replies_keep_every_load_and_event_as_a_full_recompute_would() -> None:
    rng = random.Random(5)
    topo = _fabric()
    monitor = LinkMonitor(capacity=CAPACITY, samples=2)
    reference = CongestionDetector(threshold=0.8, clear_threshold=0.6, samples=2)
    counters: dict[PortRef, list[int]] = {}
    replies_seen: set[int] = set()
    now = 0.0
    skipped = flips = confirms = receivers = 0
    for _ in range(400):
        now += rng.uniform(0.2, 1.0)
        dpid = rng.choice((1, 2, 3))
        stats = []
        for port in rng.sample((1, 2), rng.choice((1, 2))):  # a multipart reply: some ports
            c = counters.setdefault(PortRef(dpid, port), [0, 0, 0])
            c[0] += int(rng.uniform(0, 12.5e6) * rng.choice((0.1, 1.0)))  # rx bytes
            c[1] += int(rng.uniform(0, 12.5e6) * rng.choice((0.1, 1.0)))  # tx bytes
            c[2] += rng.choice((0, 0, 1000))  # rx packets: some ports receive none
            stats.append((port, PortCounters(rx_bytes=c[0], tx_bytes=c[1], rx_packets=c[2])))
        if rng.random() < 0.05:
            monitor.switch_gone(dpid)  # its rates are forgotten: the far ends stand in
        events, changed, receiving = monitor.port_stats(dpid, stats, now=now, topo=topo)
        # Ports of this reply whose packets arrive (their links are alive), no others.
        rates = [(port, monitor.rates.latest(PortRef(dpid, port))) for port, _ in stats]
        assert receiving == tuple(p for p, r in rates if r is not None and r.rx_pps > 0)
        receivers += len(receiving)
        replies_seen.add(dpid)
        skipped += len(topo.links_at(dpid)) - len(changed)
        assert events == _every_link_recomputed(monitor, reference, topo, dpid)
        confirm = monitor.to_confirm(topo, dpid)
        assert confirm == {lid.src.dpid for lid in topo.links_at(dpid) if reference.rising(lid)}
        confirms += bool(confirm)
        flips += len(events)
        for lid in topo.links:
            if not {lid.src.dpid, lid.dst.dpid} & replies_seen:
                continue
            sample = link_load(lid, monitor.rates, monitor.capacity_of(topo, lid))
            load = monitor.loads_of([lid])[lid]
            assert (load.rate_bps, load.utilization) == (sample.rate_bps, sample.utilization)
    # Links were skipped, the detector flipped, and hot links asked for early polls.
    assert skipped > 100 and flips > 5 and confirms > 5 and receivers > 20


def test_a_reply_of_the_far_end_stands_in_only_while_the_source_has_no_rate() -> None:
    topo = _fabric()
    monitor = LinkMonitor(capacity=CAPACITY)
    lid = LinkId(PortRef(1, 1), PortRef(2, 1))

    def reply(dpid: int, rx: int, tx: int, now: float) -> tuple[LinkId, ...]:
        stats = [(p, PortCounters(rx_bytes=rx, tx_bytes=tx)) for p in (1, 2)]
        return monitor.port_stats(dpid, stats, now=now, topo=topo).links

    reply(2, 0, 0, 1.0)
    assert lid in reply(2, 5_000_000, 0, 2.0)  # switch 1 has no rate: 2's rx stands in
    assert monitor.loads_of([lid])[lid].rate_bps == 40e6
    reply(1, 0, 0, 2.0)
    assert lid in reply(1, 0, 2_500_000, 3.0)  # now measured where it leaves
    assert monitor.loads_of([lid])[lid].rate_bps == 20e6
    assert lid not in reply(2, 10_000_000, 0, 4.0)  # the far end changes nothing
    assert monitor.loads_of([lid])[lid].rate_bps == 20e6
