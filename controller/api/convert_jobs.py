"""Conversions between jobs and their views and the ``fabric.v1`` job messages.

Going out (job, views -> proto) is total. Coming in (proto -> :class:`Job`)
checks only what the wire types cannot express - a pattern number this build
does not know, a port above 65535 in a ``uint32``, match fields a job does
not use - and raises :class:`InvalidArgument` with a field path in proto
field names (``job.match.dst_ports[0].lo``). The job rules (addresses,
repeats, unknown hosts) are the facade's; :func:`proto_field` renames the
field paths they report (``pairs[3][1]``) to the message's (``pairs[3].dst``).
Nothing here talks to the network or keeps state.
"""

from __future__ import annotations

import re
from typing import Any

from fabric.v1 import fabric_pb2 as pb

from controller.api.convert import _match_from_proto, _match_to_proto
from controller.api.jobs_facade import ApplyJobResult, JobConflictView, JobPairView, JobView
from controller.errors import InvalidArgument
from controller.jobs.model import DEFAULT_JOB_PRIORITY, Job, Pattern

__all__ = [
    "pattern_to_proto",
    "pattern_from_proto",
    "job_to_proto",
    "job_from_proto",
    "pair_to_proto",
    "conflict_to_proto",
    "apply_job_result_to_proto",
    "job_view_to_proto",
    "proto_field",
]

# Match fields a job leaves empty: its hosts are its own, by rank.
_UNUSED_MATCH_FIELDS = ("src_ports", "dscp", "src_hosts", "dst_hosts")
_PAIR_END = re.compile(r"^pairs\[(\d+)\]\[([01])\]")


def pattern_to_proto(pattern: Pattern) -> int:
    return int(pb.JobPattern.Value(f"JOB_PATTERN_{pattern.name}"))


def pattern_from_proto(value: int, *, field: str) -> Pattern:
    """The model pattern of an enum number; UNSPECIFIED means the default, ring."""
    if value == pb.JOB_PATTERN_UNSPECIFIED:
        return Pattern.RING
    try:
        name = pb.JobPattern.Name(value)
    except ValueError:
        raise InvalidArgument(field, f"unknown pattern number {value}") from None
    return Pattern[name.removeprefix("JOB_PATTERN_")]


def job_to_proto(job: Job) -> Any:
    """The wire form of a job; priority is always set, so readers see the value in force."""
    msg = pb.Job(
        name=job.name,
        hosts=list(job.hosts),
        pattern=pattern_to_proto(job.pattern),
        pairs=[pb.HostPair(src=src, dst=dst) for src, dst in job.pairs],
        match=_match_to_proto(job.match),
        priority=job.priority,
        description=job.description,
        version=job.version,
    )
    if job.demand_mbps is not None:
        msg.demand_mbps = job.demand_mbps
    return msg


def job_from_proto(msg: Any, *, field: str = "job") -> Job:
    """A :class:`Job` from its wire form (``version`` is output only and ignored)."""
    if not msg.HasField("match"):
        raise InvalidArgument(
            f"{field}.match", "required: the transport of the job's traffic (ip_proto, dst_ports)"
        )
    for key in _UNUSED_MATCH_FIELDS:
        if len(getattr(msg.match, key)):
            raise InvalidArgument(
                f"{field}.match.{key}",
                "not used by jobs: a job matches its own hosts by ip_proto and dst_ports",
            )
    return Job(
        name=msg.name,
        hosts=tuple(msg.hosts),
        pattern=pattern_from_proto(msg.pattern, field=f"{field}.pattern"),
        pairs=tuple((p.src, p.dst) for p in msg.pairs),
        match=_match_from_proto(msg.match, f"{field}.match"),
        demand_mbps=msg.demand_mbps if msg.HasField("demand_mbps") else None,
        priority=msg.priority if msg.HasField("priority") else DEFAULT_JOB_PRIORITY,
        description=msg.description,
    )


def proto_field(field: str) -> str:
    """A job field path as the message names it: ``pairs[3][1]`` -> ``pairs[3].dst``."""
    found = _PAIR_END.match(field)
    if not found:
        return field
    end = "src" if found.group(2) == "0" else "dst"
    return f"pairs[{found.group(1)}].{end}{field[found.end() :]}"


def pair_to_proto(pair: JobPairView) -> Any:
    return pb.JobPair(
        src=pair.src,
        dst=pair.dst,
        path=list(pair.path),
        demand_bps=pair.demand_bps,
        rate_bps=pair.rate_bps,
        placed=pair.placed,
        note=pair.note,
    )


def conflict_to_proto(conflict: JobConflictView) -> Any:
    return pb.JobConflict(
        policy=conflict.policy,
        policy_priority=conflict.policy_priority,
        job_wins=conflict.job_wins,
        pairs=conflict.pairs,
    )


def apply_job_result_to_proto(result: ApplyJobResult) -> Any:
    return pb.ApplyJobResponse(
        job=job_to_proto(result.job),
        created=result.created,
        dry_run=result.dry_run,
        pairs_total=len(result.pairs),
        pairs_placed=sum(1 for p in result.pairs if p.placed),
        pairs_moved=result.pairs_moved,
        max_utilization=result.max_utilization,
        changes=list(result.changes),
    )


def job_view_to_proto(view: JobView, *, start: int, size: int) -> Any:
    """GetJobResponse with pairs ``[start, start + size)``; the token names the next page."""
    end = min(len(view.pairs), start + size)
    return pb.GetJobResponse(
        job=job_to_proto(view.job),
        pairs=[pair_to_proto(p) for p in view.pairs[start:end]],
        # The version in the token lets the next call notice a job changed between pages.
        next_page_token=f"{view.job.version}:{end}" if end < len(view.pairs) else "",
        conflicts=[conflict_to_proto(c) for c in view.conflicts],
        max_utilization=view.max_utilization,
        pairs_total=len(view.pairs),
    )
