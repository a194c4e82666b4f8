"""What the API layer may ask of the controller about jobs, and the views it gets back.

:class:`JobsFacade` is the whole surface the job RPCs need, in the style of
:class:`controller.engine.views.FabricFacade`: reads answer from immutable
views, writes are carried into the hub and return once applied (or, for a dry
run, once the placement they would get is known). Errors are
:mod:`controller.errors` exceptions: :class:`InvalidArgument` naming fields
relative to the job (``hosts[2]``), :class:`NotFound`, :class:`AlreadyExists`,
:class:`VersionConflict` (with ``kind="job"``). Writes are atomic. The views
are frozen dataclasses any thread may read; this module holds no logic.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from controller.engine.views import ApplyJobResult, JobConflictView, JobPairView, JobView
from controller.jobs.model import Job

__all__ = ["JobPairView", "JobConflictView", "JobView", "ApplyJobResult", "JobsFacade"]


@runtime_checkable
class JobsFacade(Protocol):
    """Jobs over the API. The daemon's facade implements it next to FabricFacade."""

    def apply_job(
        self,
        job: Job,
        *,
        dry_run: bool = False,
        expected_version: int | None = None,
        timeout: float | None = None,
    ) -> ApplyJobResult:
        """Validate ``job`` (unknown hosts included), place its pairs jointly and store it.

        ``expected_version``: None = upsert; 0 = create only (AlreadyExists if
        present); n > 0 = replace only if the stored version is n (VersionConflict).
        Returns once the rules are installed (make-before-break), or with the
        placement it would get when ``dry_run``. ``timeout``: the caller's
        remaining deadline.
        """
        ...

    def get_job(self, name: str) -> JobView: ...

    def list_jobs(self) -> list[Job]:
        """Every stored job, sorted by name."""
        ...

    def delete_job(
        self, name: str, *, expected_version: int | None = None, timeout: float | None = None
    ) -> int:
        """Delete ``name``, remove every rule installed for it, return the deleted version."""
        ...
