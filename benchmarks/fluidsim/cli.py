"""``python -m benchmarks.fluidsim``: run one scenario under each strategy and compare.

Every strategy runs the same seeded scenario on a fresh fabric; the bound is
the same scenario with every flow sprayed over every spine. For each job it
reports the collective completion time and goodput / bound (the bound's
completion time over the strategy's: 1.0 means no placement could have done
better). Options out of range end the run at once with one line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path as FsPath
from typing import Any

from benchmarks.fluidsim.fabric import MAX_HOSTS, SimFabric, build_fabric
from benchmarks.fluidsim.simulate import RunResult, simulate
from benchmarks.fluidsim.strategies import STRATEGY_NAMES, joint_available, placer_for
from benchmarks.fluidsim.validate import compare
from benchmarks.fluidsim.workload import Scenario, build_scenario
from benchmarks.oneline import OneLineParser
from benchmarks.scale_measure import synthetic
from controller.errors import FailedPrecondition

__all__ = ["main", "run_all", "summary", "markdown_cells"]

MAX_ALL_TO_ALL_HOSTS = 256  # an all-to-all has N (N - 1) flows, each finishing on its own


def _parser() -> OneLineParser:
    p = OneLineParser(prog="python -m benchmarks.fluidsim", description=__doc__)
    p.add_argument("--spines", type=int, default=8)
    p.add_argument("--leaves", type=int, default=16)
    p.add_argument("--hosts-per-leaf", type=int, default=8)
    p.add_argument("--link-gbps", type=float, default=100.0, help="every leaf-spine link")
    p.add_argument("--nic-gbps", type=float, default=100.0, help="every host NIC")
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--job-hosts", type=int, default=16, help="hosts per job")
    p.add_argument("--pattern", choices=("ring", "all-to-all"), default="ring")
    p.add_argument("--ring-order", choices=("topology", "random"), default="topology")
    p.add_argument("--size-mb", type=float, default=256.0, help="collective buffer per host")
    p.add_argument("--stagger-s", type=float, default=0.0, help="job i starts at i x this")
    p.add_argument("--background", type=float, default=0.0, help="share of a NIC, 0..0.95")
    p.add_argument("--fail-spine-at", type=float, help="a random spine fails at this time (s)")
    p.add_argument("--fail-link-at", type=float, help="a random leaf-spine cable fails (s)")
    p.add_argument(
        "--strategies", default=",".join(STRATEGY_NAMES), help=f"from {','.join(STRATEGY_NAMES)}"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="FILE", help="write the results here")
    p.add_argument(
        "--validate",
        action="store_true",
        help="instead: the emulator's small jobs simulated, next to its measured ratios",
    )
    return p


def _check(p: OneLineParser, a: argparse.Namespace) -> list[str]:
    ranges = {
        "spines": (1, 256),
        "leaves": (2, 2048),
        "hosts_per_leaf": (1, 253),
        "jobs": (1, 4096),
        "job_hosts": (2, MAX_HOSTS),
    }
    for name, (lo, hi) in ranges.items():
        value = getattr(a, name)
        if not lo <= value <= hi:
            p.error(f"--{name.replace('_', '-')} must be in {lo}..{hi}, got {value}")
    for name in ("link_gbps", "nic_gbps", "size_mb"):
        value = getattr(a, name)
        if not 0 < value <= 1e6:
            p.error(f"--{name.replace('_', '-')} must be > 0 and <= 1e6, got {value}")
    hosts = a.leaves * a.hosts_per_leaf
    if hosts > MAX_HOSTS:
        p.error(f"leaves x hosts-per-leaf = {hosts} hosts; at most {MAX_HOSTS}")
    if a.jobs * a.job_hosts > hosts:
        p.error(
            f"{a.jobs} jobs x {a.job_hosts} hosts need {a.jobs * a.job_hosts}; fabric has {hosts}"
        )
    if a.pattern == "all-to-all" and a.job_hosts > MAX_ALL_TO_ALL_HOSTS:
        p.error(f"--job-hosts must be <= {MAX_ALL_TO_ALL_HOSTS} for all-to-all, got {a.job_hosts}")
    if not 0 <= a.background <= 0.95:
        p.error(f"--background must be in 0..0.95, got {a.background}")
    for name in ("stagger_s", "fail_spine_at", "fail_link_at"):
        value = getattr(a, name)
        if value is not None and not 0 <= value <= 1e6:
            p.error(f"--{name.replace('_', '-')} must be in 0..1e6 seconds, got {value}")
    names = [s.strip() for s in a.strategies.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGY_NAMES]
    if not names or unknown:
        p.error(f"--strategies: unknown {unknown or 'empty list'}; choose from {STRATEGY_NAMES}")
    if "joint" in names and not joint_available():
        p.error("--strategies: joint placement is not plugged in (strategies.register_joint)")
    if a.json and not FsPath(a.json).resolve().parent.is_dir():
        p.error(f"--json: directory {FsPath(a.json).resolve().parent} does not exist")
    return names


def _fabric(a: argparse.Namespace) -> SimFabric:
    return build_fabric(
        spines=a.spines,
        leaves=a.leaves,
        hosts_per_leaf=a.hosts_per_leaf,
        link_gbps=a.link_gbps,
        nic_gbps=a.nic_gbps,
        synthetic=synthetic,
    )


def _scenario(fabric: SimFabric, a: argparse.Namespace) -> Scenario:
    return build_scenario(
        fabric,
        jobs=a.jobs,
        job_hosts=a.job_hosts,
        pattern=a.pattern,
        size_bytes=a.size_mb * 2**20,
        background=a.background,
        fail_spine_at=a.fail_spine_at,
        fail_link_at=a.fail_link_at,
        stagger_s=a.stagger_s,
        seed=a.seed,
        ring_order=a.ring_order,
    )


def run_all(a: argparse.Namespace, names: list[str]) -> dict[str, RunResult]:
    """The bound and every strategy on the same scenario, each on a fresh fabric."""
    results = {}
    for name in ["bound", *names]:
        fabric = _fabric(a)
        placer = placer_for(name, fabric, seed=a.seed)
        results[name] = simulate(fabric, _scenario(fabric, a), placer, seed=a.seed)
    return results


def markdown_cells(s: dict[str, Any], names: list[str]) -> str:
    """The cells of a comparison row: goodput / bound as mean (worst job) per name,
    then the mean completion times (ms) of the bound and of every name."""
    cells = [
        f"{s[n]['mean_goodput_over_bound']:.2f} ({s[n]['min_goodput_over_bound']:.2f})"
        for n in names
    ]
    ccts = [
        "-" if s[n]["mean_cct_s"] is None else f"{s[n]['mean_cct_s'] * 1e3:.1f}"
        for n in ["bound", *names]
    ]
    return " | ".join(cells) + " | " + " / ".join(ccts)


def summary(results: dict[str, RunResult]) -> dict[str, Any]:
    """Per strategy: completion times and goodput / bound per job and overall."""
    bound = {j.job_id: j.completion_s for j in results["bound"].jobs}
    out: dict[str, Any] = {}
    for name, run in results.items():
        ratios, times = [], []
        for job in run.jobs:
            best = bound[job.job_id]
            done = job.completion_s
            times.append(done)
            ratios.append(0.0 if done is None or not best else best / done)
        finished = [t for t in times if t is not None]
        out[name] = {
            "jobs": len(run.jobs),
            "finished": len(finished),
            "cct_s": [None if t is None else round(t, 6) for t in times],
            "mean_cct_s": round(sum(finished) / len(finished), 6) if finished else None,
            "max_cct_s": round(max(finished), 6) if finished else None,
            "goodput_over_bound": [round(r, 4) for r in ratios],
            "mean_goodput_over_bound": round(sum(ratios) / len(ratios), 4),
            "min_goodput_over_bound": round(min(ratios), 4),
            "events": run.events,
            "rate_rounds": run.rate_rounds,
            "cpu_s": round(run.cpu_s, 3),
            "failures": run.failures,
        }
    return out


def _table(summ: dict[str, Any]) -> str:
    lines = [
        "| strategy | jobs finished | mean CCT s | max CCT s | goodput/bound mean | min | cpu s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summ.items():
        lines.append(
            f"| {name} | {s['finished']}/{s['jobs']} | {s['mean_cct_s']} | {s['max_cct_s']} "
            f"| {s['mean_goodput_over_bound']:.3f} | {s['min_goodput_over_bound']:.3f} "
            f"| {s['cpu_s']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    names = _check(p, a)
    if a.validate:
        report = compare()
        for work, rows in report.items():
            for name, r in rows["strategies"].items():
                print(
                    f"{work:5s} {name:15s} simulated {r['simulated_median']:.2f} "
                    f"({r['simulated_min']:.2f}-{r['simulated_max']:.2f}), "
                    f"x emulator efficiency {r['scaled_by_emulator_efficiency']:.2f}, "
                    f"emulator {r['emulator_median']:.2f}"
                )
            print(f"{work:5s} same ranking as the emulator: {rows['same_ranking']}")
        if a.json:
            FsPath(a.json).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        return 0
    try:
        results = run_all(a, names)
    except FailedPrecondition as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    summ = summary(results)
    print(_table(summ))
    for note in next(iter(results.values())).failures:
        print(f"failure: {note}")
    if a.json:
        doc = {
            "benchmark": "fluidsim",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "python": platform.python_version()},
            "options": vars(a),
            "hosts": a.leaves * a.hosts_per_leaf,
            "results": summ,
        }
        FsPath(a.json).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        print(f"wrote {a.json}", file=sys.stderr)
    return 0
