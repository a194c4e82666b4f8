"""The demo's phases on one running lab, each next to its emulator ceiling.

Six phases of AI traffic (flowgen flows on the ai-training ports): a ring
all-reduce under hash ECMP, the same ring placed per flow by the controller,
the same ring declared as a job before it starts, all-to-all among one host
per leaf, the ring beside a background flow that fills one spine's links (a
hot spot), and the ring while a leaf-spine link that carries AI flows fails.
Each kind of traffic also runs once on a static optimal placement written
into the switches (:mod:`benchmarks.ceiling`): the **emulator ceiling**, what
this machine carries with no controller logic at all, which every phase's
ratio is printed next to. Before the phases, a paced-UDP ring on that static
placement checks that the emulator carries the link rate at all.

Records goodput, the fabric's bound, reroutes and, for the failure, the
traffic gap into :class:`~benchmarks.demo_report.PhaseRun` values; writes no
file and asserts nothing. Only the main thread may run it (Mininet).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from benchmarks.bounds import job_bound
from benchmarks.ceiling import StaticPlacement, optimal_spines
from benchmarks.declare import declare, job_of
from benchmarks.demo_report import Ceiling, PhaseRun, failure_gap, goodput_of
from benchmarks.lab import (
    Flow,
    Lab,
    busiest_cable,
    by_ports,
    delta,
    hashed_sports,
    placed_flows,
    reroute_counts,
    ring_order,
    set_strategy,
    spine_of,
    uses_cable,
)
from benchmarks.watch import EventWatcher
from controller.policy.model import Strategy

__all__ = ["PHASES", "Demo", "DemoShape"]

PHASES = (
    "ring, hash ECMP",
    "ring",
    "ring, declared job",
    "all-to-all",
    "hot spot",
    "link failure",
)
ROCE_PORT = 4791
NCCL_PORTS = range(29500, 29600)
BACKGROUND_PORT = 5001  # no policy claims it: the default policy spreads it by source port
UDP_SIZE = 1000
CHECK_FRACTION = 0.9  # the ceiling check paces the ring at 90% of the link rate
CHECK_OK = 0.95

Pairs = list[tuple[tuple[int, int], tuple[int, int]]]
During = Callable[[list[Any], float], dict[str, Any]]


class DemoShape(Protocol):
    """What the phases need of the demo's configuration (read only)."""

    @property
    def spines(self) -> int: ...
    @property
    def leaves(self) -> int: ...
    @property
    def hosts_per_leaf(self) -> int: ...
    @property
    def bw(self) -> float: ...
    @property
    def phase_seconds(self) -> float: ...
    @property
    def strategy(self) -> str: ...
    @property
    def seed(self) -> int: ...


@dataclass(frozen=True)
class _JobPath:
    """A declared pair's path, shaped like the controller's Flow message where it matters."""

    path: tuple[str, ...]
    flow_id: str = ""
    moves: int = 0


class Demo:
    """Runs the phases on one lab; every time is wall-clock seconds (flowgen's clock)."""

    def __init__(
        self, cfg: DemoShape, lab: Lab, watcher: EventWatcher, *, log: Callable[[str], None]
    ) -> None:
        self.cfg, self.lab, self.watcher, self.log = cfg, lab, watcher, log
        self.rng = random.Random(cfg.seed)
        self._sports = iter(self.rng.sample(range(32768, 60000), 4000))
        self._port_offset = 0
        self.marks: list[tuple[float, str, str]] = []
        self.runs: list[PhaseRun] = []
        self.check: dict[str, Any] | None = None

    # -------------------------------------------------------------- flows
    def _tcp(self, pairs: Sequence[tuple[tuple[int, int], tuple[int, int]]]) -> list[Flow]:
        flows = []
        for src, dst in pairs:
            port = NCCL_PORTS[self._port_offset % len(NCCL_PORTS)]
            self._port_offset += 1
            flows.append(Flow(src, dst, "tcp", port, next(self._sports)))
        return flows

    def _again(self, flows: Sequence[Flow]) -> list[Flow]:
        """The same flows with fresh source ports (no rule of the first run may carry them)."""
        return [Flow(f.src, f.dst, f.proto, f.port, next(self._sports), f.rate_mbps, f.size, f.tag)
                for f in flows]  # fmt: skip

    @staticmethod
    def _ring(hosts: Sequence[tuple[int, int]]) -> Pairs:
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

    # -------------------------------------------------------------- the ceiling
    def check_ceiling(self) -> None:
        """Paced UDP ring at 90% of the link rate on a static optimal placement: carried?"""
        c = self.cfg
        rate = round(CHECK_FRACTION * c.bw, 3)
        flows = [
            Flow(src, dst, "udp", ROCE_PORT, next(self._sports), rate, UDP_SIZE, tag=n)
            for n, (src, dst) in enumerate(self._ring(ring_order(c.leaves, c.hosts_per_leaf)))
        ]
        seconds = min(c.phase_seconds, 5.0)
        self.log(f"ceiling check: {len(flows)} UDP flows at {rate:g} Mbit/s, static placement ...")
        results, _, _, _ = self._static(flows, seconds=seconds)
        sent = sum(int(r["sent"]["packets"]) for r in results)
        got = sum(int(r["sink"]["flows"].get(str(r["flow"].tag), {}).get("packets", 0))
                  for r in results)  # fmt: skip
        ratio = got / sent if sent else 0.0
        self.check = {"flows": len(flows), "rate_mbps": rate, "delivered": round(ratio, 4),
                      "ok": ratio >= CHECK_OK}  # fmt: skip
        verdict = (
            "the emulator carries this link rate"
            if self.check["ok"]
            else "BELOW 0.95: this machine does not carry the link rate now (busy?); "
            "read every ratio against its ceiling row"
        )
        self.log(f"ceiling check: {ratio:.3f} of the offered traffic delivered: {verdict}")

    def _static(
        self,
        flows: list[Flow],
        *,
        seconds: float,
        down: Sequence[tuple[int, int]] = (),
        used: dict[tuple[str, str], float] | None = None,
        during: During | None = None,
    ) -> tuple[list[dict[str, Any]], float, float, dict[str, Any]]:
        """Run ``flows`` pinned to a static optimal placement: (results, start, end, extra)."""
        c, lab = self.cfg, self.lab
        spines = optimal_spines(
            flows, spines=c.spines, leaves=c.leaves, link_bps=c.bw * 1e6, down=down, used_bps=used
        )
        with StaticPlacement(lab.fab, flows, spines) as placement:
            start = time.time()
            handle = lab.start_flows(flows, duration=seconds)
            extra: dict[str, Any] = {}
            try:
                if during is not None:
                    extra = during([], start)
                results = lab.finish(handle, timeout=seconds + 30)
            except BaseException:
                lab.stop_handles(*handle["senders"], *handle["sinks"].values())
                raise
            end = time.time()
            placement.check()
        time.sleep(1.0)
        return results, start, end, extra

    # -------------------------------------------------------------- one job
    def _job(
        self,
        name: str,
        strategy: str,
        flows: list[Flow],
        *,
        during: During | None = None,
        declared: str = "",
    ) -> tuple[PhaseRun, dict[str, Any]]:
        lab, seconds = self.lab, self.cfg.phase_seconds
        set_strategy(lab.api, Strategy.parse(strategy))
        before = reroute_counts(lab.daemon)
        start = time.time()
        handle = lab.start_flows(flows, duration=seconds)
        extra: dict[str, Any] = {}
        try:
            placed = self._declared(declared, flows) if declared else placed_flows(lab.api, flows)
            if during is not None:
                extra = during(placed, start)
            # Read the paths shortly before the flows end (they are idle-expired later).
            time.sleep(max(0.0, start + 0.5 + seconds - 0.7 - time.time()))
            if declared:
                now_at = self._declared(declared, flows)
                final = {(f.sport, f.port): p for f, p in zip(flows, now_at, strict=True)}
            else:
                final = by_ports(lab.api.list_flows(), flows)
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
            strategy="declared job" if declared else strategy,
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

    def _declared(self, job: str, flows: list[Flow]) -> list[Any]:
        """Each flow's path from the job's pairs (a declared flow is not a learned one)."""
        by_pair = {(p.src, p.dst): tuple(p.path) for p in self.lab.api.get_job(job).pairs}
        ip = self.lab.fab.ip
        return [_JobPath(by_pair.get((ip(*f.src), ip(*f.dst)), ())) for f in flows]

    def _progress(self, k: int, text: str) -> None:
        self.log(f"phase {k}/{len(PHASES)} {PHASES[k - 1]}: {text}")

    # -------------------------------------------------------------- phases
    def ring_phase(self, k: int, strategy: str, *, declare_job: bool = False) -> None:
        order = ring_order(self.cfg.leaves, self.cfg.hosts_per_leaf)
        flows = self._tcp(self._ring(order))
        declared = ""
        if declare_job:
            declared = "demo-ring"
            done = declare(self.lab.api, job_of(declared, flows, demand_mbps=None))
            self._progress(
                k,
                f"ApplyJob placed {done.pairs_placed} of {done.pairs_total} pairs, rules "
                f"confirmed on the switches in {done.seconds * 1000:.0f} ms; starting traffic ...",
            )
        else:
            self._progress(k, f"{len(flows)} TCP flows in a ring, strategy {strategy} ...")
        try:
            run, _ = self._job(PHASES[k - 1], strategy, flows, declared=declared)
        finally:
            if declared:
                self.lab.api.delete_job(declared)
        run.bound_bps = self._bound(flows)
        run.bound_note = "NIC- and link-limited max concurrent flow"
        run.ceiling = self._ring_ceiling(flows)
        self._done(k, run)

    def _ring_ceiling(self, flows: list[Flow]) -> Ceiling:
        """The ring phases share one ceiling run (the same traffic)."""
        ring = next((r.ceiling for r in self.runs if r.name.startswith("ring") and r.ceiling), None)
        if ring is not None:
            return ring
        self.log("  emulator ceiling: the same ring on a static optimal placement ...")
        results, _, _, _ = self._static(self._again(flows), seconds=self.cfg.phase_seconds)
        return self._ceiling_of(results, self._bound(flows))

    def _ceiling_of(self, results: list[dict[str, Any]], bound: float) -> Ceiling:
        got = sum(goodput_of(r) for r in results)
        self.log(f"  emulator ceiling: {got / 1e6:.1f} of {bound / 1e6:.1f} Mbit/s "
                 f"({got / bound:.2f})")  # fmt: skip
        return Ceiling(goodput_bps=got, bound_bps=bound)

    def all_to_all_phase(self, k: int) -> None:
        members = [(j, 1) for j in range(1, self.cfg.leaves + 1)]
        flows = self._tcp([(a, b) for a in members for b in members if a != b])
        self._progress(k, f"{len(flows)} TCP flows, every ordered pair of {len(members)} hosts ...")
        run, _ = self._job(PHASES[k - 1], self.cfg.strategy, flows)
        run.bound_bps = self._bound(flows)
        run.bound_note = "NIC- and link-limited max concurrent flow"
        self.log("  emulator ceiling: the same flows on a static optimal placement ...")
        results, _, _, _ = self._static(self._again(flows), seconds=self.cfg.phase_seconds)
        run.ceiling = self._ceiling_of(results, run.bound_bps)
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

        def background(spine: int) -> During:
            def start_it(placed: list[Any], start: float) -> dict[str, Any]:
                time.sleep(max(0.0, start + 0.5 + c.phase_seconds / 3 - time.time()))
                remaining = start + 0.5 + c.phase_seconds - time.time()
                bg = Flow(bg_src, bg_dst, "tcp", BACKGROUND_PORT, sports[spine], reset=True)
                handle = lab.start_flows([bg], duration=max(1.0, remaining - 0.6), sink_extra=1.5)
                self.log(f"  background TCP {bg.label} (default policy) spread onto spine{spine}")
                return {"handle": handle, "spine": spine}

            return start_it

        def aimed(placed: list[Any], start: float) -> dict[str, Any]:
            if not sports:
                return {}
            # Aim at the spine of the ring flow leaving leaf1, if we know how to hash there.
            leaving = [p for f, p in zip(flows, placed, strict=True) if f.src[0] == 1]
            wanted = [int(s[5:]) for p in leaving if (s := spine_of(p))]
            return background(next((s for s in wanted if s in sports), min(sports)))(placed, start)

        run, extra = self._job(PHASES[k - 1], c.strategy, flows, during=aimed)
        bound_free = self._bound(flows)
        run.bound_bps, run.bound_note = bound_free, "no background flow could be aimed"
        if not extra:
            self._done(k, run)
            return
        spine = extra["spine"]
        (bg_result,) = lab.finish(extra["handle"], timeout=30)
        run.bound_bps, run.bound_note, used = self._hot_bound(
            flows, (run.start, run.end), bg_result, spine
        )
        self.marks.append((bg_result["sent"]["start"], "background", f"background on spine{spine}"))
        self.log("  emulator ceiling: the same ring placed around the background ...")
        results, start, end, again = self._static(
            self._again(flows), seconds=c.phase_seconds, used=used, during=background(spine)
        )
        (bg_again,) = lab.finish(again["handle"], timeout=30)
        bound, _, _ = self._hot_bound(flows, (start, end), bg_again, spine)
        run.ceiling = self._ceiling_of(results, bound)
        self._done(k, run)

    def _hot_bound(
        self,
        flows: list[Flow],
        span: tuple[float, float],
        bg_result: dict[str, Any],
        spine: int,
    ) -> tuple[float, str, dict[tuple[str, str], float]]:
        """The bound time-weighted over the background's share of the phase (start, end)."""
        bg_bps = bg_result["sink"]["goodput_bps"]
        bg_start = bg_result["sent"]["start"]
        used = {("leaf1", f"spine{spine}"): bg_bps, (f"spine{spine}", "leaf2"): bg_bps}
        start, end = span
        share = min(1.0, max(0.0, (end - bg_start) / max(1e-9, end - start)))
        bound = (1 - share) * self._bound(flows) + share * self._bound(flows, used_bps=used)
        note = (
            f"time-weighted: {1 - share:.0%} of the phase on the free fabric, {share:.0%} "
            f"with {bg_bps / 1e6:.1f} Mbit/s of background on leaf1->spine{spine}->leaf2 "
            "taken from those links' capacity"
        )
        full = {key: self.cfg.bw * 1e6 for key in used}  # the ceiling avoids those links
        return bound, note, full

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
            current = by_ports(lab.api.list_flows(), flows)
            paths = [
                list(current.get((f.sport, f.port), p).path)
                for f, p in zip(flows, placed, strict=True)
            ]
            leaf, spine = busiest_cable(paths)
            affected = [n for n, path in enumerate(paths) if uses_cable(path, leaf, spine)]
            state.update(leaf=leaf, spine=spine, affected=affected, at=time.time())
            lab.fab.set_link(leaf, spine, up=False)
            self.log(f"  {leaf}-{spine} down; it carried {len(affected)} of the AI flows")
            self.marks.append((state["at"], "failure", f"{leaf}-{spine} down"))
            return state

        run, _ = self._job(PHASES[k - 1], c.strategy, flows, during=fail)
        failed = (int(state["leaf"][4:]), int(state["spine"][5:]))
        run.bound_bps = self._failure_bound(flows, (run.start, run.end), state["at"], failed)
        run.bound_note = (
            f"demand-capped (flows paced at {rate:g} Mbit/s), time-weighted over "
            f"{state['leaf']}-{state['spine']} up and down"
        )
        run.gap = failure_gap(run, state, rate_pps=rate * 1e6 / (UDP_SIZE * 8))
        lab.fab.set_link(state["leaf"], state["spine"], up=True)
        self.log(
            "  emulator ceiling: the same flows placed around that link, which fails again ..."
        )

        def fail_again(placed: list[Any], start: float) -> dict[str, Any]:
            time.sleep(max(0.0, start + 0.5 + 0.4 * c.phase_seconds - time.time()))
            lab.fab.set_link(state["leaf"], state["spine"], up=False)
            return {"at": time.time()}

        try:
            results, start, end, again = self._static(
                self._again(flows), seconds=c.phase_seconds, down=[failed], during=fail_again
            )
        finally:
            lab.fab.set_link(state["leaf"], state["spine"], up=True)
        run.ceiling = self._ceiling_of(
            results, self._failure_bound(flows, (start, end), again["at"], failed)
        )
        self._done(k, run)

    def _failure_bound(
        self, flows: list[Flow], span: tuple[float, float], at: float, failed: tuple[int, int]
    ) -> float:
        """The bound time-weighted over the phase (start, end) before and after the failure."""
        start, end = span
        share = (end - at) / max(1e-9, end - start)
        return (1 - share) * self._bound(flows) + share * self._bound(flows, down=[failed])

    def _done(self, k: int, run: PhaseRun) -> None:
        self.runs.append(run)
        got = sum(goodput_of(r) for r in run.results)
        ratio = got / run.bound_bps if run.bound_bps else 0.0
        moved = ", ".join(f"{n} {r}" for r, n in run.reroutes.items()) or "none"
        ceiling = run.ceiling.ratio if run.ceiling else None
        versus = f", ceiling {ceiling:.2f} ({ratio / ceiling:.2f} of it)" if ceiling else ""
        self.log(
            f"phase {k}/{len(PHASES)} done: {got / 1e6:.1f} of {run.bound_bps / 1e6:.1f} Mbit/s "
            f"(ratio {ratio:.2f}{versus}), reroutes: {moved}"
        )

    def run(self) -> None:
        self.check_ceiling()
        self.ring_phase(1, "ecmp")
        self.ring_phase(2, self.cfg.strategy)
        self.ring_phase(3, self.cfg.strategy, declare_job=True)
        self.all_to_all_phase(4)
        self.hot_spot_phase(5)
        self.failure_phase(6)
