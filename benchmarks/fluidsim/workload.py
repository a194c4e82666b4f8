"""What the simulated cluster runs: collective jobs, background traffic, failures.

A job owns a set of hosts (disjoint from other jobs', as GPUs are allocated)
and runs one collective over them:

- *ring* all-reduce: host i sends to host i+1, hosts in topology order (hosts
  of one leaf are neighbours, as collective libraries build rings) or in
  random order (a ring built without regard for the topology);
  every flow carries ``2 (N - 1) / N`` times the buffer, and the ring moves
  in lock step, so its flows form one group (:mod:`.maxmin`): the ring runs
  at the pace of its slowest hop;
- *all-to-all*: every host sends ``1 / N`` of the buffer to every other host,
  each flow on its own; the job ends with its last flow.

Background flows run from the first to the last moment at a fixed rate (a
share of the NIC) between random hosts on different leaves. Failures take a
whole spine, or one leaf-spine cable, down at a given time. Everything is
drawn from one seeded generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from benchmarks.fluidsim.fabric import SimFabric
from controller.fabric.model import LinkId

__all__ = ["Job", "Failure", "Scenario", "FlowSpec", "build_scenario", "job_flows"]


@dataclass(frozen=True)
class Job:
    job_id: int
    hosts: tuple[int, ...]  # ring order
    pattern: str  # "ring" | "all-to-all"
    size_bytes: float
    start_s: float


@dataclass(frozen=True)
class Failure:
    at_s: float
    links: tuple[LinkId, ...]
    what: str


@dataclass(frozen=True)
class FlowSpec:
    """One flow to start: hosts, UDP source port (its hash entropy), bytes (inf for
    background), rate cap (inf for none), group (flows of a lock-step ring share one)."""

    src: int
    dst: int
    sport: int
    bits: float
    cap_bps: float
    group: int


@dataclass(frozen=True)
class Scenario:
    jobs: tuple[Job, ...]
    background: tuple[tuple[int, int, int, float], ...]  # (src, dst, sport, rate bits/s)
    failures: tuple[Failure, ...]


def build_scenario(
    fabric: SimFabric,
    *,
    jobs: int,
    job_hosts: int,
    pattern: str,
    size_bytes: float,
    background: float,
    fail_spine_at: float | None,
    fail_link_at: float | None,
    stagger_s: float,
    seed: int,
    ring_order: str = "topology",
) -> Scenario:
    """Jobs on disjoint random hosts, background on the hosts left (or on all hosts
    when jobs use them all), and the failures asked for."""
    rng = random.Random(seed)
    hosts = list(range(fabric.hosts))
    rng.shuffle(hosts)
    placed = []
    for j in range(jobs):
        mine = hosts[j * job_hosts : (j + 1) * job_hosts]
        mine = sorted(mine) if ring_order == "topology" else mine  # shuffled already
        placed.append(Job(j, tuple(mine), pattern, size_bytes, j * stagger_s))
    free = hosts[jobs * job_hosts :] or hosts
    flows = []
    if background > 0:
        for src in sorted(free):
            dst = rng.randrange(fabric.hosts)
            while fabric.leaf_of(dst) == fabric.leaf_of(src):
                dst = rng.randrange(fabric.hosts)
            flows.append((src, dst, rng.randrange(49152, 65536), background * fabric.nic_bps))
    failures = []
    if fail_spine_at is not None:
        spine = rng.choice(fabric.fab.spines)
        failures.append(
            Failure(fail_spine_at, tuple(fabric.spine_links(spine)), f"spine {spine} down")
        )
    if fail_link_at is not None:
        leaf, spine = rng.choice(fabric.fab.leaves), rng.choice(fabric.fab.spines)
        failures.append(
            Failure(fail_link_at, tuple(fabric.cable(leaf, spine)), f"cable {leaf}-{spine} down")
        )
    return Scenario(tuple(placed), tuple(flows), tuple(sorted(failures, key=lambda f: f.at_s)))


def job_flows(job: Job, rng: random.Random, *, first_group: int) -> list[FlowSpec]:
    """The flows a job starts with; groups are numbered from ``first_group``."""
    n = len(job.hosts)
    bits = job.size_bytes * 8
    inf = float("inf")
    if job.pattern == "ring":
        per = 2 * (n - 1) / n * bits
        return [
            FlowSpec(h, job.hosts[(i + 1) % n], rng.randrange(49152, 65536), per, inf, first_group)
            for i, h in enumerate(job.hosts)
        ]
    per = bits / n
    out: list[FlowSpec] = []
    for a in job.hosts:
        for b in job.hosts:
            if a != b:
                out.append(
                    FlowSpec(a, b, rng.randrange(49152, 65536), per, inf, first_group + len(out))
                )
    return out
