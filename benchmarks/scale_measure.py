"""Measurements of the core scale benchmark, one function per question.

Every function drives the pure core the way the hub would (a
:class:`~controller.routing.fabricstate.FabricState` kept up to date, a
:class:`~controller.te.engineer.TrafficEngineer` fed flows) on a synthetic
fabric and seeded workload, and returns plain numbers. Rates are computed from
the CPU time of this process spent in the measured calls (a shared machine's
other processes do not count against the core), with wall time next to it.
Objects made only to set the benchmark up (fabric, workload) are frozen out of
the garbage collector first: a controller holds no such list.

The whole engine (new flows through its packet-in entry, a declared job) is
measured by :mod:`benchmarks.scale_engine`.
"""

from __future__ import annotations

import gc
import importlib.util
import itertools
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FsPath
from types import ModuleType
from typing import Any

import networkx as nx

from controller.fabric.events import LinkDown
from controller.fabric.model import FiveTuple, LinkId, Path, PortRef
from controller.flowprog.flowrules import compile_flow
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.routing.fabricstate import FabricState
from controller.routing.strategies import FlowRequest, NetworkView, choose_path
from controller.southbound.collector import tend_heap
from controller.te.engineer import TrafficEngineer

GBIT = 1e9
LINK_BPS = 100 * GBIT
HOSTS_PER_LEAF = 16
ARRIVAL_S = 1e-3  # flows arrive 1 ms apart: recent-placement load spans ~3,000 flows
POLL_EVERY = 1000  # port counters catch up once per simulated second
STRATEGIES = (Strategy.ECMP, Strategy.LEAST_UTILIZED, Strategy.WIDEST, Strategy.WEIGHTED)
HOT_LINKS = 4
TARGET_UTILIZATION = 0.5
IDLE_TIMEOUT_S = 10


def _load_fabric_builders() -> ModuleType:
    # The synthetic fabric builders are shared with the unit tests. A third-party
    # distribution installs a top-level package called ``tests`` that shadows
    # ours, so the module is loaded by file location.
    path = FsPath(__file__).resolve().parents[1] / "tests" / "unit" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("_synthetic_fabrics", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the fabric builders from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


synthetic = _load_fabric_builders()


@dataclass(frozen=True)
class Work:
    """One AI flow of the workload."""

    five_tuple: FiveTuple
    src: PortRef
    dst: PortRef
    demand_bps: float


def workload(fab: Any, n: int, rng: random.Random) -> list[Work]:
    """``n`` RoCEv2 flows between random hosts on different leaves (distinct 5-tuples).

    Demands are scaled to the fabric so that, spread perfectly, uplinks would
    run at about TARGET_UTILIZATION: the interesting regime, where placement
    decides whether links congest.
    """
    leaves = fab.leaves
    mean_bps = TARGET_UTILIZATION * len(fab.spines) * len(leaves) * LINK_BPS / n
    seen: set[FiveTuple] = set()
    flows: list[Work] = []
    while len(flows) < n:
        a, b = rng.sample(range(len(leaves)), 2)
        ha, hb = rng.randrange(HOSTS_PER_LEAF), rng.randrange(HOSTS_PER_LEAF)
        ft = FiveTuple(
            src_ip=f"10.{a >> 8}.{a & 0xFF}.{ha + 1}",
            dst_ip=f"10.{b >> 8}.{b & 0xFF}.{hb + 1}",
            ip_proto=17,
            src_port=rng.randrange(49152, 65536),
            dst_port=4791,
        )
        if ft in seen:
            continue
        seen.add(ft)
        flows.append(
            Work(
                five_tuple=ft,
                src=fab.host_port(leaves[a], ha),
                dst=fab.host_port(leaves[b], hb),
                demand_bps=rng.uniform(0.5, 1.5) * mean_bps,
            )
        )
    return flows


def policy_for(strategy: Strategy, fab: Any) -> Policy:
    weights = ((fab.spines[0], 2.0),) if strategy is Strategy.WEIGHTED else ()
    roce = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
    return Policy(
        name=f"bench-{strategy.value}",
        priority=100,
        match=(roce,),
        strategy=strategy,
        weights=weights,
    )


def state_of(fab: Any) -> FabricState:
    """The placement state of a synthetic fabric, laid out (as the engine would keep it)."""
    state = FabricState.from_view(fab.view())
    _ = state.layout
    return state


@dataclass
class Placed:
    engineer: TrafficEngineer
    state: FabricState
    cpu_s: float
    wall_s: float
    gc_s: float  # of cpu_s, spent in the cyclic garbage collector
    load: dict[LinkId, float]


class CollectorClock:
    """CPU seconds spent in garbage collections while it is installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            self.seconds += time.process_time() - self._began

    def __enter__(self) -> CollectorClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class CollectorSettings:
    """On exit, the collector's thresholds as they were and nothing frozen: a run
    with the hub's policy (:func:`tend_heap` raises the middle threshold and
    freezes) must not leak into the next."""

    def __enter__(self) -> CollectorSettings:
        self._threshold = gc.get_threshold()
        return self

    def __exit__(self, *exc: object) -> None:
        gc.set_threshold(*self._threshold)
        gc.unfreeze()


def place_all(
    fab: Any, flows: list[Work], strategy: Strategy, *, seed: int, freeze_per_poll: bool = False
) -> Placed:
    """Place every flow; CPU and wall seconds are those spent inside ``te.place``.

    Counters are simulated: the state's measured load catches up with the
    placed demands every POLL_EVERY flows (once per simulated second), as
    port-stats polling would, and the engineer's recent load covers the gap.
    ``freeze_per_poll``: the hub's collector policy, carried out as the shim
    does (:func:`tend_heap`) after each poll round: the collector stops walking
    flows it has already seen (they are acyclic: reference counting still frees
    them when they go).
    """
    state = state_of(fab)
    te = TrafficEngineer(seed=seed)
    pol = policy_for(strategy, fab)
    load: dict[LinkId, float] = {}
    cpu = wall = collecting = 0.0
    gc.collect()
    gc.freeze()  # the fabric and the workload are the benchmark's, not the core's
    with CollectorSettings(), CollectorClock() as clock:
        for start in range(0, len(flows), POLL_EVERY):
            batch = flows[start : start + POLL_EVERY]
            c0, w0, g0 = time.process_time(), time.perf_counter(), clock.seconds
            placed = [
                te.place(
                    w.five_tuple,
                    dscp=26,
                    ingress=w.src,
                    egress=w.dst,
                    policy=pol,
                    view=state,
                    now=(start + i) * ARRIVAL_S,
                    demand_bps=w.demand_bps,
                )
                for i, w in enumerate(batch)
            ]
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
            collecting += clock.seconds - g0
            for p, w in zip(placed, batch, strict=True):
                for lid in p.flow.path.links:
                    load[lid] = load.get(lid, 0.0) + w.demand_bps
            state.set_loads(load)
            if freeze_per_poll:
                tend_heap("freeze")
    return Placed(te, state, cpu, wall, collecting, load)


def spine_failure(fab: Any, placed: Placed, *, now: float) -> dict[str, Any]:
    """One spine fails: the state learns it, every flow through it is re-placed and
    each moved flow's rules are compiled (with its fast-failover backup)."""
    te, state = placed.engineer, placed.state
    failed = fab.spines[0]
    links = fab.links_of(failed)
    events = [LinkDown(time=now, link=lid, reason="switch-down") for lid in links]
    c0, w0 = time.process_time(), time.perf_counter()
    state.apply(events)
    outcome = te.on_links_down(links, state, now=now)
    c1 = time.process_time()
    rules = 0
    for move in outcome.moves:
        flow = te.flow(move.flow_id)
        assert flow is not None
        backups = {flow.ingress.dpid: state.next_hops(flow.ingress.dpid, flow.egress.dpid)}
        compiled = compile_flow(
            flow.five_tuple,
            flow_id=flow.flow_id,
            generation=flow.generation,
            path=flow.path,
            egress_port=flow.egress.port,
            idle_timeout=IDLE_TIMEOUT_S,
            backup_ports=backups,
        )
        rules += sum(len(entries) for entries in compiled.needs.flows.values())
    c2, w2 = time.process_time(), time.perf_counter()
    return {
        "failed_switch": failed,
        "affected_flows": len(outcome.moves) + len(outcome.stranded),
        "moved": len(outcome.moves),
        "stranded": len(outcome.stranded),
        "flow_entries_compiled": rules,
        "replace_s": round(c1 - c0, 4),
        "compile_s": round(c2 - c1, 4),
        "seconds": round(c2 - c0, 4),
        "wall_seconds": round(w2 - w0, 4),
    }


def rebalance_round(fab: Any, placed: Placed, *, now: float) -> dict[str, Any]:
    """Measured rates = demands; the busiest uplinks are pushed to 130 % to make hot spots."""
    te, state = placed.engineer, placed.state
    te.update_rates({f.flow_id: f.demand_bps for f in te.snapshot()}, now=now)
    load: dict[LinkId, float] = dict.fromkeys(state.layout.index, 0.0)
    for flow in te.snapshot():
        for lid in flow.path.links:
            load[lid] += flow.rate_bps
    leaves = {fab.dpid(name) for name in fab.leaves}
    uplinks = [lid for lid, bps in load.items() if bps > 0 and lid.src.dpid in leaves]
    hottest = sorted(uplinks, key=lambda lid: (-load[lid], lid))[:HOT_LINKS]
    for lid in hottest:
        load[lid] = 1.3 * fab.capacity[lid]
    state.set_loads(load)
    c0, w0 = time.process_time(), time.perf_counter()
    outcome = te.rebalance(state, now=now + 60.0, reason="congestion")
    c1, w1 = time.process_time(), time.perf_counter()
    return {
        "constructed_hot_links": len(hottest),
        "hot_links_found": len(outcome.hot),
        "moves": len(outcome.moves),
        "stuck": len(outcome.stuck),
        "seconds": round(c1 - c0, 4),
        "wall_seconds": round(w1 - w0, 4),
    }


def peak_memory(fab: Any, flows: list[Work], *, seed: int) -> dict[str, Any]:
    tracemalloc.start()
    try:
        placed = place_all(fab, flows, Strategy.ECMP, seed=seed)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del placed
    return {
        "what": "tracemalloc peak while placing every flow (ecmp): fabric state, engineer, "
        "flow table, load bookkeeping",
        "peak_mib": round(peak / 2**20, 1),
        "retained_mib": round(current / 2**20, 1),
    }


def fast_path_share(fab: Any, flows: list[Work]) -> float:
    """Share of the workload's flows whose leaf pair the fast path answers."""
    state = state_of(fab)
    pairs = {(w.src.dpid, w.dst.dpid) for w in flows}
    fast = {pair for pair in pairs if _has_common_middle(state, *pair)}
    return sum(1 for w in flows if (w.src.dpid, w.dst.dpid) in fast) / max(1, len(flows))


def _has_common_middle(state: FabricState, src: int, dst: int) -> bool:
    rows = state.rows(src, dst)
    return rows is not None and bool((state.usable[rows.up] & state.usable[rows.down]).any())


def _timed_sample(flows: list[Work], sample: int, run: Callable[[Work], object]) -> float:
    subset = flows[:sample]
    started = time.process_time()
    for work in subset:
        run(work)
    return (time.process_time() - started) / len(subset)


def naive_baseline(fab: Any, flows: list[Work], sample: int, *, placed_s: float) -> dict[str, Any]:
    """least-utilized with paths from ``nx.all_shortest_paths`` per flow, no cache."""
    graph = fab.graph
    view = fab.view()
    pol = policy_for(Strategy.LEAST_UTILIZED, fab)

    def run(work: Work) -> object:
        found = nx.all_shortest_paths(graph, work.src.dpid, work.dst.dpid)
        candidates = sorted(
            (
                Path.of_links([graph.adj[a][b]["link"] for a, b in itertools.pairwise(p)])
                for p in found
            ),
            key=lambda p: p.links,
        )
        request = FlowRequest(work.five_tuple, work.src.dpid, work.dst.dpid, work.demand_bps)
        return choose_path(
            Strategy.LEAST_UTILIZED, candidates, flow=request, view=view, policy=pol, seed=0
        )

    per_flow = _timed_sample(flows, sample, run)
    return {
        "method": "networkx.all_shortest_paths per flow, no cache, then least-utilized",
        "sample_flows": min(sample, len(flows)),
        "seconds_per_flow": round(per_flow, 6),
        "extrapolated_seconds": round(per_flow * len(flows), 2),
        "extrapolated_flows_per_s": round(1 / per_flow, 1),
        "extrapolated": True,
        "speedup_of_least_utilized": round(per_flow * len(flows) / placed_s, 1),
    }


def view_baseline(fab: Any, flows: list[Work], sample: int, *, seed: int) -> dict[str, Any]:
    """The per-call path the engine uses until it keeps a state: for every new flow a
    NetworkView whose capacity and load mappings cover every link (as
    ``FlowPlacer.view()`` builds them), then candidate paths from the path cache."""
    te = TrafficEngineer(seed=seed)
    pol = policy_for(Strategy.LEAST_UTILIZED, fab)
    links = [(lid, fab.capacity[lid]) for _, _, lid in fab.graph.edges(data="link")]

    def run(work: Work) -> object:
        view = NetworkView(
            graph=fab.graph,
            capacity={lid: cap for lid, cap in links},
            load_bps={lid: 0.0 for lid, _ in links},
            names=fab.names,
        )
        return te.place(
            work.five_tuple,
            dscp=26,
            ingress=work.src,
            egress=work.dst,
            policy=pol,
            view=view,
            now=0.0,
            demand_bps=work.demand_bps,
        )

    per_flow = _timed_sample(flows, sample, run)
    return {
        "method": "te.place with a NetworkView of every link built per flow",
        "sample_flows": min(sample, len(flows)),
        "seconds_per_flow": round(per_flow, 6),
        "extrapolated_flows_per_s": round(1 / per_flow, 1),
        "extrapolated": True,
    }
