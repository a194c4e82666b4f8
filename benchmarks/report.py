"""Writing results down: machine facts, JSON, Markdown tables, statistics and the demo's plot.

Shared by the demo and the fabric benchmarks so that both describe the
machine the same way and their files read alike. It computes summaries of
numbers it is given (median, spread, quantiles of a Prometheus histogram) and
draws; it starts nothing and measures nothing.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "cpu_model",
    "machine_info",
    "speed_probe",
    "utc_now",
    "write_json",
    "markdown_table",
    "spread",
    "quantile",
    "histogram_quantile",
    "loss_in_window",
    "plot_demo",
]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _ovs_version() -> str:
    try:
        out = subprocess.run(
            ["ovs-vsctl", "--version"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.rsplit(" ", 1)[-1] if first else "unknown"


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "kernel": platform.release(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "ovs_version": _ovs_version(),
        "python": platform.python_version(),
    }


SPEED_LOOP = 2_000_000
SPEED_NUMPY_CALLS = 50_000
SPEED_DICT_KEYS = 1 << 20  # ~80 MB of dict and int objects: far beyond the caches


def speed_probe() -> dict[str, float]:
    """How fast this machine runs the interpreter today, to compare runs across days.

    A cloud VM of the same type ran the same pure-Python loop 2.5x slower on one day
    than on another; a rate measured on it says little without this. Three numbers,
    each the best of three, CPU time of this process: nanoseconds per iteration of a
    plain integer-add loop; per in-place numpy operation on a 64-element row (what a
    placement decision is made of); and per lookup of a random key in a dict of a
    million ints (~80 MB, far beyond the caches): the memory-bound part, which the
    controller's large tables are made of. It moves on its own: within one minute
    it read 590-980 ns while the add loop read 28 ns each time.
    """
    import random

    import numpy as np  # the reports of the Mininet benchmarks do not need it

    def loop() -> float:
        c0, total = time.process_time(), 0
        for i in range(SPEED_LOOP):
            total += i
        return (time.process_time() - c0) / SPEED_LOOP * 1e9

    def numpy_ops() -> float:
        row, out = np.arange(64, dtype=np.float64), np.empty(64)
        c0 = time.process_time()
        for _ in range(SPEED_NUMPY_CALLS):
            np.add(row, 1.0, out=out)
        return (time.process_time() - c0) / SPEED_NUMPY_CALLS * 1e9

    table = {i: i for i in range(SPEED_DICT_KEYS)}
    order = list(range(SPEED_DICT_KEYS))
    random.Random(7).shuffle(order)  # fixed: the same walk on every run

    def dict_lookups() -> float:
        c0 = time.process_time()
        for key in order:
            table[key]
        return (time.process_time() - c0) / SPEED_DICT_KEYS * 1e9

    return {
        "python_add_loop_ns": round(min(loop() for _ in range(3)), 2),
        "numpy_row_op_ns": round(min(numpy_ops() for _ in range(3)), 1),
        "dict_miss_ns": round(min(dict_lookups() for _ in range(3)), 1),
    }


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; numbers are right-aligned."""

    def numeric(col: int) -> bool:
        return all(isinstance(r[col], int | float) for r in rows) and bool(rows)

    align = ["---:" if numeric(c) else "---" for c in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (``q`` in 0..1) of a non-empty sample."""
    if not values:
        raise ValueError("quantile of no values")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """n, median, min, max and quartiles; all None for an empty sample."""
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "q1": None, "q3": None}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "q1": quantile(values, 0.25),
        "q3": quantile(values, 0.75),
    }


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Prometheus-style quantile from cumulative ``(upper bound, count)`` buckets.

    Interpolates linearly inside the bucket the rank falls in, as PromQL's
    ``histogram_quantile`` does; None when the histogram is empty.
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            width = count - prev_count
            share = (rank - prev_count) / width if width > 0 else 1.0
            return prev_bound + (bound - prev_bound) * share
        prev_bound, prev_count = bound, count
    return prev_bound


_REASON_COLOURS = {
    "congestion": "tab:orange",
    "failure": "tab:red",
    "rebalance": "tab:green",
    "policy": "tab:brown",
    "drain": "tab:cyan",
}


def loss_in_window(flow: Mapping[str, Any], *, start: float, end: float) -> int:
    """Packets of one flowgen UDP flow lost in holes that began between ``start`` and ``end``.

    ``flow`` is one entry of a sink report's ``flows``; its ``losses`` date each
    hole by the send time of the packet before it (unix seconds).
    """
    return sum(int(n) for t, n in flow.get("losses", ()) if start <= t <= end)


def plot_demo(
    path: Path,
    *,
    goodput: Sequence[tuple[float, float]],
    phases: Sequence[tuple[str, float, float]],
    marks: Sequence[tuple[float, str, str]],
    links: Sequence[tuple[float, Mapping[str, float]]],
    title: str,
) -> None:
    """Job goodput over time with phases and events marked, and per-link utilization below.

    ``goodput``: (seconds, bits/s); ``phases``: (name, start s, end s);
    ``marks``: (seconds, kind, label) - kind "failure" draws a red line,
    "reroute" a marker coloured by reason (the label), anything else a dashed
    line; ``links``: (seconds, {link: utilization}).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    if goodput:
        xs, ys = zip(*goodput, strict=True)
        top.plot(xs, [y / 1e6 for y in ys], lw=1.0, color="tab:blue", label="job goodput")
    top.set_ylabel("goodput (Mbit/s)")
    top.set_title(title)
    ymax = max((y / 1e6 for _, y in goodput), default=1.0) * 1.15 or 1.0
    top.set_ylim(0, ymax)
    for k, (name, start, end) in enumerate(phases):
        top.axvspan(start, end, color="0.93" if k % 2 else "0.86", zorder=0)
        top.text((start + end) / 2, ymax * 0.97, name, ha="center", va="top", fontsize=8)
    drawn: set[str] = set()
    for t, kind, label in marks:
        legend = label if kind == "reroute" else kind
        entry: str | None = None if legend in drawn else label
        drawn.add(legend)
        if kind == "failure":
            top.axvline(t, color="tab:red", lw=1.5, label=entry)
        elif kind == "reroute":
            colour = _REASON_COLOURS.get(label, "tab:gray")
            top.plot(
                [t],
                [ymax * 0.04],
                marker="v",
                color=colour,
                ls="",
                label=entry and f"reroute: {label}",
            )
        else:
            top.axvline(t, color="tab:purple", lw=1.2, ls="--", label=entry)
    top.legend(loc="lower right", fontsize=8)

    names = sorted({name for _, sample in links for name in sample})
    if names:
        times = [t for t, _ in links]
        grid = [[sample.get(n, math.nan) for _, sample in links] for n in names]
        edges = [*times, times[-1] + (times[-1] - times[-2] if len(times) > 1 else 0.5)]
        mesh = bottom.pcolormesh(
            edges, range(len(names) + 1), grid, vmin=0, vmax=1.0, cmap="magma", shading="flat"
        )
        bottom.set_yticks([k + 0.5 for k in range(len(names))], names, fontsize=6)
        # An inset colour bar keeps both panels the same width, so times line up.
        fig.colorbar(mesh, cax=bottom.inset_axes((1.01, 0.0, 0.012, 1.0)), label="utilization")
    for _, start, _end in phases:
        bottom.axvline(start, color="white", lw=0.8)
    for t, kind, _ in marks:
        if kind == "failure":
            bottom.axvline(t, color="tab:red", lw=1.2)
    bottom.set_xlabel("time since the first phase started (s)")
    bottom.set_ylabel("link direction")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
