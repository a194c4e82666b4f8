"""Read-side of jobs: pair views for people, and which pinned policies cover a job's pairs.

A pinned policy whose match covers some of a job's pairs decides for those
pairs when its priority is higher than the job's; otherwise the job wins.
The overlap test is the policy layer's own (:func:`matches_overlap`), so the
answer shown in GetJob is the rule the engine applies. Nothing here changes
state.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from controller.engine.views import JobConflictView, JobPairView
from controller.fabric.model import Path
from controller.fabric.topology import Topology
from controller.jobs.model import HostPair, Job
from controller.policy.book import PolicyBook
from controller.policy.model import FlowMatch, Policy, Strategy
from controller.policy.overlap import matches_overlap

__all__ = ["pair_views", "conflicts_of", "covering_policy"]


def pair_views(
    job: Job,
    paths: Mapping[HostPair, Path],
    notes: Mapping[HostPair, str],
    topo: Topology,
    capacity_bps: float,
    *,
    confirmed: bool = False,
) -> tuple[JobPairView, ...]:
    demand = job.demand_bps(capacity_bps)
    views = []
    for pair in job.flow_pairs():
        path = paths.get(pair)
        names = tuple(topo.label(d) for d in path.switches) if path else ()
        views.append(
            JobPairView(
                src=pair[0],
                dst=pair[1],
                path=names,
                demand_bps=demand,
                placed=path is not None and confirmed,
                note=notes.get(pair, "" if path else "not placed"),
            )
        )
    return tuple(views)


def _pair_match(job: Job, src: str, dst: str) -> FlowMatch:
    return FlowMatch(
        ip_proto=job.match.ip_proto,
        dst_ports=job.match.dst_ports,
        src_hosts=(ipaddress.IPv4Network(f"{src}/32"),),
        dst_hosts=(ipaddress.IPv4Network(f"{dst}/32"),),
    )


def _pinned(book: PolicyBook) -> list[Policy]:
    return sorted((p for p in book.all() if p.strategy is Strategy.PINNED), key=lambda p: p.name)


def covering_policy(job: Job, src: str, dst: str, book: PolicyBook) -> str | None:
    """The pinned policy that takes the pair ``src -> dst`` from the job, if any."""
    flow = _pair_match(job, src, dst)
    for policy in _pinned(book):
        if policy.priority > job.priority and any(
            matches_overlap(alt, flow) for alt in policy.match
        ):
            return policy.name
    return None


def conflicts_of(job: Job, book: PolicyBook) -> tuple[JobConflictView, ...]:
    out = []
    pairs = job.flow_pairs()
    for policy in _pinned(book):
        covered = sum(
            1
            for src, dst in pairs
            if any(matches_overlap(alt, _pair_match(job, src, dst)) for alt in policy.match)
        )
        if covered:
            out.append(
                JobConflictView(
                    policy.name, policy.priority, job.priority > policy.priority, covered
                )
            )
    return tuple(out)
