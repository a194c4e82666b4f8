"""Engine-level scale measurements: new flows and a declared job through the whole engine.

Everything the controller does for a new flow runs, through the one entry the
OpenFlow shim calls (:meth:`FabricEngine.packet_in` with the class trap's
cookie and a real Ethernet/IPv4/UDP frame): host check, policy lookup,
placement on the engine's placement state, rule compilation, the programmer's
diff against what each switch holds, make-before-break phases, and the
packet's release. The programs are applied to fake OpenFlow tables
(:class:`~controller.devtools.fakeoftable.FakeFabric`, by the
:class:`~controller.devtools.enginedriver.EngineDriver` that the unit tests use
too) and confirmed back to the engine, as barriers would. Only the sockets and
the OpenFlow encoding are missing.

The fabric is brought up through real discovery (every switch connects and is
read, one signed LLDP frame per link, one gratuitous ARP per host) with the
engine holding default forwarding back and compiling it once at the end
(:meth:`FabricEngine.hold_forwarding`); without the hold, every switch, link and
host recomputes the whole fabric's default forwarding (minutes at 64 x 512).
The bring-up is timed and reported apart from the setups.

Between batches of one simulated second of flows the engine ticks as the hub
would (port and flow counters polled and answered, rebalancing, the garbage
collector policy), outside the timed region: its cost is reported per tick.
After the setups, the hub's publication of the read models over everything
placed (after every tick and every command in the controller) is timed, with
what a reader of all links and flows and a Prometheus scrape cost
(``views`` in the result).
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from prometheus_client import generate_latest

from benchmarks.flowsetup import ARRIVAL_S, NewFlow, first_packet, lines_per_setup, workload
from benchmarks.scale_failures import host_learned, link_failure, spine_down
from benchmarks.scale_measure import CollectorClock, CollectorSettings
from controller.app.clock import Clock
from controller.app.publisher import Publisher
from controller.concurrency.eventbus import EventBus
from controller.devtools.enginedriver import (
    EngineDriver,
)
from controller.engine.engine import EngineConfig
from controller.engine.outputs import EngineOutput
from controller.fabric.model import PortRef
from controller.jobs.model import Job
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.telemetry import CapacityConfig, PortCounters

__all__ = ["ENGINE_HOSTS_PER_LEAF", "bring_up", "engine_setups", "job_place", "run_setups"]

ENGINE_HOSTS_PER_LEAF = 2  # hosts per leaf for the setup measurement
LINK_BPS = 100e9
FLOW_BPS = 1e9  # assumed demand of a new flow: no link gets hot, ticks move nothing
TICK_EVERY = 1000
# Discovery probes every 30 s, not every second: at 64 x 512 one probe round is
# 65,536 LLDP packet-ins, which would bury the setups under discovery work.
LLDP_S = 30.0
JOB_RING_HOSTS = 4096
COUNTED_SETUPS = 200  # of the flows, set up after the timed ones, traced for their lines
ROCE = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
POLICY = Policy(name="roce", priority=100, match=(ROCE,), strategy=Strategy.LEAST_UTILIZED)


def _config(*, seed: int, heap_freeze: bool) -> EngineConfig:
    return EngineConfig(
        lldp_interval_s=LLDP_S,
        poll_interval_s=1.0,
        capacity=CapacityConfig(default_bps=LINK_BPS),
        seed=seed,
        default_demand_bps=FLOW_BPS,
        flow_setup_budget=0,  # no budget: every new flow is placed, none shed
        heap_freeze=heap_freeze,
    )


def driver_for(fab: Any, *, hosts_per_leaf: int, seed: int, heap_policy: bool) -> EngineDriver:
    """An engine on fake switches cabled like ``fab`` (a synthetic fabric)."""
    return EngineDriver(
        switches=dict(fab.names),
        links=[attrs["link"] for _, _, attrs in fab.graph.edges(data=True)],
        host_ports=[fab.host_port(leaf, i) for leaf in fab.leaves for i in range(hosts_per_leaf)],
        config=_config(seed=seed, heap_freeze=heap_policy),
        policies=(POLICY,),
        check_redundant=False,  # hashing every table per program is the tests' check
        keep_outputs=False,
        tend_heap=heap_policy,
    )


class _Clock:
    """CPU and wall seconds of named steps."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    def time(self, name: str, work: Callable[[], object]) -> None:
        c0, w0 = time.process_time(), time.perf_counter()
        work()
        self.cpu[name] = round(time.process_time() - c0, 3)
        self.wall[name] = round(time.perf_counter() - w0, 3)


def bring_up(lab: EngineDriver) -> dict[str, Any]:
    """Discovery of the whole fabric with one forwarding compile; returns its timings."""
    engine = lab.engine
    clock = _Clock()
    engine.hold_forwarding()

    def connect() -> None:
        for dpid in sorted(lab.name_of):
            lab.connect(dpid)

    def discover() -> None:
        for lid in lab.fake.links:
            lab.lldp(lid)

    def learn() -> None:
        lab.advance(lab.net.config.edge_grace_s + 0.1)  # edge ports become trusted
        lab.learn_all()

    clock.time("connect_s", connect)
    clock.time("lldp_s", discover)
    clock.time("hosts_s", learn)
    released = {}

    def compile_forwarding() -> None:
        released["out"] = engine.release_forwarding(now=lab.now)

    clock.time("forwarding_compile_s", compile_forwarding)
    out = released["out"]
    entries = sum(
        len(ops)
        for program in out.programs
        for phase in program.phases
        for ops in phase.ops.values()
    )
    clock.time("forwarding_apply_s", lambda: lab.run(out))
    # The first tick probes every port again (links stay fresh); warm-ups end in a
    # later tick of the setup phase (they protect nothing here: the tables were empty).
    clock.time("first_tick_s", lab.tick)

    def settle() -> None:
        # A controller ticks once per poll interval between discovery and the first
        # job: the first tick with the topology still builds the placement arrays.
        lab.advance(lab.engine.polls.interval)
        lab.tick()

    clock.time("settle_tick_s", settle)
    if not lab.engine.placer.state.built:
        raise RuntimeError("bring-up incomplete: placement arrays not built by a still tick")
    topo = lab.net.topo
    if len(topo.links) != len(lab.fake.links) or len(topo.hosts) != len(lab.hosts):
        raise RuntimeError(
            f"bring-up incomplete: {len(topo.links)}/{len(lab.fake.links)} links, "
            f"{len(topo.hosts)}/{len(lab.hosts)} hosts"
        )
    return {
        "method": "every switch connected and read, one signed LLDP frame per directed "
        "link, one gratuitous ARP per host, default forwarding held and compiled once",
        "switches": len(lab.name_of),
        "directed_links": len(topo.links),
        "hosts": len(lab.hosts),
        "forwarding_ops": entries,
        "cpu_s": clock.cpu,
        "wall_s": clock.wall,
    }


def _check(lab: EngineDriver, flows: list[NewFlow], *, placed: bool) -> None:
    """A sample of flows, walked through the fake tables: trapped to the controller
    before setup; after it, delivered to the destination only, on the placed path."""
    for flow in flows:
        pkt = lab.packet(flow.src, flow.dst, udp_src=flow.five_tuple.src_port)
        walk = lab.fake.walk(flow.src.port.dpid, flow.src.port.port, pkt)
        if not placed:
            if not walk.reached_controller:
                raise RuntimeError(f"{flow.five_tuple} does not meet the class trap")
            continue
        tracked = lab.engine.placer.te.flow_by_five_tuple(flow.five_tuple)
        if tracked is None or not walk.only_to(flow.dst.port):
            raise RuntimeError(f"{flow.five_tuple} was not set up: {walk.terminals}")
        if walk.paths != {tracked.path.switches}:
            raise RuntimeError(f"{flow.five_tuple} walks {walk.paths}, placed {tracked.path}")


class _Traffic:
    """Port counters that show the placed flows' traffic, as a real fabric's would:
    every flow sends FLOW_BPS over each link of its path from the start of the second
    it is placed in, so the engine's measured load catches up with its placements
    at each poll (the core benchmark does the same to its state). With counters
    that stay at zero, a placement's recent load expires after its visibility
    window (~3,000 flows here) and least-utilized then sees an idle fabric whose
    ties go to the lowest spine: 10 % of 100,000 flows crossed spine1 and 2 crossed
    spine64 at 64 x 512, so a lost spine moved 6.5 times the flows a real one would.
    """

    def __init__(self, lab: EngineDriver) -> None:
        self._lab = lab
        self._bytes_per_s: dict[PortRef, list[float]] = {}  # port -> [tx, rx]
        self._since = lab.now

    def start(self, flows: list[NewFlow]) -> None:
        """The placed ones of ``flows`` send from now on."""
        te = self._lab.engine.placer.te
        rate = self._bytes_per_s
        for flow in flows:
            placed = te.flow_by_five_tuple(flow.five_tuple)
            for lid in placed.path.links if placed is not None else ():
                rate.setdefault(lid.src, [0.0, 0.0])[0] += FLOW_BPS / 8
                rate.setdefault(lid.dst, [0.0, 0.0])[1] += FLOW_BPS / 8

    def advance(self) -> None:
        """The counters at the lab's clock."""
        counters = self._lab.counters
        dt, self._since = self._lab.now - self._since, self._lab.now
        for port, (tx, rx) in self._bytes_per_s.items():
            old = counters.get(port) or PortCounters()
            counters[port] = replace(
                old, tx_bytes=old.tx_bytes + round(tx * dt), rx_bytes=old.rx_bytes + round(rx * dt)
            )


def run_setups(
    lab: EngineDriver,
    publisher: Publisher,
    flows: list[NewFlow],
    *,
    first: Callable[..., tuple[float, float]] = first_packet,
) -> dict[str, Any]:
    """Every flow's first packet through the engine; the hub's tick after each
    simulated second, timed apart. The switches' port counters show the traffic
    of the flows placed (:class:`_Traffic`), also outside the timed region. As in
    the hub, every output goes to the publisher (its notices onto the event
    stream), and each tick ends with a publication of the read models.

    ``cpu_s``: CPU seconds of the setups, read once per simulated second (engine,
    fake switches and this loop). The split between the engine's calls
    (``packet_in``, then ``program_confirmed`` per program) and the fake switches
    applying the programs is timed per call with the performance counter: reading
    the process CPU clock is a system call (~0.5 us here) and four of them per
    flow would add ~2 us to a ~100 us setup.

    ``first``: handles one flow's first packet as :func:`first_packet` does (which
    it is unless a caller wraps it, as :mod:`benchmarks.setup_steps` does).
    """
    absorb = publisher.absorb
    t0 = lab.now
    engine_s = switch_s = tick_s = cpu_s = 0.0
    window_rates: list[float] = []
    traffic = _Traffic(lab)
    for start in range(0, len(flows), TICK_EVERY):
        cpu0 = time.process_time()
        for i, flow in enumerate(flows[start : start + TICK_EVERY], start):
            in_engine, in_switches = first(lab, absorb, flow, now=t0 + i * ARRIVAL_S)
            engine_s += in_engine
            switch_s += in_switches
        window_s = time.process_time() - cpu0
        cpu_s += window_s
        if window_s > 0:
            window_rates.append(len(flows[start : start + TICK_EVERY]) / window_s)
        lab.now = t0 + min(len(flows), start + TICK_EVERY) * ARRIVAL_S
        traffic.start(flows[start : start + TICK_EVERY])
        traffic.advance()
        c4 = time.process_time()
        lab.tick()
        publisher.publish()
        tick_s += time.process_time() - c4
    return {
        "engine_s": engine_s,
        "switch_s": switch_s,
        "tick_s": tick_s,
        "cpu_s": cpu_s,
        "window_rates": window_rates,
    }


def engine_setups(
    fab: Any,
    n_flows: int,
    *,
    seed: int,
    heap_policy: bool,
    hosts_per_leaf: int = ENGINE_HOSTS_PER_LEAF,
) -> dict[str, Any]:
    """Bring the fabric up, then set up ``n_flows`` new flows through the engine:
    all but the last fifth (at most :data:`COUNTED_SETUPS`) timed, those traced for
    their lines (:func:`lines_per_setup`); the failures run with all of them placed.

    ``heap_policy``: the engine's garbage-collector policy is on (the hub freezes
    the collector's view once per poll round); off, the collector runs at its
    default settings over everything made after startup (the benchmark's own
    objects and the brought-up fabric are frozen out of it in both cases).
    """
    gc.collect()  # what earlier runs left (engines hold cycles) must not be walked here
    with CollectorSettings():  # the policy's settings end with the run
        lab = driver_for(fab, hosts_per_leaf=hosts_per_leaf, seed=seed, heap_policy=heap_policy)
        bring = bring_up(lab)
        flows = workload(lab, n_flows, random.Random(seed))
        # The last few are set up after the timed ones, traced for their lines.
        timed = flows[: len(flows) - min(COUNTED_SETUPS, len(flows) // 5)]
        sample = timed[:: max(1, len(timed) // 20)]
        _check(lab, sample, placed=False)
        gc.collect()
        gc.freeze()  # the workload, the switches' tables and startup: not the setups' garbage
        publisher = Publisher(lab.engine, bus=EventBus(), metrics=lab.metrics, clock=Clock())
        lab.on_output = publisher.absorb  # the ticks' outputs, as the hub's execute does
        timing = run_setups(lab, publisher, timed)
        placed = len(lab.engine.placer.te)
        _check(lab, sample, placed=True)
        views = publish_views(publisher, lab)
        lines = lines_per_setup(lab, publisher.absorb, flows[len(timed) :])
        # The failures are measured with the collector as the hub keeps it (what is
        # alive frozen once per poll round): outside the policy, a reaction's first
        # full collection walks every flow and table (1.1 s of a 2.4 s lost spine
        # at 64 x 512 with 20,000 flows), which the hub never does in a reaction.
        learned = host_learned(lab) if heap_policy else None
        failure = link_failure(lab) if heap_policy else None
        spine = spine_down(lab) if heap_policy else None
    placer = lab.engine.placer
    total = timing["cpu_s"]
    ticks = max(1, -(-len(timed) // TICK_EVERY))
    return {
        "hosts_per_leaf": hosts_per_leaf,
        "heap_policy": heap_policy,
        "bring_up": bring,
        "flows": len(flows),
        "timed_flows": len(timed),
        "placed": placed,  # of the timed
        "not_placed": dict(placer.counters),
        "setups_per_s": round(placed / total, 1),
        "setups_per_s_windows": _windows(timing["window_rates"]),
        "engine_only_setups_per_s": round(placed / timing["engine_s"], 1),
        "us_per_flow": round(total / len(timed) * 1e6, 2),
        "lines_per_setup": lines,
        "engine_us_per_flow": round(timing["engine_s"] / len(timed) * 1e6, 2),
        "fake_switch_us_per_flow": round(timing["switch_s"] / len(timed) * 1e6, 2),
        "tick_s_per_simulated_second": round(timing["tick_s"] / ticks, 4),
        "poll": {  # the interval in use (stretched when a round costs over the budget)
            "interval_s": round(lab.engine.polls.interval, 2),
            "round_work_s": round(lab.engine.polls.round_work, 3),
            "budget": lab.engine.polls.budget,
        },
        "lldp": {  # the same for discovery's probe rounds
            "interval_s": round(lab.net.lldp.interval, 2),
            "round_work_s": round(lab.net.lldp.round_work, 3),
            "budget": lab.net.lldp.budget,
        },
        "heap_work": {w: lab.heap_work.count(w) for w in sorted(set(lab.heap_work))},
        "views": views,
        "host_learned": learned,
        "link_failure": failure,
        "spine_down": spine,
        "flow_entries": sum(len(sw.flows) for sw in lab.fake.switches.values()),
    }


def _windows(rates: list[float]) -> dict[str, float] | None:
    """The spread of setups/s over the simulated seconds of a run (each
    :data:`TICK_EVERY` flows, CPU time): the machine's speed moves by the minute
    for this memory-bound work, and a run's mean hides by how much."""
    if not rates:
        return None
    return {
        "windows": len(rates),
        "flows_each": TICK_EVERY,
        "slowest": round(min(rates), 1),
        "median": round(statistics.median(rates), 1),
        "fastest": round(max(rates), 1),
    }


def publish_views(publisher: Publisher, lab: EngineDriver, *, rounds: int = 3) -> dict[str, Any]:
    """The hub's publication of the read models over this fabric and the flows placed
    (it runs after every tick and every command), then what readers pay: an API call
    reading every link and every flow view, and one Prometheus scrape.

    ``publish_s`` is the fastest of ``rounds`` publications (CPU seconds). Readers
    run in other threads but share the interpreter lock with the hub."""
    times = []
    for _ in range(rounds):
        publisher.absorb(EngineOutput())  # the hub did something: the views are stale
        c0 = time.process_time()
        publisher.publish()
        times.append(time.process_time() - c0)
    views = publisher.views
    c0 = time.process_time()
    links = sum(1 for _ in views.topology.links)
    flows = sum(1 for _ in views.flows)
    c1 = time.process_time()
    scraped = generate_latest(lab.metrics.registry)
    c2 = time.process_time()
    return {
        "publish_s": round(min(times), 4),
        "links": links,
        "flows": flows,
        "read_all_views_s": round(c1 - c0, 3),
        "scrape_s": round(c2 - c1, 3),
        "scrape_bytes": len(scraped),
    }


def job_place(fab: Any, *, seed: int, ring_hosts: int = JOB_RING_HOSTS) -> dict[str, Any]:
    """A ring job over ``ring_hosts`` hosts (spread evenly over the leaves, ring order
    leaf after leaf) applied through :meth:`FabricEngine.apply_job`: joint placement,
    pair rules compiled and programmed, applied to the fake switches and confirmed.

    The collector runs as the hub keeps it (its policy: what is alive frozen once
    per poll round, so no full collection walks the fabric's tables in a reaction);
    at its defaults a full collection could start inside the job and walk every
    table of the brought-up fabric, and what earlier runs of this process left
    (1.5 of 2.3 s at 64 x 512 in one run). ``gc_s`` says how much of ``apply_s``
    the collector took."""
    leaves = len(fab.leaves)
    per_leaf = max(1, -(-ring_hosts // leaves))
    gc.collect()
    with CollectorSettings():  # the policy's settings end with the run
        lab = driver_for(fab, hosts_per_leaf=per_leaf, seed=seed, heap_policy=True)
        bring = bring_up(lab)
        hosts = tuple(h.ip for h in lab.hosts[:ring_hosts])
        job = Job("bench-ring", hosts, ROCE, demand_mbps=LINK_BPS / 1e6 / per_leaf)
        engine = lab.engine
        with CollectorClock() as collector:
            c0, w0 = time.process_time(), time.perf_counter()
            result, out = engine.apply_job(job, dry_run=False, expected_version=None, now=lab.now)
            c1 = time.process_time()
            lab.run(out)
            c2, w2 = time.process_time(), time.perf_counter()
    view = engine.jobs.view_of(job.name)
    if not all(p.placed for p in view.pairs) or len(view.pairs) != len(hosts):
        raise RuntimeError(f"job not in place: {sum(p.placed for p in view.pairs)} pairs placed")
    first, second = lab.hosts[0], lab.hosts[1 % len(hosts)]
    walk = lab.send(first, second, udp_src=50000)
    if not walk.only_to(second.port) or walk.reached_controller:
        raise RuntimeError(f"ring pair {first.ip} -> {second.ip} not delivered: {walk.terminals}")
    return {
        "ring_hosts": len(hosts),
        "hosts_per_leaf": per_leaf,
        "bring_up": bring,
        "apply_s": round(c2 - c0, 3),
        "engine_s": round(c1 - c0, 3),
        "fake_switches_s": round(c2 - c1, 3),
        "gc_s": round(collector.seconds, 3),  # of apply_s: the cyclic collector's
        "wall_s": round(w2 - w0, 3),
        "max_utilization": round(result.max_utilization, 3),
        "pairs_moved": result.pairs_moved,
    }
