"""Joint placement benchmark: solve times and quality of :mod:`controller.te.joint`.

On synthetic fabrics (no switches), seeded: a 4,096-rank ring and all-to-all
collectives on 64 spines x 512 leaves (ranks scattered over leaves as a
scheduler would), the re-solve after one leaf-spine cable fails, and on a
3-tier fabric the two general methods side by side (local search vs HiGHS
MILP: peak utilization and time), which is what sets
``minmax.MILP_MAX_VARIABLES``. Each row gives the peak link utilization and
the lower bound no placement can beat. Results go to ``--out`` (default
``out/bench/``) as ``joint.json`` and ``joint.md``.

    python -m benchmarks.joint_bench [--quick] [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

import numpy as np

from benchmarks.scale_measure import synthetic
from controller.fabric.model import Path
from controller.routing.paths import PathCache
from controller.te.joint import PairDemand, place_jointly
from controller.te.minmax import AssignmentProblem, local_search, solve_milp

GBIT = 1e9


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _ranks(rng: np.random.Generator, leaves: list[str], per_leaf: int, ranks: int) -> list[str]:
    """``ranks`` hosts' leaves, ``per_leaf`` hosts per leaf, in a random rank order."""
    slots = [leaf for leaf in leaves for _ in range(per_leaf)]
    chosen = rng.permutation(len(slots))[:ranks]
    return [slots[i] for i in chosen]


def _pairs(fab: Any, ranks: list[str], pattern: str) -> list[PairDemand]:
    n = len(ranks)
    if pattern == "ring":
        hops = [(i, (i + 1) % n) for i in range(n)]
    else:
        hops = [(i, j) for i in range(n) for j in range(n) if i != j]
    return [
        PairDemand(key=(i, j), src=fab.dpid(ranks[i]), dst=fab.dpid(ranks[j]), demand_bps=10 * GBIT)
        for i, j in hops
    ]


def _koenig(pairs: list[PairDemand]) -> int:
    out: dict[int, int] = {}
    into: dict[int, int] = {}
    for p in pairs:
        if p.src != p.dst:
            out[p.src] = out.get(p.src, 0) + 1
            into[p.dst] = into.get(p.dst, 0) + 1
    return max([*out.values(), *into.values()], default=0)


def leaf_spine_rows(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    """Large fabrics (full run), and a small tight one where every leaf has as
    many flows as spines (re-solving there needs Kempe chains)."""
    sizes: list[tuple[int, int, list[tuple[str, int, int]]]] = [
        (8, 64, [("ring", 8, 512), ("all-to-all", 8, 64)])
    ]
    if not quick:
        sizes.append((64, 512, [("ring", 8, 4096), ("all-to-all", 8, 64), ("all-to-all", 8, 256)]))
    rows = []
    for spines, leaves, cases in sizes:
        fab = synthetic.leaf_spine(spines, leaves, capacity_bps=10 * GBIT)
        for pattern, per_leaf, n in cases:
            ranks = _ranks(rng, fab.leaves, per_leaf, n)
            pairs = _pairs(fab, ranks, pattern)
            view = fab.view()
            plan, seconds = _timed(lambda pairs=pairs, view=view: place_jointly(pairs, view))
            rows.append(
                {
                    "fabric": f"{spines} spines x {leaves} leaves",
                    "case": f"{pattern} of {n} ranks ({len(pairs)} flows)",
                    "method": plan.method,
                    "seconds": round(seconds, 3),
                    "peak": round(plan.max_utilization, 6),
                    "bound": math.ceil(_koenig(pairs) / spines),
                    "moved": 0,
                }
            )
            if pattern == "ring":
                rows.append(_failure_row(fab, pairs, plan, spines, leaves))
    return rows


def _failure_row(
    fab: Any, pairs: list[PairDemand], plan: Any, spines: int, leaves: int
) -> dict[str, Any]:
    current: dict[Any, Path] = {pl.key: pl.path for pl in plan.placements if pl.path}
    used = next(p for p in current.values() if len(p.links) == 2)
    failed = {used.links[0], used.links[0].reverse()}
    view = fab.view(graph=fab.graph_without(links=failed))
    after, seconds = _timed(lambda: place_jointly(pairs, view, previous=current))
    must = sum(1 for p in current.values() if any(lid in failed for lid in p.links))
    return {
        "fabric": f"{spines} spines x {leaves} leaves",
        "case": f"re-solve after one cable fails ({must} flows on it)",
        "method": after.method,
        "seconds": round(seconds, 3),
        "peak": round(after.max_utilization, 6),
        "bound": round(after.lower_bound, 6),
        "moved": len(after.moved),
    }


def general_rows(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    """Local search vs MILP on 3-tier fabrics, loaded with mixed rates and idle with one rate."""
    rows = []
    sizes = [(2, 4, 2, 2, 32), (4, 4, 4, 4, 64), (4, 8, 4, 8, 128)]
    if quick:
        sizes = sizes[:1]
    for pods, lpp, aggs, spines, n in sizes:
        fab = synthetic.three_tier(
            pods=pods, leaves_per_pod=lpp, aggs_per_pod=aggs, spines=spines, capacity_bps=10 * GBIT
        )
        for label, loaded in (("mixed rates, background load", True), ("one rate, idle", False)):
            rows += _general_case(
                rng,
                fab,
                n,
                label,
                loaded,
                f"{pods} pods x {lpp} leaves, {aggs} aggs, {spines} spines",
            )
    return rows


def _general_case(
    rng: np.random.Generator, fab: Any, n: int, label: str, loaded: bool, shape: str
) -> list[dict[str, Any]]:
    rows = []
    ranks = _ranks(rng, fab.leaves, 4, n)
    pairs = _pairs(fab, ranks, "ring")
    load = {lid: float(rng.uniform(0, 3)) * GBIT if loaded else 0.0 for lid in fab.capacity}
    cache = PathCache(fab.graph)
    options = [cache.paths(p.src, p.dst) for p in pairs]
    todo = [k for k, o in enumerate(options) if o[0].links]
    index: dict[Any, int] = {}
    for k in todo:
        for path in options[k]:
            for lid in path.links:
                index.setdefault(lid, len(index))
    problem = AssignmentProblem(
        capacity=np.array([fab.capacity[lid] for lid in index]),
        background=np.array([load[lid] for lid in index]),
        demand=np.array(
            [pairs[k].demand_bps * (rng.choice([0.3, 0.6, 1.0]) if loaded else 1.0) for k in todo]
        ),
        options=[[tuple(index[lid] for lid in p.links) for p in options[k]] for k in todo],
        previous=[-1] * len(todo),
    )
    variables = sum(len(o) for o in problem.options)
    heuristic, t_heur = _timed(lambda problem=problem: local_search(problem))
    exact, t_exact = _timed(lambda problem=problem: solve_milp(problem, time_limit_s=120))
    for name, result, seconds in (("local-search", heuristic, t_heur), ("milp", exact, t_exact)):
        rows.append(
            {
                "fabric": f"3-tier {shape}",
                "case": f"ring of {n} ranks, {label} ({variables} path variables)",
                "method": name,
                "seconds": round(seconds, 3),
                "peak": None if result is None else round(result.max_utilization, 6),
                "bound": None if exact is None else round(exact.max_utilization, 6),
                "moved": 0,
            }
        )
    return rows


def dense_gap_row(seed: int, count: int) -> dict[str, Any]:
    """How often local search misses the optimum on small, dense random problems."""
    misses, worst, t_search, t_milp = 0, 0.0, 0.0, 0.0
    for i in range(count):
        rng = np.random.default_rng(seed * 100_000 + i)
        links, items = 12, int(rng.integers(4, 12))
        options = [
            [tuple(sorted(rng.choice(links, size=3, replace=False).tolist())) for _ in range(3)]
            for _ in range(items)
        ]
        problem = AssignmentProblem(
            capacity=rng.choice([1.0, 2.0], size=links),
            background=np.round(rng.uniform(0, 0.5, size=links), 2),
            demand=rng.choice([0.5, 1.0], size=items),
            options=options,
            previous=[-1] * items,
        )
        heuristic, seconds = _timed(lambda problem=problem: local_search(problem))
        t_search += seconds
        exact, seconds = _timed(lambda problem=problem: solve_milp(problem))
        t_milp += seconds
        if exact is not None and heuristic.max_utilization > exact.max_utilization + 1e-9:
            misses += 1
            worst = max(worst, heuristic.max_utilization / exact.max_utilization - 1)
    return {
        "fabric": "random: 12 links, 4-11 items x 3 options",
        "case": f"local search above the MILP optimum in {misses}/{count}, worst +{worst:.0%}",
        "method": "local-search vs milp",
        "seconds": f"{t_search / count:.5f} vs {t_milp / count:.4f} (mean)",
        "peak": None,
        "bound": None,
        "moved": 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--out", type=FsPath, default=FsPath("out/bench"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = leaf_spine_rows(rng, args.quick) + general_rows(rng, args.quick)
    rows.append(dense_gap_row(args.seed, 30 if args.quick else 300))
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "seed": args.seed,
        "quick": args.quick,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "joint.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    head = ("fabric", "case", "method", "seconds", "peak", "bound", "moved")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    text = f"Joint placement ({meta['date']}, {meta['machine']})\n\n" + "\n".join(lines) + "\n"
    (args.out / "joint.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
