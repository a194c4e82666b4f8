"""Declaring flowgen flows to the controller as a job, the way a scheduler would.

The benchmarks and the demo compare a collective the controller learns flow
by flow with the same collective declared before it starts (``ApplyJob``).
This module turns a list of :class:`~benchmarks.lab.Flow` into the
:class:`~controller.jobs.model.Job` a scheduler would send - a ring or
all-to-all over the flows' hosts in rank order, else explicit pairs - with a
transport match that covers exactly the flows' protocol and destination
ports, and applies it through the public API, timing the whole call (which
returns only once the switches confirmed the rules). It measures nothing
else and starts no traffic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.lab import Flow
from controller.api.client import FabricClient
from controller.api.convert_jobs import job_to_proto
from controller.jobs.model import Job, Pattern
from controller.policy.model import FlowMatch, PortRange
from mininet_topos.leafspine import host_ip

__all__ = ["Declared", "job_of", "declare"]

_PROTO = {"udp": 17, "tcp": 6}


def _pattern(flows: Sequence[Flow]) -> tuple[Pattern, list[tuple[int, int]]]:
    """The pattern the flows form, and the hosts in rank order."""
    ranks: list[tuple[int, int]] = []
    for f in flows:
        if f.src not in ranks:
            ranks.append(f.src)
    for f in flows:
        if f.dst not in ranks:
            ranks.append(f.dst)
    pairs = [(f.src, f.dst) for f in flows]
    ring = [(ranks[i], ranks[(i + 1) % len(ranks)]) for i in range(len(ranks))]
    if len(ranks) >= 2 and pairs == ring:
        return Pattern.RING, ranks
    everyone = [(a, b) for a in ranks for b in ranks if a != b]
    if sorted(pairs) == sorted(everyone) and len(pairs) == len(everyone):
        return Pattern.ALL_TO_ALL, ranks
    return Pattern.PAIRS, ranks


def job_of(name: str, flows: Sequence[Flow], *, demand_mbps: float | None) -> Job:
    """The job that declares ``flows`` (one protocol; ports lo..hi of theirs)."""
    protos = {f.proto for f in flows}
    if len(protos) != 1:
        raise ValueError(f"a job has one transport; these flows use {sorted(protos)}")
    pattern, ranks = _pattern(flows)
    ports = [f.port for f in flows]
    return Job(
        name=name,
        hosts=tuple(host_ip(*h) for h in ranks),  # type: ignore[no-untyped-call]
        match=FlowMatch(
            ip_proto=_PROTO[protos.pop()], dst_ports=(PortRange(min(ports), max(ports)),)
        ),
        pattern=pattern,
        pairs=tuple((host_ip(*f.src), host_ip(*f.dst)) for f in flows)  # type: ignore[no-untyped-call]
        if pattern is Pattern.PAIRS
        else (),
        demand_mbps=demand_mbps,
    )


@dataclass(frozen=True)
class Declared:
    """What ApplyJob answered, and how long the whole call took (rules confirmed)."""

    name: str
    seconds: float
    pairs_total: int
    pairs_placed: int
    max_utilization: float
    response: Any


def declare(client: FabricClient, job: Job) -> Declared:
    """ApplyJob ``job``; returns once the switches confirmed its rules (the call's contract)."""
    started = time.perf_counter()
    resp = client.apply_job(job_to_proto(job))
    seconds = time.perf_counter() - started
    return Declared(
        name=job.name,
        seconds=seconds,
        pairs_total=int(resp.pairs_total),
        pairs_placed=int(resp.pairs_placed),
        max_utilization=float(resp.max_utilization),
        response=resp,
    )
