"""The event loop: rates from max-min fairness, time from one event to the next.

Between events every flow keeps its rate, so the simulation jumps straight to
the next thing that changes rates: a job starting (its flows are placed), a
group of flows finishing (a lock-step ring, or one flow of an all-to-all), or
a failure (the fabric loses links and the placer moves the flows it hit).
After every change the placer sees the new link loads, as port counters
would show them. A run ends when every job has finished, or when nothing can
move any more (flows left on dead links with no way around).

Flows, groups and route incidences live in append-only arrays with "active"
masks, so an event costs array operations, not a loop over every flow.
Owns simulated time and remaining bytes; routes come from the placer.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks.fluidsim.fabric import SimFabric
from benchmarks.fluidsim.maxmin import max_min_rates
from benchmarks.fluidsim.strategies import Placer, SimFlow
from benchmarks.fluidsim.workload import FlowSpec, Scenario, job_flows

__all__ = ["JobResult", "RunResult", "simulate"]

# A group with less than this left (bits, or seconds at its rate) has finished:
# the rest is float residue of subtracting rate x time.
_DONE_BITS = 1e-3
_DONE_S = 1e-12
_NO_JOB = -1

# A job's flows when it starts: (job, the run's generator, first_group=) -> flows.
FlowsOf = Callable[..., list[FlowSpec]]


@dataclass(frozen=True)
class JobResult:
    job_id: int
    pattern: str
    hosts: int
    bytes: float
    start_s: float
    finish_s: float | None  # None: never finished (stuck behind a failure)

    @property
    def completion_s(self) -> float | None:
        return None if self.finish_s is None else self.finish_s - self.start_s


@dataclass
class RunResult:
    strategy: str
    jobs: list[JobResult]
    events: int = 0
    rate_rounds: int = 0
    cpu_s: float = 0.0
    failures: list[str] = field(default_factory=list)


class _Grow:
    """An append-only numpy column."""

    def __init__(self, dtype: type) -> None:
        self.data: np.ndarray = np.zeros(64, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.size + len(values)
        if need > len(self.data):
            bigger = np.zeros(max(need, 2 * len(self.data)), dtype=self.data.dtype)
            bigger[: self.size] = self.data[: self.size]
            self.data = bigger
        self.data[self.size : need] = values
        self.size = need

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.size]


class _Run:
    def __init__(self, fabric: SimFabric, placer: Placer, seed: int) -> None:
        self.fabric, self.placer = fabric, placer
        self.rng = random.Random(seed)
        self.flows: list[SimFlow] = []
        self.flow_group = _Grow(np.int64)
        self.flow_active = _Grow(bool)
        self.inc_flow, self.inc_link, self.inc_active = (
            _Grow(np.int64),
            _Grow(np.int64),
            _Grow(bool),
        )
        self.inc_of: dict[int, slice] = {}  # flow -> its current incidences
        self.group_bits, self.group_cap = _Grow(np.float64), _Grow(np.float64)
        self.group_job, self.group_active = _Grow(np.int64), _Grow(bool)
        self.rate = np.zeros(0)  # per group, from the last allocation
        self._tuples: set[tuple[int, int, int]] = set()

    def start(self, specs: list[FlowSpec], job: int | None, *, now: float) -> None:
        base = self.group_bits.size
        groups: dict[int, FlowSpec] = {}
        for spec in specs:
            groups.setdefault(spec.group, spec)
        order = sorted(groups)
        dense = {g: base + i for i, g in enumerate(order)}
        self.group_bits.extend(np.array([groups[g].bits for g in order]))
        self.group_cap.extend(np.array([groups[g].cap_bps for g in order]))
        self.group_job.extend(np.full(len(order), _NO_JOB if job is None else job))
        self.group_active.extend(np.ones(len(order), dtype=bool))
        flows: list[SimFlow] = []
        for spec in specs:
            sport = spec.sport
            while (spec.src, spec.dst, sport) in self._tuples:  # 5-tuples must be unique
                sport = 49152 + (sport + 1 - 49152) % 16384
            self._tuples.add((spec.src, spec.dst, sport))
            ft = self.fabric.five_tuple(spec.src, spec.dst, sport)
            demand = min(spec.cap_bps, self.fabric.nic_bps)
            flows.append(SimFlow(len(self.flows) + len(flows), spec.src, spec.dst, ft, job, demand))
        self.flows.extend(flows)
        self.flow_group.extend(np.array([dense[s.group] for s in specs], dtype=np.int64))
        self.flow_active.extend(np.ones(len(flows), dtype=bool))
        for flow, route in zip(flows, self.placer.place(flows, now=now), strict=True):
            self.route(flow.key, route)

    def route(self, key: int, links: np.ndarray) -> None:
        old = self.inc_of.get(key)
        if old is not None:
            self.inc_active.data[old] = False
        first = self.inc_link.size
        self.inc_flow.extend(np.full(len(links), key))
        self.inc_link.extend(links)
        self.inc_active.extend(np.ones(len(links), dtype=bool))
        self.inc_of[key] = slice(first, first + len(links))

    def finish(self, groups: np.ndarray) -> None:
        self.group_active.data[groups] = False
        ended = np.flatnonzero(self.flow_active.view & np.isin(self.flow_group.view, groups))
        self.flow_active.data[ended] = False
        for key in ended:
            self.inc_active.data[self.inc_of.pop(int(key))] = False
        self.placer.remove([self.flows[int(k)] for k in ended])

    def rates(self) -> int:
        """Max-min rates of every active group now; returns the filling rounds."""
        self.rate = np.zeros(self.group_bits.size)
        live = self.inc_active.view
        if not live.any():
            return 0
        inc_flow, inc_link = self.inc_flow.view[live], self.inc_link.view[live]
        flows = np.flatnonzero(self.flow_active.view)
        groups, group_of = np.unique(self.flow_group.view[flows], return_inverse=True)
        flow_pos = np.full(self.flow_group.size, -1, dtype=np.int64)
        flow_pos[flows] = np.arange(len(flows))
        alloc = max_min_rates(
            flow_links=flow_pos[inc_flow],
            link_of=inc_link,
            group_of=group_of.astype(np.int64),
            capacity=self.placer.capacity,
            group_cap=self.group_cap.view[groups],
        )
        self.rate[groups] = alloc.group_rate
        self.placer.observe(alloc.link_load)
        return alloc.rounds


def simulate(
    fabric: SimFabric,
    scenario: Scenario,
    placer: Placer,
    *,
    seed: int,
    horizon_s: float = 1e6,
    flows_of: FlowsOf = job_flows,
) -> RunResult:
    """Run ``scenario`` with ``placer`` on ``fabric`` (which it changes: build one per run).
    ``flows_of`` turns a starting job into flows (by default :func:`.workload.job_flows`)."""
    started = time.process_time()
    run = _Run(fabric, placer, seed)
    result = RunResult(strategy=placer.name, jobs=[])
    events: list[tuple[float, int, str, int]] = []  # (time, order, kind, index)
    for i, job in enumerate(scenario.jobs):
        heapq.heappush(events, (job.start_s, len(events), "job", i))
    for i, failure in enumerate(scenario.failures):
        heapq.heappush(events, (failure.at_s, len(events), "failure", i))
    if scenario.background:
        specs = [
            FlowSpec(s, d, p, np.inf, bps, g)
            for g, (s, d, p, bps) in enumerate(scenario.background)
        ]
        run.start(specs, None, now=0.0)
    finish: dict[int, float] = {}
    started_jobs: set[int] = set()
    now = 0.0
    while len(finish) < len(scenario.jobs):
        while events and events[0][0] <= now:
            _, _, kind, i = heapq.heappop(events)
            if kind == "job":
                job = scenario.jobs[i]
                run.start(flows_of(job, run.rng, first_group=0), job.job_id, now=now)
                started_jobs.add(job.job_id)
            else:
                failure = scenario.failures[i]
                lost = fabric.fail(failure.links)
                for key, links in placer.fail(lost, now=now).items():
                    run.route(key, links)
                result.failures.append(f"{failure.what} at {failure.at_s:g} s")
        result.rate_rounds += run.rates()
        result.events += 1
        active = run.group_active.view & (run.group_job.view != _NO_JOB)
        moving = active & (run.rate > 0)
        bits = run.group_bits.view
        step = float((bits[moving] / run.rate[moving]).min()) if moving.any() else np.inf
        if events:
            step = min(step, events[0][0] - now)
        if step == np.inf or now + step > horizon_s:
            break  # nothing moves any more: what is left never finishes
        now += step
        bits[active] -= run.rate[active] * step
        done = np.flatnonzero(active & (bits <= np.maximum(_DONE_BITS, run.rate * _DONE_S)))
        if len(done):
            run.finish(done)
            still = run.group_active.view & (run.group_job.view != _NO_JOB)
            open_jobs = set(run.group_job.view[still].tolist())
            for job_id in started_jobs - open_jobs - set(finish):
                finish[job_id] = now
    for job in scenario.jobs:
        result.jobs.append(
            JobResult(
                job.job_id,
                job.pattern,
                len(job.hosts),
                job.size_bytes,
                job.start_s,
                finish.get(job.job_id),
            )
        )
    result.cpu_s = time.process_time() - started
    return result
