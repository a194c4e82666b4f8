"""Scale benchmark of the pure traffic-engineering core on synthetic fabrics.

For each fabric size (up to 64 spines x 512 leaves and 100,000 AI flows between
random host pairs, all seeded) it measures, with one placement state kept up
to date as the engine keeps it:

- the decision: placements per second of each strategy (ecmp, least-utilized,
  widest, weighted), time inside ``TrafficEngineer.place`` only;
- a spine failure end to end: the state learns the lost links, every flow
  through the spine is re-placed and each moved flow's rules are compiled;
- one rebalance round with constructed hot spots; peak memory (tracemalloc);
- side by side, the baselines: ``networkx.all_shortest_paths`` per flow and
  the per-call path (a NetworkView of the whole fabric per flow), timed on a
  sample and extrapolated (and labelled so);
- the whole engine (:mod:`benchmarks.scale_engine`): the fabric brought up
  through discovery with one default-forwarding compile (timed apart), then
  every flow's first packet through ``FabricEngine.packet_in`` into fake
  OpenFlow tables, with the hub's garbage-collector policy on and off
  (``engine_setups_per_s``); and a ring job over up to 4,096 hosts applied
  through ``FabricEngine.apply_job`` (``job_place_s``). ``--no-engine``
  leaves them out (null).

Results go to ``--out`` (default ``out/bench/``) as ``scale_core.json`` and
``scale_core.md``; ``--json FILE`` also writes the headline numbers of the
largest size. ``--quick`` runs tiny sizes in seconds; ``--spines --leaves
--flows`` run one size; ``--flows-each N`` every size with N flows (the cost
per flow across fabric sizes at equal load: the default sizes grow their flows
with the fabric, and a larger heap alone makes each flow slower);
``--fabric three-tier`` a fabric that is not 2-tier (served by the general
path, slower).

    python -m benchmarks.scale_core [--quick] [--spines S --leaves L --flows N]
        [--flows-each N] [--fabric leaf-spine|three-tier] [--no-engine]
        [--json FILE] [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path as FsPath
from typing import Any

import networkx as nx
import numpy as np

from benchmarks import scale_engine as e
from benchmarks import scale_measure as m
from benchmarks.oneline import OneLineParser
from benchmarks.report import cpu_model, speed_probe
from controller.policy.model import Strategy

PODS = 4  # three-tier fabrics: leaves split over this many pods
STRATEGIES = m.STRATEGIES


@dataclass(frozen=True)
class Size:
    spines: int
    leaves: int
    flows: int
    naive_sample: int
    fabric: str = "leaf-spine"

    @property
    def label(self) -> str:
        return f"{self.spines}x{self.leaves}/{self.flows}"

    def build(self) -> Any:
        if self.fabric == "three-tier":
            return m.synthetic.three_tier(
                pods=PODS,
                leaves_per_pod=self.leaves // PODS,
                aggs_per_pod=max(2, self.spines // 2),
                spines=self.spines,
                capacity_bps=m.LINK_BPS,
            )
        return m.synthetic.leaf_spine(self.spines, self.leaves, capacity_bps=m.LINK_BPS)


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
LIMITS = {"spines": (1, 1024), "leaves": (2, 8192), "flows": (1, 2_000_000)}


def run_size(
    size: Size, *, seed: int, log: Any, engine: bool = True, quick: bool = False
) -> dict[str, Any]:
    rng = random.Random(seed)
    fab = size.build()
    flows = m.workload(fab, size.flows, rng)
    share = m.fast_path_share(fab, flows)
    if share < 1.0:
        log(
            f"  {size.label}: not a 2-tier fabric for every flow: {1 - share:.0%} of flows "
            "take the general path (candidate paths enumerated per switch pair), slower"
        )
    result: dict[str, Any] = {
        "size": size.label,
        "fabric": size.fabric,
        "spines": size.spines,
        "leaves": size.leaves,
        "directed_links": fab.graph.number_of_edges(),
        "flows": size.flows,
        "fast_path_share": round(share, 4),
        "placement": {},
    }
    kept: m.Placed | None = None
    for strategy in STRATEGIES:
        placed = m.place_all(fab, flows, strategy, seed=seed)
        util = max(placed.load.values()) / m.LINK_BPS if placed.load else 0.0
        result["placement"][strategy.value] = {
            "seconds": round(placed.cpu_s, 3),
            "wall_seconds": round(placed.wall_s, 3),
            "flows_per_s": round(size.flows / placed.cpu_s, 1),
            "us_per_flow": round(placed.cpu_s / size.flows * 1e6, 2),
            "gc_seconds": round(placed.gc_s, 3),
            "us_per_flow_outside_gc": round((placed.cpu_s - placed.gc_s) / size.flows * 1e6, 2),
            "max_link_utilization": round(util, 3),
        }
        log(f"  {size.label} place {strategy.value}: {size.flows / placed.cpu_s:,.0f} flows/s")
        if strategy is Strategy.LEAST_UTILIZED:
            kept = placed  # the others are dropped to keep memory flat
        del placed
    assert kept is not None
    frozen = m.place_all(fab, flows, Strategy.LEAST_UTILIZED, seed=seed, freeze_per_poll=True)
    result["least_utilized_hub_freeze"] = {
        "what": "least-utilized again, the hub calling gc.freeze() after each poll round",
        "flows_per_s": round(size.flows / frozen.cpu_s, 1),
        "gc_seconds": round(frozen.gc_s, 3),
    }
    log(
        f"  {size.label} least-utilized, gc.freeze() per poll: "
        f"{size.flows / frozen.cpu_s:,.0f} flows/s"
    )
    del frozen
    now = size.flows * m.ARRIVAL_S + 10.0
    result["spine_failure"] = m.spine_failure(fab, kept, now=now)
    log(f"  {size.label} spine failure: {result['spine_failure']}")
    result["rebalance"] = m.rebalance_round(fab, kept, now=now + 1.0)
    log(f"  {size.label} rebalance: {result['rebalance']}")
    del kept
    result["memory"] = m.peak_memory(fab, flows, seed=seed)
    log(f"  {size.label} memory: {result['memory']['peak_mib']} MiB peak")
    placed_s = result["placement"][Strategy.LEAST_UTILIZED.value]["seconds"]
    result["naive_baseline"] = m.naive_baseline(fab, flows, size.naive_sample, placed_s=placed_s)
    result["view_baseline"] = m.view_baseline(fab, flows, size.naive_sample, seed=seed)
    log(f"  {size.label} naive: {result['naive_baseline']['seconds_per_flow'] * 1e3:.2f} ms/flow")
    result["engine_setups_per_s"] = result["job_place_s"] = None
    if engine and size.fabric == "leaf-spine":
        result.update(engine_measurements(size, fab, seed=seed, log=log, both=not quick))
    return result


def engine_measurements(
    size: Size, fab: Any, *, seed: int, log: Any, both: bool = True
) -> dict[str, Any]:
    """The whole engine on this fabric: setups with (and, if ``both``, without) the
    collector policy, and a ring job (4,096 hosts where the fabric has 8 per leaf)."""
    runs = {}
    for policy in (True, False) if both else (True,):
        runs[policy] = e.engine_setups(fab, size.flows, seed=seed, heap_policy=policy)
        log(
            f"  {size.label} engine setups (collector policy {'on' if policy else 'off'}): "
            f"{runs[policy]['setups_per_s']:,.0f}/s "
            f"({runs[policy]['engine_us_per_flow']} us engine + "
            f"{runs[policy]['fake_switch_us_per_flow']} us fake switches per flow, "
            f"{runs[policy]['lines_per_setup']} lines of the controller per flow); "
            f"bring-up {runs[policy]['bring_up']['cpu_s']}; "
            f"views published in {runs[policy]['views']['publish_s']} s; "
            f"poll {runs[policy]['poll']}; lldp {runs[policy]['lldp']}; "
            f"host learned {runs[policy]['host_learned']}; "
            f"uplink failure {runs[policy]['link_failure']}; "
            f"spine lost {runs[policy]['spine_down']}"
        )
    ring = min(e.JOB_RING_HOSTS, (8 if both else 2) * size.leaves)
    job = e.job_place(fab, seed=seed, ring_hosts=ring)
    log(
        f"  {size.label} job ring of {job['ring_hosts']} hosts: {job['apply_s']} s "
        f"({job['gc_s']} s of it in the garbage collector)"
    )
    return {
        "engine": {"heap_policy": runs[True], "no_heap_policy": runs.get(False)},
        "engine_setups_per_s": runs[True]["setups_per_s"],
        "job": job,
        "job_place_s": job["apply_s"],
    }


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "networkx": nx.__version__,
        "numpy": np.__version__,
        # The heap's allocator counts at 64 x 512 (a ~1 GiB heap: TLB misses), so
        # a number says which one it ran on (benchmarks/HISTORY.md, "The heap's pages").
        "allocator": {
            "PYTHONMALLOC": os.environ.get("PYTHONMALLOC", ""),
            "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", ""),
        },
    }


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The acceptance numbers of the largest size measured."""
    r = report["results"][-1]
    return {
        "size": r["size"],
        "fabric": r["fabric"],
        "placements_per_s": {s: p["flows_per_s"] for s, p in r["placement"].items()},
        "least_utilized_per_s_with_hub_freeze": r["least_utilized_hub_freeze"]["flows_per_s"],
        "engine_setups_per_s": r["engine_setups_per_s"],
        "engine_setups_per_s_windows": (
            r["engine"]["heap_policy"]["setups_per_s_windows"] if "engine" in r else None
        ),
        "engine_setups_per_s_without_collector_policy": (
            r["engine"]["no_heap_policy"]["setups_per_s"]
            if "engine" in r and r["engine"]["no_heap_policy"]
            else None
        ),
        "engine_us_per_flow_by_size": {
            x["size"]: x["engine"]["heap_policy"]["us_per_flow"]
            for x in report["results"]
            if "engine" in x
        },
        "engine_lines_per_setup_by_size": {
            x["size"]: x["engine"]["heap_policy"]["lines_per_setup"]
            for x in report["results"]
            if "engine" in x
        },
        "engine_bring_up_cpu_s": r["engine"]["heap_policy"]["bring_up"]["cpu_s"]
        if "engine" in r
        else None,
        "publish_views": r["engine"]["heap_policy"]["views"] if "engine" in r else None,
        "poll": r["engine"]["heap_policy"]["poll"] if "engine" in r else None,
        "lldp": r["engine"]["heap_policy"]["lldp"] if "engine" in r else None,
        "engine_link_failure": r["engine"]["heap_policy"]["link_failure"]
        if "engine" in r
        else None,
        "engine_spine_down": r["engine"]["heap_policy"]["spine_down"] if "engine" in r else None,
        "engine_host_learned": r["engine"]["heap_policy"]["host_learned"]
        if "engine" in r
        else None,
        "job_ring_hosts": r["job"]["ring_hosts"] if "job" in r else None,
        "spine_failure_s": r["spine_failure"]["seconds"],
        "spine_failure_flows": r["spine_failure"]["affected_flows"],
        "rebalance_round_s": r["rebalance"]["seconds"],
        "job_place_s": r["job_place_s"],
        "peak_mib": r["memory"]["peak_mib"],
        "us_per_flow_by_size": {
            x["size"]: x["placement"][Strategy.LEAST_UTILIZED.value]["us_per_flow"]
            for x in report["results"]
        },
        "us_per_flow_outside_gc_by_size": {
            x["size"]: x["placement"][Strategy.LEAST_UTILIZED.value]["us_per_flow_outside_gc"]
            for x in report["results"]
        },
        "timing": "CPU seconds of this process in the measured calls",
        "machine": report["machine"],
        "speed": report["speed"],
        "date": report["date"],
    }


def markdown(report: dict[str, Any]) -> str:
    mi = report["machine"]
    lines = [
        "# Core scale benchmark",
        "",
        f"{report['date']}, {mi['processor']}, {mi['cpu_count']} CPUs, {mi['platform']}, "
        f"Python {mi['python']}{' (quick)' if report['quick'] else ''}. Seed {report['seed']}.",
        "",
        "Speed of the machine during the run (best of three, before / after): "
        f"{_speeds(report['speed'], 'python_add_loop_ns')} ns per pure-Python add, "
        f"{_speeds(report['speed'], 'numpy_row_op_ns')} ns per numpy operation on a 64-row, "
        f"{_speeds(report['speed'], 'dict_miss_ns')} ns per random lookup in a dict of a "
        "million ints (memory-bound, like the engine's tables; it moves by the minute).",
        "",
        "Placement rate in flows/s: CPU time inside `place` only, one fabric state kept up "
        "to date, counters catching up once per simulated second; us/flow = least-utilized, "
        "(gc) = of which in the cyclic garbage collector, walking the flows' objects. "
        "Failure = one spine lost end to end: the state learns it, every flow through it is "
        "re-placed and its rules compiled (least-utilized). Rebalance = one round with "
        f"{m.HOT_LINKS} uplinks pushed to 130 %. Naive = `nx.all_shortest_paths` per flow; "
        "view = a NetworkView of the whole fabric per flow (the per-call path); both "
        "**extrapolated** from a sample.",
        "",
        "| fabric | flows | ecmp | least-utilized | widest | weighted | us/flow (gc) "
        "| failure: flows / s | rebalance: moves / s | peak MiB | naive flows/s | view flows/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        p = r["placement"]
        f, rb, nv, vw = r["spine_failure"], r["rebalance"], r["naive_baseline"], r["view_baseline"]
        kind = "" if r["fabric"] == "leaf-spine" else f" ({r['fabric']})"
        lines.append(
            f"| {r['spines']} spines x {r['leaves']} leaves{kind} | {r['flows']:,} "
            + "".join(f"| {p[s.value]['flows_per_s']:,.0f} " for s in STRATEGIES)
            + f"| {p[Strategy.LEAST_UTILIZED.value]['us_per_flow']} "
            f"({p[Strategy.LEAST_UTILIZED.value]['gc_seconds'] / r['flows'] * 1e6:.1f}) "
            f"| {f['affected_flows']:,} / {f['seconds']:.3f} "
            f"| {rb['moves']} / {rb['seconds']:.3f} "
            f"| {r['memory']['peak_mib']} "
            f"| {nv['extrapolated_flows_per_s']:,.0f} (extrapolated, n={nv['sample_flows']}) "
            f"| {vw['extrapolated_flows_per_s']:,.0f} |"
        )
    lines += _engine_markdown(report)
    for r in report["results"]:
        if r["fast_path_share"] < 1.0:
            lines += [
                "",
                f"{r['size']} ({r['fabric']}): {1 - r['fast_path_share']:.0%} of flows are not "
                "between two switches with a common neighbour and take the general path "
                "(slower).",
            ]
    return "\n".join(lines) + "\n"


def _speeds(speed: dict[str, dict[str, float]], key: str) -> str:
    return f"{speed['before'][key]} / {speed['after'][key]}"


def _engine_markdown(report: dict[str, Any]) -> list[str]:
    rows = [r for r in report["results"] if "engine" in r]
    if not rows:
        return []
    lines = [
        "",
        "Whole engine: new flows through `FabricEngine.packet_in` (trap cookie, real "
        "frames), placement, rule compilation, the programmer's diff and phases, programs "
        "applied to fake OpenFlow tables and confirmed, every output's notices onto the "
        "event stream; setups/s from the CPU time of the "
        "setups (read once per simulated second; in brackets the slowest and the fastest "
        "of those seconds with the policy on), split between engine and fake switches "
        "by the performance counter per call. Lines/flow: Python lines the controller's "
        "modules run per setup, traced over the last fifth of the flows (at most 200), set "
        "up after the timed ones (the work itself, which the time per flow mixes with the "
        "caches' hit rate). "
        "The hub's tick includes publishing the read "
        "models (views published: one publication over everything placed); the poll "
        "interval is the one in use at the end, stretched from 1 s when a round of "
        "statistics answers costs the hub more than half of it (poll_budget). Bring-up: "
        "discovery (switches read, one LLDP frame per link, one ARP per host) with default "
        "forwarding held and compiled once. Collector policy: the hub freezes the garbage "
        "collector's view once per poll round. Job: a ring applied through "
        "`FabricEngine.apply_job` (joint placement, pair rules, programs applied).",
        "",
        "| fabric | flows | setups/s (policy on / off) | us/flow engine + fake switches "
        "| lines/flow "
        "| hub tick s per simulated s (poll interval s) | views published s "
        "| bring-up: forwarding compile s "
        "/ apply s / links s | job: ring hosts / s (of it gc) "
        "| spine lost: flows / operations / engine s + fake switches s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        on, off = r["engine"]["heap_policy"], r["engine"]["no_heap_policy"]
        cpu = on["bring_up"]["cpu_s"]
        without = f"{off['setups_per_s']:,.0f}" if off else "-"
        lines.append(
            f"| {r['spines']} x {r['leaves']} ({on['hosts_per_leaf']} hosts/leaf) "
            f"| {on['flows']:,} | {on['setups_per_s']:,.0f} / {without}{_spread(on)} "
            f"| {on['engine_us_per_flow']} + {on['fake_switch_us_per_flow']} "
            f"| {on['lines_per_setup']} "
            f"| {on['tick_s_per_simulated_second']} ({on['poll']['interval_s']}) "
            f"| {on['views']['publish_s']} "
            f"| {cpu['forwarding_compile_s']} / {cpu['forwarding_apply_s']} / {cpu['lldp_s']} "
            f"| {r['job']['ring_hosts']:,} / {r['job']['apply_s']} (gc {r['job']['gc_s']}) "
            f"| {_spine_down(on['spine_down'])} |"
        )
    return lines


def _spread(run: dict[str, Any]) -> str:
    windows = run.get("setups_per_s_windows")
    if not windows:
        return ""
    return f" ({windows['slowest']:,.0f}-{windows['fastest']:,.0f})"


def _spine_down(lost: dict[str, Any] | None) -> str:
    if lost is None:
        return "-"
    return (
        f"{lost['flows_through']:,} / {lost['operations']:,} / "
        f"{lost['engine_s']} + {lost['apply_s']}"
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m benchmarks.scale_core", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--out", default="out/bench", help="output directory")
    parser.add_argument("--seed", type=int, default=1, help="workload and hashing seed")
    parser.add_argument("--spines", type=int, help="run one size: spines (default 64)")
    parser.add_argument("--leaves", type=int, help="run one size: leaves (default 512)")
    parser.add_argument("--flows", type=int, help="run one size: flows (default 100000)")
    parser.add_argument(
        "--flows-each",
        type=int,
        help="every size with this many flows: the cost per flow at equal load",
    )
    parser.add_argument(
        "--fabric", choices=("leaf-spine", "three-tier"), default="leaf-spine", help="topology"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the headline numbers here")
    parser.add_argument(
        "--no-engine", action="store_true", help="the pure core only (no whole-engine runs)"
    )
    args = parser.parse_args(argv)
    for name, (lo, hi) in LIMITS.items():
        value = getattr(args, name)
        if value is not None and not lo <= value <= hi:
            parser.error(f"--{name} must be in {lo}..{hi}, got {value}")
    one = any(getattr(args, name) is not None for name in LIMITS)
    if args.quick and one:
        parser.error("--quick runs its own sizes; leave out --spines/--leaves/--flows")
    if args.flows_each is not None:
        lo, hi = LIMITS["flows"]
        if not lo <= args.flows_each <= hi:
            parser.error(f"--flows-each must be in {lo}..{hi}, got {args.flows_each}")
        if one:
            parser.error("--flows-each runs every size; leave out --spines/--leaves/--flows")
    if args.fabric == "three-tier":
        leaves = args.leaves if args.leaves is not None else 512
        if leaves % PODS or leaves < 2 * PODS:
            parser.error(f"--leaves must be a multiple of {PODS} and >= {2 * PODS} for three-tier")
        if (args.spines or 64) < 2:
            parser.error("--spines must be >= 2 for three-tier")
    if args.json:
        folder = FsPath(args.json).resolve().parent
        if not folder.is_dir():
            parser.error(f"--json: directory {folder} does not exist")
    return args


def _sizes(args: argparse.Namespace) -> tuple[Size, ...]:
    if any(getattr(args, name) is not None for name in LIMITS):
        spines = args.spines if args.spines is not None else 64
        leaves = args.leaves if args.leaves is not None else 512
        flows = args.flows if args.flows is not None else 100_000
        return (Size(spines, leaves, flows, 50, args.fabric),)
    sizes: tuple[Size, ...] = QUICK_SIZES if args.quick else FULL_SIZES
    if args.flows_each is not None:
        sizes = tuple(replace(s, flows=args.flows_each) for s in sizes)
    if args.fabric == "three-tier":
        sizes = tuple(
            Size(
                s.spines,
                max(2 * PODS, s.leaves - s.leaves % PODS),
                s.flows,
                s.naive_sample,
                "three-tier",
            )
            for s in sizes
        )
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    speed_before = speed_probe()
    log(f"speed: {speed_before}")
    results = []
    for size in _sizes(args):
        log(
            f"{size.label}: {size.spines} spines x {size.leaves} leaves ({size.fabric}), "
            f"{size.flows:,} flows"
        )
        results.append(
            run_size(size, seed=args.seed, log=log, engine=not args.no_engine, quick=args.quick)
        )
    report: dict[str, Any] = {
        "benchmark": "scale_core",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "seed": args.seed,
        "machine": machine_info(),
        # The VM's speed varies from day to day: compare rates of runs whose
        # probes agree (benchmarks/HISTORY.md, "A slow machine, a probe that sees it").
        "speed": {"before": speed_before, "after": speed_probe()},
        "total_seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    report.update(headline(report))
    out = FsPath(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale_core.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "scale_core.md").write_text(markdown(report))
    log(f"wrote {out / 'scale_core.json'} and {out / 'scale_core.md'}")
    if args.json:
        FsPath(args.json).write_text(json.dumps(headline(report), indent=2, sort_keys=True) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
