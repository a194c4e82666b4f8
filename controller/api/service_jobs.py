"""The job RPCs of the ``fabric.v1.FabricController`` servicer, over :class:`JobsFacade`.

A mixin of :class:`controller.api.service.FabricControllerServicer`: each
handler checks request limits, converts the request, calls the jobs facade
and converts the answer, with the same error mapping as the policy RPCs
(INVALID_ARGUMENT naming ``job.hosts[2]``, NOT_FOUND, ALREADY_EXISTS,
ABORTED). A job may list far more hosts than the generic 64-entry list limit,
so its hosts and pairs are counted against the job limits instead. With no
jobs facade the RPCs answer UNIMPLEMENTED. Handlers run in gRPC worker
threads and touch nothing but the facade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from fabric.v1 import fabric_pb2 as pb

from controller import errors
from controller.api import convert_jobs
from controller.api.jobs_facade import JobsFacade
from controller.api.limits import MAX_NAME_CHARS, check_limits, check_name
from controller.jobs.validate import MAX_JOB_HOSTS, MAX_JOB_PAIRS

__all__ = ["JobsServicerMixin", "MAX_PAGE_SIZE", "DEFAULT_PAGE_SIZE"]

_T = TypeVar("_T")
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10000
_MAX_HOST_CHARS = 64  # far above any dotted quad; bounds what error messages echo


def _check_job_limits(msg: Any) -> None:
    """The generic limits on everything but hosts and pairs, which have job limits."""
    rest = pb.Job()
    rest.CopyFrom(msg)
    del rest.hosts[:]
    del rest.pairs[:]
    check_limits(rest, prefix="job.")
    if len(msg.hosts) > MAX_JOB_HOSTS:
        raise errors.InvalidArgument(
            "job.hosts", f"must have at most {MAX_JOB_HOSTS} entries, got {len(msg.hosts)}"
        )
    if len(msg.pairs) > MAX_JOB_PAIRS:
        raise errors.InvalidArgument(
            "job.pairs", f"must have at most {MAX_JOB_PAIRS} entries, got {len(msg.pairs)}"
        )
    texts = [(f"job.hosts[{i}]", h) for i, h in enumerate(msg.hosts)]
    for i, p in enumerate(msg.pairs):
        texts += [(f"job.pairs[{i}].src", p.src), (f"job.pairs[{i}].dst", p.dst)]
    for field, text in texts:
        if len(text) > _MAX_HOST_CHARS:
            raise errors.InvalidArgument(
                field, f"must be at most {_MAX_HOST_CHARS} characters, got {len(text)}"
            )


def _in_job(exc: errors.InvalidArgument) -> errors.InvalidArgument:
    """Facade errors name fields relative to the job; the client sent ``job.*``."""
    if exc.field.startswith("job.") or exc.field == "expected_version":
        return exc
    field = convert_jobs.proto_field(exc.field)
    return errors.InvalidArgument(f"job.{field}" if field else "job", exc.reason)


def _expected(request: Any, *, least: int) -> int | None:
    if not request.HasField("expected_version"):
        return None
    value = int(request.expected_version)
    if value < least:
        raise errors.InvalidArgument("expected_version", f"must be >= {least}, got {value}")
    return value


def _page(request: Any, version: int, total: int) -> tuple[int, int]:
    """(first pair, page size) of a GetJob request; tokens are "version:offset"."""
    size = request.page_size or DEFAULT_PAGE_SIZE
    if size > MAX_PAGE_SIZE:
        raise errors.InvalidArgument("page_size", f"must be at most {MAX_PAGE_SIZE}, got {size}")
    if not request.page_token:
        return 0, size
    token_version, sep, offset = request.page_token.partition(":")
    if not sep or not token_version.isdigit() or not offset.isdigit() or int(offset) > total:
        raise errors.InvalidArgument("page_token", "not a token this controller returned")
    if int(token_version) != version:
        raise errors.FailedPrecondition(
            f"job changed since the first page (version {token_version} -> {version}); "
            "start again without page_token"
        )
    return int(offset), size


class JobsServicerMixin:
    """ApplyJob, GetJob, ListJobs and DeleteJob for a servicer that sets ``_jobs``."""

    _jobs: JobsFacade | None

    def _call(self, context: Any, method: str, fn: Callable[[], _T]) -> _T:
        raise NotImplementedError  # provided by the servicer this is mixed into

    def _jobs_facade(self, context: Any) -> JobsFacade:
        if self._jobs is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this controller does not serve jobs")
        assert self._jobs is not None
        return self._jobs

    def ApplyJob(self, request: Any, context: Any) -> Any:
        jobs = self._jobs_facade(context)

        def run() -> Any:
            if not request.HasField("job"):
                raise errors.InvalidArgument("job", "required")
            check_name(request.job.name, field="job.name")
            _check_job_limits(request.job)
            job = convert_jobs.job_from_proto(request.job, field="job")
            expected = _expected(request, least=0)
            try:
                result = jobs.apply_job(
                    job,
                    dry_run=request.dry_run,
                    expected_version=expected,
                    timeout=context.time_remaining(),
                )
            except errors.InvalidArgument as exc:
                raise _in_job(exc) from None
            return convert_jobs.apply_job_result_to_proto(result)

        return self._call(context, "ApplyJob", run)

    def GetJob(self, request: Any, context: Any) -> Any:
        jobs = self._jobs_facade(context)

        def run() -> Any:
            check_name(request.name, field="name")
            if len(request.page_token) > MAX_NAME_CHARS:
                raise errors.InvalidArgument("page_token", "not a token this controller returned")
            view = jobs.get_job(request.name)
            start, size = _page(request, view.job.version, len(view.pairs))
            return convert_jobs.job_view_to_proto(view, start=start, size=size)

        return self._call(context, "GetJob", run)

    def ListJobs(self, request: Any, context: Any) -> Any:
        jobs = self._jobs_facade(context)

        def run() -> Any:
            return pb.ListJobsResponse(
                jobs=[convert_jobs.job_to_proto(j) for j in jobs.list_jobs()]
            )

        return self._call(context, "ListJobs", run)

    def DeleteJob(self, request: Any, context: Any) -> Any:
        jobs = self._jobs_facade(context)

        def run() -> Any:
            check_name(request.name, field="name")
            expected = _expected(request, least=1)
            deleted = jobs.delete_job(
                request.name, expected_version=expected, timeout=context.time_remaining()
            )
            return pb.DeleteJobResponse(deleted_version=deleted)

        return self._call(context, "DeleteJob", run)
