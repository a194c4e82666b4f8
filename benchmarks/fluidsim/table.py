"""``python -m benchmarks.fluidsim.table``: the simulator's comparison table, up to 16,384 hosts.

Runs a fixed matrix of seeded scenarios (rings and all-to-alls, one job or
many, on non-blocking leaf-spine fabrics of 1,024 to 16,384 hosts with
100 Gbit/s NICs and links) under hash ECMP, per-flow least-utilized and joint
job placement, next to the bound (every flow sprayed over every spine). For
each row it reports goodput / bound (the bound's collective completion time
over the strategy's, the mean and the worst job) and the mean collective
completion time. Rings run in random rank order (in topology order almost
every hop stays inside a leaf). All-to-alls stop at 1,024 busy hosts: every
one of their flows finishes on its own, and under hash ECMP a 15,360-flow run
already takes minutes of simulation.

    python -m benchmarks.fluidsim.table [--quick] [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from benchmarks.fluidsim.cli import markdown_cells, run_all, summary
from benchmarks.scale_core import machine_info

__all__ = ["ROWS", "QUICK_ROWS", "main"]

STRATEGIES = ["ecmp", "least-utilized", "joint"]


@dataclass(frozen=True)
class Row:
    spines: int
    leaves: int
    hosts_per_leaf: int
    pattern: str
    jobs: int
    job_hosts: int
    ring_order: str = "random"
    size_mb: float = 256.0

    @property
    def hosts(self) -> int:
        return self.leaves * self.hosts_per_leaf

    @property
    def label(self) -> str:
        return (
            f"{self.hosts:,} hosts ({self.spines}x{self.leaves}x{self.hosts_per_leaf}), "
            f"{self.pattern}, {self.jobs} x {self.job_hosts} hosts"
        )

    def args(self, seed: int) -> argparse.Namespace:
        return argparse.Namespace(
            spines=self.spines,
            leaves=self.leaves,
            hosts_per_leaf=self.hosts_per_leaf,
            link_gbps=100.0,
            nic_gbps=100.0,
            jobs=self.jobs,
            job_hosts=self.job_hosts,
            pattern=self.pattern,
            ring_order=self.ring_order,
            size_mb=self.size_mb,
            stagger_s=0.0,
            background=0.0,
            fail_spine_at=None,
            fail_link_at=None,
            seed=seed,
        )


ROWS = (
    Row(16, 64, 16, "ring", 1, 1024),
    Row(16, 64, 16, "ring", 16, 64),
    Row(16, 64, 16, "all-to-all", 64, 16),
    Row(32, 128, 32, "ring", 1, 4096),
    Row(32, 128, 32, "ring", 64, 64),
    Row(64, 256, 64, "ring", 1, 16384),
    Row(64, 256, 64, "ring", 256, 64),
    Row(64, 256, 64, "all-to-all", 64, 16),
)
QUICK_ROWS = (
    Row(4, 8, 4, "ring", 1, 32),
    Row(4, 8, 4, "ring", 4, 8),
    Row(4, 8, 4, "all-to-all", 2, 8),
)


def run(rows: tuple[Row, ...], *, seed: int, log: Any) -> list[dict[str, Any]]:
    results = []
    for row in rows:
        started = time.perf_counter()
        summ = summary(run_all(row.args(seed), STRATEGIES))
        results.append(
            {
                "row": row.label,
                "hosts": row.hosts,
                "pattern": row.pattern,
                "jobs": row.jobs,
                "job_hosts": row.job_hosts,
                "strategies": {
                    name: {
                        "mean_goodput_over_bound": s["mean_goodput_over_bound"],
                        "min_goodput_over_bound": s["min_goodput_over_bound"],
                        "mean_cct_s": s["mean_cct_s"],
                        "finished": s["finished"],
                        "simulation_cpu_s": s["cpu_s"],
                    }
                    for name, s in summ.items()
                },
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
        log(markdown_row(results[-1]))
    return results


def markdown_row(r: dict[str, Any]) -> str:
    return f"| {r['row']} | {markdown_cells(r['strategies'], STRATEGIES)} |"


def markdown(results: list[dict[str, Any]], head: str) -> str:
    lines = [
        head,
        "",
        "| scenario | hash ECMP | least-utilized | joint "
        "| mean CCT ms (bound / ecmp / lu / joint) |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [markdown_row(r) for r in results]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fluidsim.table")
    parser.add_argument("--quick", action="store_true", help="three tiny rows, seconds")
    parser.add_argument("--out", default="out/bench", help="output directory")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rows = QUICK_ROWS if args.quick else ROWS
    results = run(rows, seed=args.seed, log=log)
    mi = machine_info()
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    head = (
        f"Flow-level simulation, {date}, {mi['processor']}, Python {mi['python']}, seed "
        f"{args.seed}. Goodput / bound: mean over jobs (worst job); 1.00 = no placement "
        "could do better."
    )
    out = FsPath(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": "fluidsim_table", "date": date, "machine": mi, "rows": results}
    (out / "fluidsim_table.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    text = markdown(results, head)
    (out / "fluidsim_table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
