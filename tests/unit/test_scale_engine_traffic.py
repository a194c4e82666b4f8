"""The engine benchmark's switches count the traffic of the flows placed, so the
engine's measured load follows its placements as on a real fabric."""

from __future__ import annotations

import random
from collections import Counter

from benchmarks import scale_engine as bench
from benchmarks.flowsetup import ARRIVAL_S, workload
from benchmarks.scale_measure import LINK_BPS, synthetic
from controller.app.clock import Clock
from controller.app.publisher import Publisher
from controller.concurrency.eventbus import EventBus
from controller.fabric.model import PortRef


def test_port_counters_carry_every_placed_flow_and_the_engine_measures_them() -> None:
    fab = synthetic.leaf_spine(4, 8, capacity_bps=LINK_BPS)
    lab = bench.driver_for(fab, hosts_per_leaf=2, seed=3, heap_policy=False)
    bench.bring_up(lab)
    flows = workload(lab, 2500, random.Random(3))  # three simulated seconds
    publisher = Publisher(lab.engine, bus=EventBus(), metrics=lab.metrics, clock=Clock())
    lab.on_output = publisher.absorb
    start = lab.now
    bench.run_setups(lab, publisher, flows)
    te = lab.engine.placer.te
    # Bytes each port sent: every flow at FLOW_BPS over each link of its path, from
    # the start of the simulated second it was placed in to the last flow's arrival.
    ends = start + len(flows) * ARRIVAL_S
    sent: Counter[PortRef] = Counter()
    received: Counter[PortRef] = Counter()
    for i, flow in enumerate(flows):
        placed = te.flow_by_five_tuple(flow.five_tuple)
        assert placed is not None
        begins = start + i // bench.TICK_EVERY * bench.TICK_EVERY * ARRIVAL_S
        for lid in placed.path.links:
            sent[lid.src] += round(bench.FLOW_BPS / 8 * (ends - begins))
            received[lid.dst] += round(bench.FLOW_BPS / 8 * (ends - begins))
    assert sent and len(sent) == len(received)
    for port, expected in sent.items():
        assert abs(lab.counters[port].tx_bytes - expected) <= len(flows)  # rounding per second
    for port, expected in received.items():
        assert abs(lab.counters[port].rx_bytes - expected) <= len(flows)
    # The engine measured the load of the first second's flows on their links.
    loads = lab.engine.monitor.loads(lab.net.topo)
    busy = [lid for lid in loads if sent[lid.src] > 0]
    assert busy and all(loads[lid].rate_bps > 0 for lid in busy)
