"""Where a new flow's time goes in the engine: its steps timed per call.

``python -m benchmarks.setup_steps --spines 64 --leaves 512 --flows 30000``
brings a fabric up on fake switches as the scale benchmark does
(:func:`benchmarks.scale_engine.bring_up`), then sets up ``--flows`` new flows
through the engine's packet-in with the hub's collector policy, and times the
steps in :data:`STEPS` with the performance counter round every call made
while a flow's first packet is handled (the hub's ticks between simulated
seconds are not counted). Times are inclusive: a step contains the steps it
calls. Each wrapper costs about half a microsecond a call, so the steps read a
little more than the scale benchmark's time per flow: this says where the time
goes, not how many setups a second the engine makes (``benchmarks.scale_core``
does). The steps are patched in for the run only and put back after.
"""

from __future__ import annotations

import functools
import gc
import importlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.flowsetup import first_packet, workload
from benchmarks.oneline import OneLineParser
from benchmarks.report import speed_probe, utc_now
from benchmarks.scale_engine import ENGINE_HOSTS_PER_LEAF, bring_up, driver_for, run_setups
from benchmarks.scale_measure import LINK_BPS, CollectorSettings, synthetic
from controller.app.clock import Clock
from controller.app.publisher import Publisher
from controller.concurrency.eventbus import EventBus

__all__ = ["STEPS", "StepTimes", "main", "measure"]

# (label, module, class ("" for a module function), attribute): each where its
# callers look it up, in the order a new flow meets them.
STEPS: tuple[tuple[str, str, str, str], ...] = (
    ("engine packet-in", "controller.engine.engine", "FabricEngine", "packet_in"),
    ("  frame parsed", "controller.fabric.frames", "", "parse"),
    ("  flow placer packet-in", "controller.engine.placement", "FlowPlacer", "packet_in"),
    ("    source host learned", "controller.engine.connectivity", "Connectivity", "learn_host"),
    ("    policy and destination", "controller.engine.placement", "FlowPlacer", "_admit"),
    ("    placement", "controller.te.engineer", "TrafficEngineer", "place"),
    ("      column chosen", "controller.te.chooser", "PathChooser", "choose_new"),
    ("    rules installed", "controller.engine.placement", "FlowPlacer", "_install_new"),
    ("      rules compiled", "controller.engine.placement", "FlowPlacer", "_rules"),
    ("        next hops", "controller.routing.fabricstate", "FabricState", "next_hops"),
    ("        default forwarding asked", "controller.flowprog.programmer", "Programmer", "takes"),
    ("      programmer", "controller.flowprog.programmer", "Programmer", "set_owner"),
    ("    notices", "controller.engine.placement", "FlowPlacer", "_placed_notices"),
    ("program confirmed", "controller.engine.engine", "FabricEngine", "program_confirmed"),
    ("publisher", "controller.app.publisher", "Publisher", "absorb"),
)
_RETURNS_CALLABLE = {"takes"}  # the step is the function it hands back, called per hop
LIMITS = {"spines": (1, 1024), "leaves": (2, 8192), "flows": (1, 1_000_000)}


class StepTimes:
    """Inclusive performance-counter seconds and calls per step, counted only
    inside :meth:`counting`."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._on = False

    @contextmanager
    def counting(self) -> Iterator[None]:
        self._on = True
        try:
            yield
        finally:
            self._on = False

    def _timed(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.perf_counter

        @functools.wraps(fn)
        def step(*args: Any, **kwargs: Any) -> Any:
            if not self._on:
                return fn(*args, **kwargs)
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] += clock() - t0
                self.calls[label] += 1

        return step

    def _returning_timed(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def maker(*args: Any, **kwargs: Any) -> Any:
            return self._timed(label, fn(*args, **kwargs))

        return maker

    @contextmanager
    def patched(self) -> Iterator[None]:
        """Every step wrapped while inside; the originals put back on the way out."""
        undo: list[tuple[Any, str, Any]] = []
        try:
            for label, module, cls, attr in STEPS:
                owner = importlib.import_module(module)
                if cls:
                    owner = getattr(owner, cls)
                own = vars(owner).get(attr)  # None: inherited (a mixin's method)
                fn = getattr(owner, attr)
                wrap = self._returning_timed if attr in _RETURNS_CALLABLE else self._timed
                setattr(owner, attr, wrap(label.strip(), fn))
                undo.append((owner, attr, own))
            yield
        finally:
            for owner, attr, own in reversed(undo):
                if own is None:
                    delattr(owner, attr)
                else:
                    setattr(owner, attr, own)


def measure(spines: int, leaves: int, flows: int, *, seed: int = 1) -> dict[str, Any]:
    """Bring the fabric up and set up ``flows`` new flows with the steps timed."""
    fab = synthetic.leaf_spine(spines, leaves, capacity_bps=LINK_BPS)
    steps = StepTimes()
    gc.collect()
    with CollectorSettings():
        lab = driver_for(fab, hosts_per_leaf=ENGINE_HOSTS_PER_LEAF, seed=seed, heap_policy=True)
        bring_up(lab)
        work = workload(lab, flows, random.Random(seed))
        gc.collect()
        gc.freeze()  # the workload, the switches' tables and startup, as the scale benchmark
        publisher = Publisher(lab.engine, bus=EventBus(), metrics=lab.metrics, clock=Clock())
        lab.on_output = publisher.absorb

        def counted(*args: Any, **kwargs: Any) -> tuple[float, float]:
            with steps.counting():  # the hub's ticks between simulated seconds are not
                return first_packet(*args, **kwargs)

        with steps.patched():
            timing = run_setups(lab, publisher, work, first=counted)
        placed = len(lab.engine.placer.te)
    n = len(work)
    return {
        "spines": spines,
        "leaves": leaves,
        "flows": n,
        "placed": placed,
        "engine_us_per_flow": round(timing["engine_s"] / n * 1e6, 2),
        "fake_switch_us_per_flow": round(timing["switch_s"] / n * 1e6, 2),
        "steps": [
            {
                "step": label,
                "us_per_flow": round(steps.seconds[label.strip()] / n * 1e6, 2),
                "calls_per_flow": round(steps.calls[label.strip()] / n, 2),
            }
            for label, *_ in STEPS
        ],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['spines']} x {result['leaves']}, {result['flows']:,} new flows "
        f"({result['placed']:,} placed): engine {result['engine_us_per_flow']} us + fake "
        f"switches {result['fake_switch_us_per_flow']} us per flow, with the wrappers' cost",
        "",
        "| step (inclusive) | us per flow | calls per flow |",
        "|---|---:|---:|",
    ]
    for s in result["steps"]:
        name = s["step"].strip()
        depth = (len(s["step"]) - len(name)) // 2
        lines.append(f"| {'· ' * depth}{name} | {s['us_per_flow']} | {s['calls_per_flow']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.setup_steps", description=__doc__)
    parser.add_argument("--spines", type=int, default=16, help="spines (default 16)")
    parser.add_argument("--leaves", type=int, default=64, help="leaves (default 64)")
    parser.add_argument("--flows", type=int, default=10_000, help="new flows (default 10,000)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed")
    parser.add_argument("--json", metavar="FILE", help="also write the result here")
    args = parser.parse_args(argv)
    for name, (lo, hi) in LIMITS.items():
        value = getattr(args, name)
        if not lo <= value <= hi:
            parser.error(f"--{name} must be in {lo}..{hi}, got {value}")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        parser.error(f"--json: directory {Path(args.json).resolve().parent} does not exist")
    print(f"bringing up {args.spines} x {args.leaves} on fake switches ...", file=sys.stderr)
    result = measure(args.spines, args.leaves, args.flows, seed=args.seed)
    result.update(date=utc_now(), speed=speed_probe())
    print(markdown(result), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
