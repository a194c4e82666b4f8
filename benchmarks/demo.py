"""The main job, end to end: AI collectives on an emulated leaf-spine, and a report.

``python -m benchmarks.demo`` (``make demo``) starts fabricd and a leaf-spine
of shaped links (10 Mbit/s by default: a rate this kind of machine carries
for every flow at once; a ceiling check at the start measures it and says
so) and runs six phases of AI traffic (:mod:`benchmarks.demo_phases`): a ring
all-reduce under hash ECMP, the same ring placed per flow by the controller,
the same ring declared as a job before it starts, all-to-all among one host
per leaf, the ring beside a background flow that fills one spine's links (a
hot spot), and the ring while a leaf-spine link that carries AI flows fails.
For each phase it records the job's goodput, the fabric's upper bound for
that traffic matrix (:mod:`benchmarks.bounds`), their ratio, the same
traffic's **emulator ceiling** (a static optimal placement, no controller
logic), the controller's reroutes and why, and for the failure the traffic
gap; it writes ``report.md``, ``report.json`` and ``goodput.png`` under ``--out``.

It never asserts anything (numbers go in the report) and it cleans up all it
started - flowgen processes, the fabric, fabricd - on success, error, Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.demo_phases import Demo
from benchmarks.demo_report import write_report
from benchmarks.lab import (
    Lab,
    OneLineParser,
    check_out_dir,
    preflight,
    ring_order,
    signals_unwind,
)
from benchmarks.watch import EventWatcher, LinkSampler
from controller.policy.model import Strategy

__all__ = ["DemoConfig", "parse_args", "ring_order", "main"]

# One Open vSwitch process on two shared cores forwards roughly 100 Mbit/s of
# three-hop traffic: beyond that a ratio measures the emulator, not the placement.
MAX_OFFERED_MBPS = 100.0
PER_FLOW_STRATEGIES = ("ecmp", "shortest", "least-utilized", "widest", "weighted")


@dataclass(frozen=True)
class DemoConfig:
    out: Path
    spines: int
    leaves: int
    hosts_per_leaf: int
    bw: float
    phase_seconds: float
    strategy: str
    seed: int
    quick: bool

    @property
    def hosts(self) -> int:
        return self.leaves * self.hosts_per_leaf


def parse_args(argv: Sequence[str] | None) -> DemoConfig:
    """Options, validated up front: a bad one ends the run with one line (exit 2)."""
    p = OneLineParser(prog="python -m benchmarks.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="output directory")
    p.add_argument("--spines", type=int, default=None, help="spine switches (default 2)")
    p.add_argument("--leaves", type=int, default=None, help="leaf switches (default 4)")
    p.add_argument("--hosts-per-leaf", type=int, default=None, help="hosts per leaf (default 2)")
    p.add_argument("--bw", type=float, default=10.0, help="link and NIC speed, Mbit/s")
    p.add_argument("--phase-seconds", type=float, default=None, help="traffic per phase")
    p.add_argument(
        "--strategy", default="least-utilized", help="controller strategy for phases 2-5"
    )
    p.add_argument("--seed", type=int, default=1, help="seed for ports and choices")
    p.add_argument("--quick", action="store_true", help="2x2x2 fabric, 4 s phases (smoke test)")
    a = p.parse_args(argv)
    small = a.quick
    spines = a.spines if a.spines is not None else 2
    leaves = a.leaves if a.leaves is not None else (2 if small else 4)
    hosts = a.hosts_per_leaf if a.hosts_per_leaf is not None else 2
    seconds = a.phase_seconds if a.phase_seconds is not None else (4.0 if small else 15.0)
    if not 2 <= spines <= 4:
        p.error(f"--spines {spines}: need 2-4 (a choice of paths, and no more than fits)")
    if not 2 <= leaves <= 8:
        p.error(f"--leaves {leaves}: need 2-8")
    if not 2 <= hosts <= 4:
        p.error(
            f"--hosts-per-leaf {hosts}: need 2-4 (the hot-spot phase uses a second host per leaf)"
        )
    if not 0.5 <= a.bw <= 100:
        p.error(f"--bw {a.bw:g}: need 0.5-100 Mbit/s")
    if leaves * hosts * a.bw > MAX_OFFERED_MBPS:
        p.error(
            f"--bw {a.bw:g} with {leaves * hosts} hosts offers {leaves * hosts * a.bw:g} Mbit/s; "
            f"keep hosts x bw <= {MAX_OFFERED_MBPS:g} (one emulated switch process forwards it all)"
        )
    if not 3 <= seconds <= 300:
        p.error(f"--phase-seconds {seconds:g}: need 3-300")
    try:
        strategy = Strategy.parse(a.strategy)
    except ValueError:
        p.error(f"--strategy {a.strategy!r}: unknown; one of {', '.join(PER_FLOW_STRATEGIES)}")
    if strategy.value not in PER_FLOW_STRATEGIES:
        p.error(
            f"--strategy {strategy.value}: needs a path; one of {', '.join(PER_FLOW_STRATEGIES)}"
        )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = a.out if a.out is not None else Path("out") / f"demo-{stamp}"
    check_out_dir(p, out)
    return DemoConfig(
        out=out,
        spines=spines,
        leaves=leaves,
        hosts_per_leaf=hosts,
        bw=float(a.bw),
        phase_seconds=float(seconds),
        strategy=strategy.value,
        seed=a.seed,
        quick=a.quick,
    )


def _write(cfg: DemoConfig, demo: Demo, watcher: EventWatcher, sampler: LinkSampler) -> str:
    config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    return write_report(
        cfg.out,
        config=config,
        ceiling_check=demo.check,
        runs=demo.runs,
        marks=demo.marks,
        events=watcher.events(),
        link_samples=sampler.samples,
        title=f"AI job goodput, {cfg.spines}x{cfg.leaves}x{cfg.hosts_per_leaf} leaf-spine, "
        f"{cfg.bw:g} Mbit/s links",
    )


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    preflight("python -m benchmarks.demo", "demo")
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:4.0f}s] {text}", flush=True)

    log(
        f"demo: {cfg.spines} spines x {cfg.leaves} leaves x {cfg.hosts_per_leaf} hosts, "
        f"{cfg.bw:g} Mbit/s, {cfg.phase_seconds:g} s phases, seed {cfg.seed}, out {cfg.out}"
    )
    cfg.out.mkdir(parents=True, exist_ok=True)
    try:
        with signals_unwind():
            lab = Lab(
                cfg.out / "work",
                spines=cfg.spines,
                leaves=cfg.leaves,
                hosts_per_leaf=cfg.hosts_per_leaf,
                bw=cfg.bw,
                host_bw=cfg.bw,
                log=log,
            )
            log("starting fabricd and the fabric ...")
            with lab:
                log("fabric up, all hosts known to the controller")
                watcher = EventWatcher(lab.daemon.grpc_target)
                sampler = LinkSampler(lab.daemon.grpc_target, period=0.5)
                demo = Demo(cfg, lab, watcher, log=log)
                try:
                    demo.run()
                finally:
                    sampler.stop()
                    watcher.stop()
                text = _write(cfg, demo, watcher, sampler)
                log("stopping the fabric and fabricd ...")
    except KeyboardInterrupt:
        print("demo: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        traceback.print_exc()
        print(f"demo: failed: {exc} (logs in {cfg.out / 'work'})", file=sys.stderr)
        return 1
    print(f"\nreport: {cfg.out}/report.md, report.json, goodput.png\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
