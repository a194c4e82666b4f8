"""Jobs and their placements in the store.

A job document is the job as the scheduler declared it (its version is the
store revision of its last write). A plan document (kind ``jobplan``, same
name) records where the engine put each pair, so a restarted or newly
elected controller keeps the placement instead of solving again from
nothing. Plans are engine bookkeeping, written after every re-placement;
they carry no meaning for clients.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from controller.fabric.model import LinkId, Path, PortRef
from controller.jobs.model import HostPair, Job
from controller.jobs.parse import job_from_dict, job_to_dict
from controller.jobs.validate import validate_job
from controller.store.documents import DocumentStore
from controller.store.views import Codec, TypedView

__all__ = ["JOB_CODEC", "JobStore", "JobPlan", "PlanStore"]


def _job_body(job: Job) -> dict[str, Any]:
    return job_to_dict(replace(job, version=0))


def _job_from_body(body: dict[str, Any]) -> Job:
    return job_from_dict(body, validate=False)


JOB_CODEC: Codec[Job] = Codec(
    kind="job",
    name_of=lambda j: j.name,
    to_body=_job_body,
    from_body=_job_from_body,
    with_version=lambda j, version: replace(j, version=version),
    check=validate_job,
)


class JobStore(TypedView[Job]):
    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store, JOB_CODEC)


@dataclass(frozen=True)
class JobPlan:
    """Where each pair of job ``name`` runs (pairs absent: not placed)."""

    name: str
    paths: tuple[tuple[HostPair, Path], ...] = ()


def _path_body(path: Path) -> dict[str, Any]:
    if not path.links:
        return {"switch": path.switches[0]}
    return {"links": [[k.src.dpid, k.src.port, k.dst.dpid, k.dst.port] for k in path.links]}


def _path_from_body(body: dict[str, Any]) -> Path:
    if "switch" in body:
        return Path(switches=(int(body["switch"]),))
    links = tuple(
        LinkId(PortRef(int(a), int(b)), PortRef(int(c), int(d))) for a, b, c, d in body["links"]
    )
    return Path.of_links(links)


def _plan_body(plan: JobPlan) -> dict[str, Any]:
    return {"pairs": [[src, dst, _path_body(path)] for (src, dst), path in plan.paths]}


def _plan_from_body(name: str, body: dict[str, Any]) -> JobPlan:
    pairs = tuple(((str(src), str(dst)), _path_from_body(path)) for src, dst, path in body["pairs"])
    return JobPlan(name, pairs)


class PlanStore:
    """Job plans, one document per job (written whole: plans are rewritten, not patched)."""

    KIND = "jobplan"

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def list(self) -> list[JobPlan]:
        return [_plan_from_body(d.name, d.body) for d in self.store.list(self.KIND)]

    def put(self, plan: JobPlan) -> None:
        self.store.put(self.KIND, plan.name, _plan_body(plan))

    def delete(self, name: str) -> None:
        self.store.batch(deletes=[(self.KIND, name)])
