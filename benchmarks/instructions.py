"""Machine instructions per new flow, counted by valgrind: the work in C counted too.

``python -m benchmarks.instructions [--sizes 4x16,16x64] [--warm 200]
[--counted 2000] [--json FILE]``

The controller's lines per setup (:mod:`benchmarks.worklines`) leave out what
runs in C: dictionary lookups, allocation, hashing, numpy and the compiled
kernel that scores the spines' columns. Instructions count all of it, and
valgrind counts them the same on every run, whatever else the machine does
(the time per flow here moves by a quarter within minutes, and by a factor of
two between days). For each fabric size, the same program runs twice under
``valgrind --tool=cachegrind --cache-sim=no``: the fabric brought up and the
same flows made (:func:`benchmarks.flowsetup.spread_lab`, the workload of the
per-flow work tests: hosts of four leaves spread over the fabric, 200 flows
warm), then none or ``--counted`` of the flows set up through
:func:`~benchmarks.flowsetup.first_packet`. The difference over ``--counted``
is the instructions per setup, the fake switches' included (they are a small
part: the lines test leaves them out). The hash seed is fixed so that both
runs make the same tables, the engine's CPU clock (which paces its polls) is a
constant one and what startup made is frozen out of the collector's walks, so
that both do the same work around the counted setups; numpy's BLAS runs on one
thread, and one run ahead fills numba's cache for valgrind's CPU. Two runs of
the same program then differ by a few thousand of ~5,000 million instructions;
2,000 setups are ~1,000 million.

Valgrind runs a program some 50 times slower: 4 x 16 and 16 x 64 take a few
minutes each; 64 x 512 (its bring-up alone) would take the better part of an
hour, so it is not a default.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.oneline import OneLineParser

__all__ = ["main", "instructions_of", "parse_size"]

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
MIN_LEAVES = 4  # the workload's hosts are on four leaves spread over the fabric


def parse_size(text: str) -> tuple[int, int]:
    """``"SxL"`` -> (spines, leaves); a clear error for anything else."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"size {text!r} is not SPINESxLEAVES, e.g. 16x64")
    spines, leaves = int(match.group(1)), int(match.group(2))
    if spines < 2 or leaves < MIN_LEAVES:
        raise argparse.ArgumentTypeError(
            f"size {text!r}: needs at least 2 spines and {MIN_LEAVES} leaves"
        )
    return spines, leaves


def instructions_of(valgrind_stderr: str) -> int:
    """The instruction count (``I refs``) of a cachegrind summary."""
    found = _REFS.findall(valgrind_stderr)
    if not found:
        raise ValueError("no 'I refs' line in valgrind's output")
    return int(found[-1].replace(",", ""))


def _child(spines: int, leaves: int, *, warm: int, counted: int, setups: int) -> None:
    from benchmarks.flowsetup import check_placed, set_up, spread_lab

    # Polls and probes are paced by the CPU time they take, which valgrind stretches
    # by a different amount on every run: a constant clock makes both runs alike.
    spread = spread_lab(spines, leaves, warm=warm, counted=counted, work_clock=lambda: 0.0)
    lab = spread.lab
    # As the scale benchmark does before its setups: what startup made is out of the
    # collector's walks. Otherwise a full collection falls in one of the two runs
    # and not the other (~100 M instructions over the whole heap at 16 x 64).
    gc.collect()
    gc.freeze()
    counted_flows = spread.flows[:setups]
    set_up(lab, spread.absorb, counted_flows)
    check_placed(lab, counted_flows)


def _counted_run(spines: int, leaves: int, *, warm: int, counted: int, setups: int) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--child",
        f"{spines}x{leaves}",
        "--warm",
        str(warm),
        "--counted",
        str(counted),
        "--setups",
        str(setups),
    ]
    # numpy's OpenBLAS threads, idle, still run instructions whenever valgrind
    # schedules them (50 M in one run): one thread, none of them.
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"the counted run of {spines}x{leaves} failed: {tail}")
    return instructions_of(done.stderr)


def measure(sizes: list[tuple[int, int]], *, warm: int, counted: int) -> dict[str, Any]:
    from benchmarks.report import machine_info, utc_now

    # The compiled kernels are cached per CPU model, and valgrind's CPU is not the
    # machine's: the first run under it compiles them (~250 M instructions). One
    # run fills the cache before anything is counted.
    _counted_run(2, MIN_LEAVES, warm=1, counted=1, setups=0)
    results = []
    for spines, leaves in sizes:
        t0 = time.monotonic()
        base = _counted_run(spines, leaves, warm=warm, counted=counted, setups=0)
        full = _counted_run(spines, leaves, warm=warm, counted=counted, setups=counted)
        per_setup = (full - base) / counted
        results.append(
            {
                "size": f"{spines}x{leaves}",
                "instructions_per_setup": round(per_setup),
                "base_instructions": base,
                "with_setups_instructions": full,
                "wall_s": round(time.monotonic() - t0, 1),
            }
        )
        print(
            f"{spines}x{leaves}: {per_setup:,.0f} instructions per setup "
            f"({time.monotonic() - t0:.0f} s under valgrind)",
            flush=True,
        )
    return {
        "what": "machine instructions per new flow's first packet (engine, publisher, fake "
        "switches), valgrind cachegrind, difference of two runs over the counted flows",
        "warm": warm,
        "counted": counted,
        "results": results,
        "machine": machine_info(),
        "date": utc_now(),
    }


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m benchmarks.instructions", description=__doc__)
    p.add_argument("--sizes", default="4x16,16x64", help="fabrics, SPINESxLEAVES, comma-separated")
    p.add_argument("--warm", type=int, default=200, help="flows set up before counting")
    p.add_argument("--counted", type=int, default=2000, help="flows counted")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--setups", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        sizes = [parse_size(s) for s in args.sizes.split(",")]
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    if args.warm < 1 or args.counted < 1:
        p.error("--warm and --counted must be at least 1")
    if args.child is not None:
        try:
            spines, leaves = parse_size(args.child)
        except argparse.ArgumentTypeError as e:
            p.error(str(e))
        _child(spines, leaves, warm=args.warm, counted=args.counted, setups=args.setups)
        return 0
    if shutil.which("valgrind") is None:
        p.error("valgrind is not installed (Debian package valgrind)")
    report = measure(sizes, warm=args.warm, counted=args.counted)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
