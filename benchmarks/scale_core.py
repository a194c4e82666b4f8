"""Scale benchmark of the pure traffic-engineering core on synthetic leaf-spine fabrics.

For each fabric size (up to 64 spines x 512 leaves and 100,000 AI flows between
random host pairs, all seeded) it measures: the placement rate of each strategy
(ecmp, least-utilized, widest, weighted), the time to re-place every flow hit by
one spine failure, one rebalance round with constructed hot spots, the peak
memory of an engineer holding every flow (tracemalloc), and, in the same run,
the naive baseline: ``networkx.all_shortest_paths`` recomputed per flow with no
cache, timed on a sample of flows and extrapolated (and labelled so).

No switches, no Mininet: the core is driven directly, as the hub would drive
it. Results go to ``--out`` (default ``out/bench/``) as ``scale_core.json``
(stable keys) and ``scale_core.md``. ``--quick`` runs tiny sizes in seconds.

    python -m benchmarks.scale_core [--quick] [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import itertools
import json
import os
import platform
import random
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path as FsPath
from types import ModuleType
from typing import Any

import networkx as nx

from controller.fabric.model import FiveTuple, LinkId, Path, PortRef
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.routing.strategies import FlowRequest, choose_path
from controller.te.engineer import TrafficEngineer

GBIT = 1e9
LINK_BPS = 100 * GBIT
HOSTS_PER_LEAF = 16
ARRIVAL_S = 1e-3  # flows arrive 1 ms apart: recent-placement load spans ~3,000 flows
STRATEGIES = (Strategy.ECMP, Strategy.LEAST_UTILIZED, Strategy.WIDEST, Strategy.WEIGHTED)
HOT_LINKS = 4
TARGET_UTILIZATION = 0.5


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
class Size:
    spines: int
    leaves: int
    flows: int
    naive_sample: int

    @property
    def label(self) -> str:
        return f"{self.spines}x{self.leaves}/{self.flows}"


FULL_SIZES = (
    Size(4, 16, 1_000, 200),
    Size(16, 64, 10_000, 200),
    Size(32, 256, 50_000, 100),
    Size(64, 512, 100_000, 50),
)
QUICK_SIZES = (
    Size(2, 4, 100, 20),
    Size(4, 16, 500, 20),
    Size(8, 32, 1_000, 20),
    Size(16, 64, 2_000, 20),
)


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
    weights = (("spine1", 2.0),) if strategy is Strategy.WEIGHTED else ()
    roce = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
    return Policy(
        name=f"bench-{strategy.value}",
        priority=100,
        match=(roce,),
        strategy=strategy,
        weights=weights,
    )


def place_all(
    fab: Any, flows: list[Work], strategy: Strategy, *, seed: int
) -> tuple[TrafficEngineer, float, dict[LinkId, float]]:
    """Place every flow; returns the engineer, seconds spent in ``place`` and link loads.

    Counters are simulated: the view's measured load catches up with the
    placed demands once per simulated second, as port-stats polling would, and
    the engineer's recent-placement load covers the gap in between.
    """
    te = TrafficEngineer(seed=seed)
    pol = policy_for(strategy, fab)
    load: dict[LinkId, float] = {}
    view = fab.view()
    per_poll = max(1, round(1.0 / ARRIVAL_S))
    spent = 0.0
    for i, work in enumerate(flows):
        if i and i % per_poll == 0:
            view = fab.view(load=load)
        started = time.perf_counter()
        placed = te.place(
            work.five_tuple,
            dscp=26,
            ingress=work.src,
            egress=work.dst,
            policy=pol,
            view=view,
            now=i * ARRIVAL_S,
            demand_bps=work.demand_bps,
        )
        spent += time.perf_counter() - started
        for lid in placed.flow.path.links:
            load[lid] = load.get(lid, 0.0) + work.demand_bps
    return te, spent, load


def spine_failure(
    fab: Any, te: TrafficEngineer, load: dict[LinkId, float], *, now: float
) -> dict[str, Any]:
    failed = fab.spines[0]
    links = fab.links_of(failed)
    view = fab.view(graph=fab.graph_without(switches=[failed]), load=load)
    started = time.perf_counter()
    outcome = te.on_links_down(links, view, now=now)
    seconds = time.perf_counter() - started
    return {
        "failed_switch": failed,
        "affected_flows": len(outcome.moves) + len(outcome.stranded),
        "moved": len(outcome.moves),
        "stranded": len(outcome.stranded),
        "seconds": round(seconds, 4),
    }


def rebalance_round(fab: Any, te: TrafficEngineer, *, now: float) -> dict[str, Any]:
    """Measured rates = demands; the busiest uplinks are pushed to 130 % to make hot spots."""
    te.update_rates({f.flow_id: f.demand_bps for f in te.snapshot()}, now=now)
    load: dict[Any, float] = {}
    for flow in te.snapshot():
        for lid in flow.path.links:
            load[lid] = load.get(lid, 0.0) + flow.rate_bps
    uplinks = [lid for lid in load if fab.names[lid.src.dpid] in set(fab.leaves)]
    hottest = sorted(uplinks, key=lambda lid: (-load[lid], lid))[:HOT_LINKS]
    for lid in hottest:
        load[lid] = 1.3 * fab.capacity[lid]
    graph = fab.graph_without(switches=[fab.spines[0]])  # the failure above persists
    view = fab.view(load=load, graph=graph)
    started = time.perf_counter()
    outcome = te.rebalance(view, now=now + 60.0, reason="congestion")
    seconds = time.perf_counter() - started
    return {
        "constructed_hot_links": len(hottest),
        "hot_links_found": len(outcome.hot),
        "moves": len(outcome.moves),
        "stuck": len(outcome.stuck),
        "seconds": round(seconds, 4),
    }


def peak_memory(fab: Any, flows: list[Work], *, seed: int) -> dict[str, Any]:
    tracemalloc.start()
    try:
        te, _, _ = place_all(fab, flows, Strategy.ECMP, seed=seed)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del te
    return {
        "what": "tracemalloc peak while placing every flow (ecmp): engineer, flow table, caches",
        "peak_mib": round(peak / 2**20, 1),
        "retained_mib": round(current / 2**20, 1),
    }


def naive_baseline(fab: Any, flows: list[Work], sample: int, *, placed_s: float) -> dict[str, Any]:
    """least-utilized with paths from ``nx.all_shortest_paths`` per flow, no cache."""
    graph = fab.graph
    view = fab.view()
    pol = policy_for(Strategy.LEAST_UTILIZED, fab)
    subset = flows[:sample]
    started = time.perf_counter()
    for work in subset:
        found = nx.all_shortest_paths(graph, work.src.dpid, work.dst.dpid)
        candidates = sorted(
            (
                Path.of_links([graph.adj[a][b]["link"] for a, b in itertools.pairwise(p)])
                for p in found
            ),
            key=lambda p: p.links,
        )
        request = FlowRequest(work.five_tuple, work.src.dpid, work.dst.dpid, work.demand_bps)
        choose_path(
            Strategy.LEAST_UTILIZED, candidates, flow=request, view=view, policy=pol, seed=0
        )
    per_flow = (time.perf_counter() - started) / len(subset)
    extrapolated = per_flow * len(flows)
    return {
        "method": "networkx.all_shortest_paths per flow, no cache, then least-utilized",
        "sample_flows": len(subset),
        "seconds_per_flow": round(per_flow, 6),
        "extrapolated_seconds": round(extrapolated, 2),
        "extrapolated_flows_per_s": round(1 / per_flow, 1),
        "extrapolated": True,
        "speedup_of_least_utilized": round(extrapolated / placed_s, 1),
    }


def run_size(size: Size, *, seed: int, log: Any) -> dict[str, Any]:
    rng = random.Random(seed)
    fab = synthetic.leaf_spine(size.spines, size.leaves, capacity_bps=LINK_BPS)
    flows = workload(fab, size.flows, rng)
    result: dict[str, Any] = {
        "size": size.label,
        "spines": size.spines,
        "leaves": size.leaves,
        "directed_links": fab.graph.number_of_edges(),
        "flows": size.flows,
        "placement": {},
    }
    kept: tuple[TrafficEngineer, dict[LinkId, float]] | None = None
    for strategy in STRATEGIES:
        te, seconds, load = place_all(fab, flows, strategy, seed=seed)
        result["placement"][strategy.value] = {
            "seconds": round(seconds, 3),
            "flows_per_s": round(size.flows / seconds, 1),
            "max_link_utilization": round(max(load.values()) / LINK_BPS, 3),
        }
        log(f"  {size.label} place {strategy.value}: {size.flows / seconds:,.0f} flows/s")
        if strategy is Strategy.LEAST_UTILIZED:
            kept = (te, load)  # the others are dropped to keep memory flat
        del te, load
    assert kept is not None
    te, load = kept
    now = size.flows * ARRIVAL_S + 10.0
    result["spine_failure"] = spine_failure(fab, te, load, now=now)
    log(f"  {size.label} spine failure: {result['spine_failure']}")
    result["rebalance"] = rebalance_round(fab, te, now=now + 1.0)
    log(f"  {size.label} rebalance: {result['rebalance']}")
    del te, load, kept
    result["memory"] = peak_memory(fab, flows, seed=seed)
    log(f"  {size.label} memory: {result['memory']['peak_mib']} MiB peak")
    placed_s = result["placement"][Strategy.LEAST_UTILIZED.value]["seconds"]
    result["naive_baseline"] = naive_baseline(fab, flows, size.naive_sample, placed_s=placed_s)
    log(f"  {size.label} naive: {result['naive_baseline']['seconds_per_flow'] * 1e3:.2f} ms/flow")
    return result


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "networkx": nx.__version__,
    }


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Core scale benchmark",
        "",
        f"{report['date']}, {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}"
        f"{' (quick)' if report['quick'] else ''}. Seed {report['seed']}.",
        "",
        "Placement rate in flows/s (time inside `place` only, cold caches, one engineer per "
        "strategy, counters catching up once per simulated second); failure = re-place "
        "every flow of one failed spine (least-utilized); rebalance = one round with "
        f"{HOT_LINKS} uplinks pushed to 130 %; naive = `nx.all_shortest_paths` per flow, "
        "**extrapolated** from a sample.",
        "",
        "| fabric | flows | ecmp | least-utilized | widest | weighted | failure: flows / s "
        "| rebalance: moves / s | peak MiB | naive (extrapolated) s | speedup |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        p = r["placement"]
        f, rb, nv = r["spine_failure"], r["rebalance"], r["naive_baseline"]
        lines.append(
            f"| {r['spines']} spines x {r['leaves']} leaves | {r['flows']:,} "
            + "".join(f"| {p[s.value]['flows_per_s']:,.0f} " for s in STRATEGIES)
            + f"| {f['affected_flows']:,} / {f['seconds']:.3f} "
            f"| {rb['moves']} / {rb['seconds']:.3f} "
            f"| {r['memory']['peak_mib']} "
            f"| {nv['extrapolated_seconds']:,.1f} (n={nv['sample_flows']}) "
            f"| {nv['speedup_of_least_utilized']}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_core", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--out", default="out/bench", help="output directory")
    parser.add_argument("--seed", type=int, default=1, help="workload and hashing seed")
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    started = time.perf_counter()
    results = []
    for size in sizes:
        log(f"{size.label}: {size.spines} spines x {size.leaves} leaves, {size.flows:,} flows")
        results.append(run_size(size, seed=args.seed, log=log))
    report = {
        "benchmark": "scale_core",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "seed": args.seed,
        "machine": machine_info(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    out = FsPath(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale_core.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "scale_core.md").write_text(markdown(report))
    log(f"wrote {out / 'scale_core.json'} and {out / 'scale_core.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
