"""The ``fabric.v1.FabricController`` servicer: a thin adapter over :class:`FabricFacade`.

Each handler checks request limits, converts the request, calls the facade
and converts the answer back. Domain errors become canonical status codes
(INVALID_ARGUMENT carries a ``google.rpc.BadRequest`` detail naming the
field); anything else is a bug and becomes INTERNAL with a logged traceback,
which a client's mistake must never cause. Handlers run in gRPC worker threads:
they must not touch controller state except through the facade, and
WatchEvents must never make the publisher wait for a slow reader.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from controller import errors
from controller.api import convert
from controller.api.facade import FabricFacade
from controller.api.jobs_facade import JobsFacade
from controller.api.limits import check_limits, check_name
from controller.api.paging import paginate
from controller.api.service_jobs import JobsServicerMixin
from controller.concurrency.eventbus import SubscriptionDropped
from controller.policy.limits import MAX_POLICIES

__all__ = ["FabricControllerServicer", "TooManyWatchers", "abort_for"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# How long a watcher blocks before re-checking that its client is still there.
_WATCH_POLL_S = 0.25
# Replay at most this many recent events when a watcher does not ask for live only.
_WATCH_REPLAY = 256
# Room left in a list response for everything but its items (token, framing).
_LIST_HEADROOM_BYTES = 4096

_SIMPLE_CODES: tuple[tuple[type[errors.FabricError], grpc.StatusCode], ...] = (
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.VersionConflict, grpc.StatusCode.ABORTED),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
)


class TooManyWatchers(errors.FabricError):
    """Every watcher slot is taken; the client may retry later."""


def abort_for(context: Any, exc: errors.FabricError) -> NoReturn:
    """End the RPC with the status code that matches ``exc``."""
    if isinstance(exc, errors.InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=exc.field, description=exc.reason
        )
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        status = status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message=str(exc), details=[detail]
        )
        context.abort_with_status(rpc_status.to_status(status))
    if isinstance(exc, TooManyWatchers):
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    for kind, code in _SIMPLE_CODES:
        if isinstance(exc, kind):
            context.abort(code, str(exc))
    context.abort(grpc.StatusCode.UNKNOWN, str(exc))
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def _prefixed(exc: errors.InvalidArgument, prefix: str) -> errors.InvalidArgument:
    """Facade errors name fields relative to the policy; the client sent ``policy.*``."""
    if not exc.field or exc.field.startswith(prefix):
        return exc
    return errors.InvalidArgument(f"{prefix}{exc.field}", exc.reason)


class FabricControllerServicer(JobsServicerMixin, fabric_pb2_grpc.FabricControllerServicer):  # type: ignore[misc]
    """Serves ``fabric.v1.FabricController`` from a :class:`FabricFacade`.

    Job RPCs go to ``jobs``, or to ``facade`` itself when it implements
    :class:`JobsFacade`; without either they answer UNIMPLEMENTED.
    """

    def __init__(
        self,
        facade: FabricFacade,
        *,
        watch_queue: int = 1024,
        max_watchers: int = 16,
        max_response_bytes: int = 4 * 1024 * 1024,
        jobs: JobsFacade | None = None,
    ) -> None:
        if watch_queue < 1 or max_watchers < 1:
            raise ValueError("watch_queue and max_watchers must be >= 1")
        self._facade = facade
        # List pages stay under the transport's limit, so no client ever gets
        # RESOURCE_EXHAUSTED for a list that merely grew.
        self._page_bytes = max(1, max_response_bytes - _LIST_HEADROOM_BYTES)
        self._jobs = (
            jobs if jobs is not None else (facade if isinstance(facade, JobsFacade) else None)
        )
        self._watch_queue = watch_queue
        self._max_watchers = max_watchers
        self._watchers = 0
        self._watchers_lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
    def _call(self, context: Any, method: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except errors.FabricError as exc:
            # A client's mistake or a transient state: no traceback in the log.
            log.info("%s rejected: %s: %s", method, type(exc).__name__, exc)
            abort_for(context, exc)
        except Exception:
            log.exception("%s failed with an unexpected error", method)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the log")
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    # ------------------------------------------------------------------ reads
    def GetTopology(self, request: Any, context: Any) -> Any:
        return self._call(
            context,
            "GetTopology",
            lambda: convert.topology_to_proto(self._facade.get_topology()),
        )

    def ListLinks(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            links = self._facade.list_links()
            return pb.ListLinksResponse(links=[convert.link_to_proto(lk) for lk in links])

        return self._call(context, "ListLinks", run)

    def ListFlows(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            check_name(request.policy, field="policy", required=False)
            flows = self._facade.list_flows(policy=request.policy)
            return pb.ListFlowsResponse(flows=[convert.flow_to_proto(f) for f in flows])

        return self._call(context, "ListFlows", run)

    def GetPolicy(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            check_name(request.name, field="name")
            policy = self._facade.get_policy(request.name)
            return pb.GetPolicyResponse(policy=convert.policy_to_proto(policy))

        return self._call(context, "GetPolicy", run)

    def ListPolicies(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            check_limits(request)
            page, token = paginate(
                self._facade.list_policies(),
                key=lambda p: p.name,
                encode=convert.policy_to_proto,
                size=lambda m: int(m.ByteSize()),
                page_size=request.page_size,
                page_token=request.page_token,
                max_page=MAX_POLICIES,
                max_bytes=self._page_bytes,
            )
            return pb.ListPoliciesResponse(policies=page, next_page_token=token)

        return self._call(context, "ListPolicies", run)

    def GetClusterStatus(self, request: Any, context: Any) -> Any:
        return self._call(
            context,
            "GetClusterStatus",
            lambda: convert.cluster_status_to_proto(self._facade.cluster_status()),
        )

    def ExplainPath(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            check_limits(request)
            if not request.HasField("five_tuple"):
                raise errors.InvalidArgument("five_tuple", "required")
            five_tuple = convert.five_tuple_from_proto(request.five_tuple, field="five_tuple")
            dscp = convert.check_dscp(request.dscp, field="dscp")
            explanation = self._facade.explain_path(five_tuple, dscp=dscp)
            return convert.explanation_to_proto(explanation)

        return self._call(context, "ExplainPath", run)

    # ------------------------------------------------------------------ writes
    def ApplyPolicy(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            if not request.HasField("policy"):
                raise errors.InvalidArgument("policy", "required")
            # The name first: its limit (63) is tighter than other strings' (256).
            check_name(request.policy.name, field="policy.name")
            check_limits(request)
            policy = convert.policy_from_proto(request.policy, field="policy")
            expected = request.expected_version if request.HasField("expected_version") else None
            if expected is not None and expected < 0:
                raise errors.InvalidArgument("expected_version", f"must be >= 0, got {expected}")
            try:
                result = self._facade.apply_policy(
                    policy,
                    dry_run=request.dry_run,
                    expected_version=expected,
                    timeout=context.time_remaining(),
                )
            except errors.InvalidArgument as exc:
                raise _prefixed(exc, "policy.") from None
            return convert.apply_result_to_proto(result)

        return self._call(context, "ApplyPolicy", run)

    def DeletePolicy(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            check_name(request.name, field="name")
            expected = request.expected_version if request.HasField("expected_version") else None
            if expected is not None and expected < 1:
                raise errors.InvalidArgument(
                    "expected_version", f"a stored policy has version >= 1, got {expected}"
                )
            deleted = self._facade.delete_policy(
                request.name, expected_version=expected, timeout=context.time_remaining()
            )
            return pb.DeletePolicyResponse(deleted_version=deleted)

        return self._call(context, "DeletePolicy", run)

    def _link_request(self, request: Any) -> str:
        check_limits(request)
        if not request.link.strip():
            raise errors.InvalidArgument("link", 'required: "A-B" or "A/p-B/q"')
        return str(request.link.strip())

    def DrainLink(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            link = self._link_request(request)
            result = self._facade.drain_link(link, timeout=context.time_remaining())
            return pb.DrainLinkResponse(**convert.drain_result_links(result))

        return self._call(context, "DrainLink", run)

    def UndrainLink(self, request: Any, context: Any) -> Any:
        def run() -> Any:
            link = self._link_request(request)
            result = self._facade.undrain_link(link, timeout=context.time_remaining())
            return pb.UndrainLinkResponse(**convert.drain_result_links(result))

        return self._call(context, "UndrainLink", run)

    # ------------------------------------------------------------------ events
    def _reserve_watcher(self) -> bool:
        # Each open stream holds a worker thread; capping watchers keeps
        # threads free for the unary calls operators need during an incident.
        with self._watchers_lock:
            if self._watchers >= self._max_watchers:
                return False
            self._watchers += 1
            return True

    def _release_watcher(self) -> None:
        with self._watchers_lock:
            self._watchers -= 1

    def WatchEvents(self, request: Any, context: Any) -> Iterator[Any]:
        def setup() -> Any:
            check_limits(request)
            kinds = frozenset(
                convert.event_kind_from_proto(k, field=f"kinds[{i}]")
                for i, k in enumerate(request.kinds)
            )
            if not self._reserve_watcher():
                raise TooManyWatchers(
                    f"too many watchers: at most {self._max_watchers} streams may be open"
                )
            try:
                return self._facade.events.subscribe(
                    kinds=kinds or None,
                    max_queue=self._watch_queue,
                    # Half the queue at most, so a replay alone never cuts a watcher off.
                    replay=0 if request.live_only else min(_WATCH_REPLAY, self._watch_queue // 2),
                )
            except BaseException:
                self._release_watcher()
                raise

        sub = self._call(context, "WatchEvents", setup)
        dropped = False
        try:
            while context.is_active():
                try:
                    record = sub.get(timeout=_WATCH_POLL_S)
                except SubscriptionDropped:
                    dropped = True
                    break
                if record is not None:
                    # Blocks while the client's flow-control window is full;
                    # meanwhile the bounded queue, not the publisher, absorbs events.
                    yield pb.WatchEventsResponse(event=convert.event_to_proto(record))
        finally:
            sub.close()
            self._release_watcher()
        if dropped:
            log.info("a watcher was cut off after %d queued events", self._watch_queue)
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"watcher too slow: more than {self._watch_queue} events queued",
            )
