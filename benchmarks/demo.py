"""The main job, end to end: AI collectives on an emulated leaf-spine, and a report.

``python -m benchmarks.demo`` (``make demo``) starts fabricd and a leaf-spine
of shaped links and runs five phases of AI traffic (flowgen flows on the
ai-training ports): a ring all-reduce under hash ECMP, the same ring placed by
the controller, all-to-all among one host per leaf, the ring beside a
background flow that fills one spine's links (a hot spot), and the ring while
a leaf-spine link that carries AI flows fails. For each phase it records the
job's goodput, the fabric's upper bound for that traffic matrix
(:mod:`benchmarks.bounds`), their ratio, the controller's reroutes and why,
and for the failure the traffic gap; it writes ``report.md``, ``report.json``
and ``goodput.png`` under ``--out``.

It never asserts anything (numbers go in the report) and it cleans up all it
started - flowgen processes, the fabric, fabricd - on success, error, Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.bounds import job_bound
from benchmarks.demo_report import PhaseRun, goodput_of, write_report
from benchmarks.lab import (
    Flow,
    Lab,
    OneLineParser,
    check_out_dir,
    delta,
    hashed_sports,
    placed_flows,
    preflight,
    reroute_counts,
    set_strategy,
    signals_unwind,
    spine_of,
)
from benchmarks.report import loss_in_window
from benchmarks.watch import EventWatcher, LinkSampler
from controller.policy.model import Strategy

__all__ = ["DemoConfig", "parse_args", "ring_order", "main"]

PHASES = ("ring, hash ECMP", "ring", "all-to-all", "hot spot", "link failure")
ROCE_PORT = 4791
NCCL_PORTS = range(29500, 29600)
BACKGROUND_PORT = 5001  # no policy claims it: the default policy hashes it (ECMP groups)
UDP_SIZE = 1000
GAP_BEFORE_S, GAP_AFTER_S = 0.2, 2.0  # loss counted as the failure's: holes in this window
# One Open vSwitch process on two cores forwards about 1 Gbit/s in all, and every
# packet crosses three switches: keep the offered load well below that.
MAX_OFFERED_MBPS = 400.0
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
    p.add_argument("--bw", type=float, default=20.0, help="link and NIC speed, Mbit/s")
    p.add_argument("--phase-seconds", type=float, default=None, help="traffic per phase")
    p.add_argument(
        "--strategy", default="least-utilized", help="controller strategy for phases 2-5"
    )
    p.add_argument("--seed", type=int, default=1, help="seed for ports and choices")
    p.add_argument("--quick", action="store_true", help="2x2x2 fabric, 6 s phases (smoke test)")
    a = p.parse_args(argv)
    small = a.quick
    spines = a.spines if a.spines is not None else 2
    leaves = a.leaves if a.leaves is not None else (2 if small else 4)
    hosts = a.hosts_per_leaf if a.hosts_per_leaf is not None else 2
    seconds = a.phase_seconds if a.phase_seconds is not None else (6.0 if small else 15.0)
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


def ring_order(leaves: int, hosts_per_leaf: int) -> list[tuple[int, int]]:
    """Hosts in ring order such that neighbours (the last and the first too) sit on other leaves.

    ``l1h1, l2h1, ..., lLh1, l1h2, ...``: every ring hop crosses the fabric, as a
    ring all-reduce placed across racks does.
    """
    return [(j, i) for i in range(1, hosts_per_leaf + 1) for j in range(1, leaves + 1)]


class Demo:
    """Runs the phases on one lab; every time is wall-clock seconds (flowgen's clock)."""

    def __init__(
        self, cfg: DemoConfig, lab: Lab, watcher: EventWatcher, *, log: Callable[[str], None]
    ) -> None:
        self.cfg, self.lab, self.watcher, self.log = cfg, lab, watcher, log
        self.rng = random.Random(cfg.seed)
        self._sports = iter(self.rng.sample(range(32768, 60000), 2000))
        self._port_offset = 0
        self.marks: list[tuple[float, str, str]] = []
        self.runs: list[PhaseRun] = []

    # -------------------------------------------------------------- flows
    def _tcp(self, pairs: Sequence[tuple[tuple[int, int], tuple[int, int]]]) -> list[Flow]:
        flows = []
        for src, dst in pairs:
            port = NCCL_PORTS[self._port_offset % len(NCCL_PORTS)]
            self._port_offset += 1
            flows.append(Flow(src, dst, "tcp", port, next(self._sports)))
        return flows

    def _ring(
        self, hosts: Sequence[tuple[int, int]]
    ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        return [(hosts[k], hosts[(k + 1) % len(hosts)]) for k in range(len(hosts))]

    def _bound(self, flows: Sequence[Flow], **kw: Any) -> float:
        c = self.cfg
        return job_bound(
            flows,
            spines=c.spines,
            leaves=c.leaves,
            hosts_per_leaf=c.hosts_per_leaf,
            link_bps=c.bw * 1e6,
            nic_bps=c.bw * 1e6,
            **kw,
        )

    # -------------------------------------------------------------- one job
    def _job(
        self,
        name: str,
        strategy: str,
        flows: list[Flow],
        *,
        during: Callable[[list[Any], float], dict[str, Any]] | None = None,
    ) -> tuple[PhaseRun, dict[str, Any]]:
        lab, seconds = self.lab, self.cfg.phase_seconds
        set_strategy(lab.api, Strategy.parse(strategy))
        before = reroute_counts(lab.daemon)
        start = time.time()
        handle = lab.start_flows(flows, duration=seconds)
        extra: dict[str, Any] = {}
        try:
            placed = placed_flows(lab.api, flows, timeout=10)
            if during is not None:
                extra = during(placed, start)
            # Read the paths shortly before the flows end (they are idle-expired later).
            time.sleep(max(0.0, start + 0.5 + seconds - 0.7 - time.time()))
            final = _by_ports(lab.api.list_flows(), flows)
            results = lab.finish(handle, timeout=seconds + 30)
        except BaseException:
            lab.stop_handles(*handle["senders"], *handle["sinks"].values())
            raise
        end = time.time()
        time.sleep(1.0)  # the last port poll sees the end of the traffic; events arrive
        ids = {str(p.flow_id) for p in placed}
        moved = [
            e["reason"]
            for e in self.watcher.events(since=start, kind="flow-rerouted")
            if e["subject"] in ids and e["time"] <= end
        ]
        run = PhaseRun(
            name=name,
            strategy=strategy,
            flows=flows,
            results=results,
            placed=placed,
            final=final,
            start=start,
            end=end,
            reroutes={r: moved.count(r) for r in sorted(set(moved))},
            reroutes_all=delta(reroute_counts(lab.daemon), before),
            bound_bps=0.0,
            bound_note="",
        )
        return run, extra

    def _progress(self, k: int, text: str) -> None:
        self.log(f"phase {k}/{len(PHASES)} {PHASES[k - 1]}: {text}")

    # -------------------------------------------------------------- phases
    def ring_phase(self, k: int, strategy: str) -> None:
        order = ring_order(self.cfg.leaves, self.cfg.hosts_per_leaf)
        flows = self._tcp(self._ring(order))
        self._progress(k, f"{len(flows)} TCP flows in a ring, strategy {strategy} ...")
        run, _ = self._job(PHASES[k - 1], strategy, flows)
        run.bound_bps = self._bound(flows)
        run.bound_note = "NIC- and link-limited max concurrent flow"
        self._done(k, run)

    def all_to_all_phase(self, k: int) -> None:
        members = [(j, 1) for j in range(1, self.cfg.leaves + 1)]
        flows = self._tcp([(a, b) for a in members for b in members if a != b])
        self._progress(k, f"{len(flows)} TCP flows, every ordered pair of {len(members)} hosts ...")
        run, _ = self._job(PHASES[k - 1], self.cfg.strategy, flows)
        run.bound_bps = self._bound(flows)
        run.bound_note = "NIC- and link-limited max concurrent flow"
        self._done(k, run)

    def hot_spot_phase(self, k: int) -> None:
        c, lab = self.cfg, self.lab
        bg_src, bg_dst = (1, 2), (2, 2)
        order = [h for h in ring_order(c.leaves, c.hosts_per_leaf) if h not in (bg_src, bg_dst)]
        flows = self._tcp(self._ring(order))
        self._progress(k, "finding a background source port for each spine ...")
        sports = hashed_sports(lab, bg_src, bg_dst, port=BACKGROUND_PORT, rng=self.rng)
        self.log(f"  background source ports by spine: {sports or 'none found'}")
        self._progress(k, f"{len(flows)} TCP ring flows, then a background flow on one spine ...")

        def background(placed: list[Any], start: float) -> dict[str, Any]:
            if not sports:
                return {}
            # Aim at the spine of the ring flow leaving leaf1, if we know how to hash there.
            leaving = [p for f, p in zip(flows, placed, strict=True) if f.src[0] == 1]
            aimed = [int(s[5:]) for p in leaving if (s := spine_of(p))]
            spine = next((s for s in aimed if s in sports), min(sports))
            time.sleep(max(0.0, start + 0.5 + c.phase_seconds / 3 - time.time()))
            remaining = start + 0.5 + c.phase_seconds - time.time()
            bg = Flow(bg_src, bg_dst, "tcp", BACKGROUND_PORT, sports[spine], reset=True)
            handle = lab.start_flows([bg], duration=max(1.0, remaining - 0.6), sink_extra=1.5)
            self.log(f"  background TCP {bg.label} (default policy) hashed onto spine{spine}")
            return {"handle": handle, "spine": spine}

        run, extra = self._job(PHASES[k - 1], c.strategy, flows, during=background)
        bound_free = self._bound(flows)
        run.bound_bps, run.bound_note = bound_free, "no background flow could be aimed"
        if extra:
            (bg_result,) = lab.finish(extra["handle"], timeout=30)
            spine = extra["spine"]
            bg_bps = bg_result["sink"]["goodput_bps"]
            bg_start = bg_result["sent"]["start"]
            used = {("leaf1", f"spine{spine}"): bg_bps, (f"spine{spine}", "leaf2"): bg_bps}
            bound_hot = self._bound(flows, used_bps=used)
            share = min(1.0, max(0.0, (run.end - bg_start) / max(1e-9, run.end - run.start)))
            run.bound_bps = (1 - share) * bound_free + share * bound_hot
            run.bound_note = (
                f"time-weighted: {1 - share:.0%} of the phase on the free fabric, {share:.0%} "
                f"with {bg_bps / 1e6:.1f} Mbit/s of background on leaf1->spine{spine}->leaf2 "
                "taken from those links' capacity"
            )
            self.marks.append((bg_start, "background", f"background on spine{spine}"))
        self._done(k, run)

    def failure_phase(self, k: int) -> None:
        c, lab = self.cfg, self.lab
        order = ring_order(c.leaves, c.hosts_per_leaf)
        # Paced so that a leaf's flows still fit its surviving uplinks: loss then
        # counts the failure's gap, not an overload after it.
        rate = round(min(0.75 * c.bw, 0.75 * c.bw * (c.spines - 1) / c.hosts_per_leaf), 2)
        flows = [
            Flow(src, dst, "udp", ROCE_PORT, next(self._sports), rate, UDP_SIZE, tag=n)
            for n, (src, dst) in enumerate(self._ring(order))
        ]
        self._progress(k, f"{len(flows)} RoCEv2 flows at {rate:g} Mbit/s, then a link fails ...")
        state: dict[str, Any] = {}

        def fail(placed: list[Any], start: float) -> dict[str, Any]:
            time.sleep(max(0.0, start + 0.5 + 0.4 * c.phase_seconds - time.time()))
            current = _by_ports(lab.api.list_flows(), flows)
            paths = [
                list(current.get((f.sport, f.port), p).path)
                for f, p in zip(flows, placed, strict=True)
            ]
            leaf, spine = _busiest_cable(paths)
            affected = [n for n, path in enumerate(paths) if _uses(path, leaf, spine)]
            state.update(leaf=leaf, spine=spine, affected=affected, at=time.time())
            lab.fab.set_link(leaf, spine, up=False)
            self.log(f"  {leaf}-{spine} down; it carried {len(affected)} of the AI flows")
            self.marks.append((state["at"], "failure", f"{leaf}-{spine} down"))
            return state

        run, _ = self._job(PHASES[k - 1], c.strategy, flows, during=fail)
        free = self._bound(flows)
        failed = (int(state["leaf"][4:]), int(state["spine"][5:]))
        broken = self._bound(flows, down=[failed])
        share = (run.end - state["at"]) / max(1e-9, run.end - run.start)
        run.bound_bps = (1 - share) * free + share * broken
        run.bound_note = (
            f"demand-capped (flows paced at {rate:g} Mbit/s), time-weighted over "
            f"{state['leaf']}-{state['spine']} up and down"
        )
        run.gap = _gap(run, state, rate_pps=rate * 1e6 / (UDP_SIZE * 8))
        self._done(k, run)

    def _done(self, k: int, run: PhaseRun) -> None:
        self.runs.append(run)
        got = sum(goodput_of(r) for r in run.results)
        ratio = got / run.bound_bps if run.bound_bps else 0.0
        moved = ", ".join(f"{n} {r}" for r, n in run.reroutes.items()) or "none"
        self.log(
            f"phase {k}/{len(PHASES)} done: {got / 1e6:.1f} of {run.bound_bps / 1e6:.1f} Mbit/s "
            f"(ratio {ratio:.2f}), reroutes: {moved}"
        )

    def run(self) -> None:
        self.ring_phase(1, "ecmp")
        self.ring_phase(2, self.cfg.strategy)
        self.all_to_all_phase(3)
        self.hot_spot_phase(4)
        self.failure_phase(5)


# ------------------------------------------------------------------ helpers
def _by_ports(messages: Sequence[Any], flows: Sequence[Flow]) -> dict[tuple[int, int], Any]:
    wanted = {(f.sport, f.port) for f in flows}
    out = {}
    for m in messages:
        key = (m.five_tuple.src_port, m.five_tuple.dst_port)
        if key in wanted:
            out[key] = m
    return out


def _busiest_cable(paths: Sequence[Sequence[str]]) -> tuple[str, str]:
    """The (leaf, spine) cable that the most paths cross, in either direction."""
    count: dict[tuple[str, str], int] = {}
    for path in paths:
        for a, b in itertools.pairwise(path):
            leaf, spine = (a, b) if a.startswith("leaf") else (b, a)
            count[(leaf, spine)] = count.get((leaf, spine), 0) + 1
    if not count:
        raise RuntimeError("no AI flow crosses a leaf-spine link: nothing to fail")
    return max(sorted(count), key=lambda cable: count[cable])


def _uses(path: Sequence[str], leaf: str, spine: str) -> bool:
    hops = set(itertools.pairwise(path))
    return (leaf, spine) in hops or (spine, leaf) in hops


def _gap(run: PhaseRun, state: dict[str, Any], *, rate_pps: float) -> dict[str, Any]:
    """Loss around the failure, per affected flow, from the sinks' dated loss records."""
    window = (state["at"] - GAP_BEFORE_S, state["at"] + GAP_AFTER_S)
    per_flow, collateral = [], 0
    for n, r in enumerate(run.results):
        got = r["sink"].get("flows", {}).get(str(r["flow"].tag), {})
        lost = loss_in_window(got, start=window[0], end=window[1])
        if n not in state["affected"]:
            collateral += lost
            continue
        per_flow.append(
            {
                "flow": r["flow"].label,
                "lost_packets": lost,
                "gap_ms": round(lost / rate_pps * 1000, 1),
                "max_gap_ms": round(float(got.get("max_gap_s", 0.0)) * 1000, 1),
                "lost_in_phase": max(0, int(r["sent"]["packets"]) - int(got.get("packets", 0))),
            }
        )
    return {
        "link": f"{state['leaf']}-{state['spine']}",
        "method": "UDP 4791 flows paced at a known rate; lost = packets missing in holes that "
        f"began from {GAP_BEFORE_S:g} s before to {GAP_AFTER_S:g} s after the failure (the sink "
        "dates every hole by sequence number and send time); gap = lost / rate; max gap = the "
        "longest silence between two arrivals at the sink",
        "rate_pps": round(rate_pps, 1),
        "window_s": [GAP_BEFORE_S, GAP_AFTER_S],
        "affected_flows": len(per_flow),
        "lost_packets": sum(p["lost_packets"] for p in per_flow),
        "gap_ms": max((p["gap_ms"] for p in per_flow), default=0.0),
        "max_gap_ms": max((p["max_gap_ms"] for p in per_flow), default=0.0),
        "unaffected_lost_packets": collateral,
        "per_flow": per_flow,
    }


def _write(cfg: DemoConfig, demo: Demo, watcher: EventWatcher, sampler: LinkSampler) -> str:
    config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    return write_report(
        cfg.out,
        config=config,
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
