"""The facade the API layer talks to, and its implementation over the engine.

:class:`FabricFacade` is the whole surface the gRPC service needs. Reads
answer from the latest views the publisher swapped in (any thread, no
locks); writes are carried into the hub thread through a :class:`Hub` (the
mailbox in the daemon), run there against the engine, and return once the
engine's output has been handed to the shim. ``timeout`` is the caller's
remaining deadline: a write either completes within it or is not done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from controller.cluster.status import ClusterStatusView
from controller.concurrency.eventbus import EventBus, Subscription
from controller.concurrency.mailbox import MailboxTimeout
from controller.engine.engine import FabricEngine
from controller.engine.outputs import EngineOutput, EventKind
from controller.engine.views import (
    ApplyJobResult,
    ApplyResult,
    DrainResult,
    FlowView,
    JobView,
    LinkView,
    PathExplanation,
    TopologyView,
)
from controller.errors import (
    DeadlineExceeded,
    FabricError,
    InvalidArgument,
    NotFound,
    Unavailable,
    VersionConflict,
)
from controller.fabric.model import FiveTuple
from controller.jobs.model import Job
from controller.observability.metrics import FabricMetrics
from controller.policy.model import Policy

__all__ = ["FabricFacade", "Hub", "Completed", "PublishedViews", "EngineFacade", "WRITE_TIMEOUT_S"]

T = TypeVar("T")

WRITE_TIMEOUT_S = 10.0  # the longest any write waits for the hub


class FabricFacade(Protocol):
    """Everything the API layer may ask of the controller.

    Errors are raised as :mod:`controller.errors` exceptions. Writes are
    atomic: they either fully apply or change nothing.
    """

    @property
    def events(self) -> EventBus: ...

    def ready(self) -> bool: ...

    def get_topology(self) -> TopologyView: ...

    def list_links(self) -> list[LinkView]: ...

    def list_flows(self, *, policy: str = "") -> list[FlowView]: ...

    def apply_policy(
        self,
        policy: Policy,
        *,
        dry_run: bool = False,
        expected_version: int | None = None,
        timeout: float | None = None,
    ) -> ApplyResult:
        """Create or replace ``policy``.

        ``expected_version``: None = upsert; 0 = create only (AlreadyExists if
        present); n > 0 = replace only if the stored version is n (VersionConflict).
        """
        ...

    def get_policy(self, name: str) -> Policy: ...

    def list_policies(self) -> list[Policy]: ...

    def delete_policy(
        self, name: str, *, expected_version: int | None = None, timeout: float | None = None
    ) -> int:
        """Delete and return the version that was deleted."""
        ...

    def drain_link(self, link: str, *, timeout: float | None = None) -> DrainResult:
        """``link``: "A-B" (all cables between switches A and B, both directions) or
        "A/p-B/q" (one cable). A and B are switch names or 16-hex-digit dpids."""
        ...

    def undrain_link(self, link: str, *, timeout: float | None = None) -> DrainResult: ...

    def explain_path(self, five_tuple: FiveTuple, *, dscp: int = 0) -> PathExplanation: ...

    def cluster_status(self) -> ClusterStatusView:
        """This node's role, the leader, the lease and the store's endpoints."""
        ...


class Completed:
    """What a write returns in the hub: the caller's answer and what the shim must send."""

    __slots__ = ("output", "result")

    def __init__(self, result: Any, output: EngineOutput) -> None:
        self.result = result
        self.output = output


class Hub(Protocol):
    """Runs work in the thread that owns the engine; the work returns :class:`Completed`."""

    def call(self, work: Callable[[], Completed], *, timeout: float) -> Any: ...


class Views(Protocol):
    @property
    def topology(self) -> TopologyView: ...

    @property
    def flows(self) -> Sequence[FlowView]: ...

    @property
    def policies(self) -> tuple[Policy, ...]: ...

    @property
    def jobs(self) -> tuple[JobView, ...]: ...


class PublishedViews(Protocol):
    """Where the hub publishes immutable views (the publisher)."""

    @property
    def views(self) -> Views: ...

    @property
    def ready(self) -> bool: ...

    @property
    def bus(self) -> EventBus: ...


class EngineFacade:
    def __init__(
        self,
        *,
        engine: FabricEngine,
        hub: Hub,
        publisher: PublishedViews,
        mono: Callable[[], float],
        metrics: FabricMetrics,
        cluster: Callable[[], ClusterStatusView] | None = None,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._publisher = publisher
        self._mono = mono
        self._metrics = metrics
        self._write_timeout_s = write_timeout_s
        self._cluster = cluster

    # ------------------------------------------------------------- reads
    @property
    def events(self) -> EventBus:
        return self._publisher.bus

    def ready(self) -> bool:
        return self._publisher.ready

    def get_topology(self) -> TopologyView:
        return self._publisher.views.topology

    def list_links(self) -> list[LinkView]:
        return list(self._publisher.views.topology.links)

    def list_flows(self, *, policy: str = "") -> list[FlowView]:
        return [f for f in self._publisher.views.flows if not policy or f.policy == policy]

    def get_policy(self, name: str) -> Policy:
        for policy in self._publisher.views.policies:
            if policy.name == name:
                return policy
        raise NotFound("policy", name)

    def list_policies(self) -> list[Policy]:
        return sorted(self._publisher.views.policies, key=lambda p: p.name)

    # ------------------------------------------------------------ writes
    def _write(self, work: Callable[[], tuple[T, EngineOutput]], timeout: float | None) -> T:
        limit = self._write_timeout_s if timeout is None else min(timeout, self._write_timeout_s)

        def in_hub() -> Completed:
            result, out = work()
            return Completed(result, out)

        try:
            result: T = self._hub.call(in_hub, timeout=max(0.0, limit))
        except MailboxTimeout as exc:
            if timeout is not None and timeout <= self._write_timeout_s:
                raise DeadlineExceeded(f"deadline exceeded; nothing was changed ({exc})") from None
            raise
        return result

    def apply_policy(
        self,
        policy: Policy,
        *,
        dry_run: bool = False,
        expected_version: int | None = None,
        timeout: float | None = None,
    ) -> ApplyResult:
        engine, mono = self._engine, self._mono
        try:
            result = self._write(
                lambda: engine.apply_policy(
                    policy, dry_run=dry_run, expected_version=expected_version, now=mono()
                ),
                timeout,
            )
        except InvalidArgument:
            self._metrics.policy_applies.labels(result="invalid").inc()
            raise
        except VersionConflict:
            self._metrics.policy_applies.labels(result="conflict").inc()
            raise
        except FabricError:
            self._metrics.policy_applies.labels(result="rejected").inc()
            raise
        self._metrics.policy_applies.labels(result="dry-run" if dry_run else "applied").inc()
        return result

    def delete_policy(
        self, name: str, *, expected_version: int | None = None, timeout: float | None = None
    ) -> int:
        engine, mono = self._engine, self._mono
        return self._write(
            lambda: engine.delete_policy(name, expected_version=expected_version, now=mono()),
            timeout,
        )

    def drain_link(self, link: str, *, timeout: float | None = None) -> DrainResult:
        engine, mono = self._engine, self._mono
        return self._write(lambda: engine.drain(link, drained=True, now=mono()), timeout)

    def undrain_link(self, link: str, *, timeout: float | None = None) -> DrainResult:
        engine, mono = self._engine, self._mono
        return self._write(lambda: engine.drain(link, drained=False, now=mono()), timeout)

    def catch_up(self, *, timeout: float) -> None:
        """Views of this node follow the shared store before returning (a standby
        after relaying a write; nothing to do on a leader or a single node)."""
        engine, mono = self._engine, self._mono
        self._hub.call(lambda: Completed(None, engine.follow_store(now=mono())), timeout=timeout)

    def cluster_status(self) -> ClusterStatusView:
        if self._cluster is None:
            return ClusterStatusView(mode="single", role="single")
        return self._cluster()

    # -------------------------------------------------------------- jobs
    def list_jobs(self) -> list[Job]:
        return sorted((v.job for v in self._publisher.views.jobs), key=lambda j: j.name)

    def get_job(self, name: str) -> JobView:
        for view in self._publisher.views.jobs:
            if view.job.name == name:
                return view
        raise NotFound("job", name)

    def apply_job(
        self,
        job: Job,
        *,
        dry_run: bool = False,
        expected_version: int | None = None,
        timeout: float | None = None,
    ) -> ApplyJobResult:
        """Returns once the switches confirmed the job's rules (not only queued them)."""
        engine, mono = self._engine, self._mono
        limit = self._write_timeout_s if timeout is None else timeout
        started = mono()
        kinds = frozenset({EventKind.JOB_PLACED, EventKind.JOB_REPLACED})
        with self._publisher.bus.subscribe(kinds=kinds, max_queue=4096) as sub:
            result: ApplyJobResult = self._write(
                lambda: engine.apply_job(
                    job, dry_run=dry_run, expected_version=expected_version, now=mono()
                ),
                timeout,
            )
            if not dry_run:
                self._await_placed(sub, result.job, deadline=started + limit)
        return result

    def _await_placed(self, sub: Subscription, job: Job, *, deadline: float) -> None:
        version = str(job.version)
        while True:
            left = deadline - self._mono()
            if left <= 0:
                raise Unavailable(
                    f"job {job.name!r} is stored (version {version}) but its rules were not "
                    "confirmed by the switches in time; they are still being installed"
                )
            record = sub.get(timeout=min(left, 0.5))
            if (
                record is not None
                and record.subject == job.name
                and dict(record.attributes).get("version") == version
            ):
                return

    def delete_job(
        self, name: str, *, expected_version: int | None = None, timeout: float | None = None
    ) -> int:
        engine, mono = self._engine, self._mono
        return self._write(
            lambda: engine.delete_job(name, expected_version=expected_version, now=mono()),
            timeout,
        )

    def explain_path(self, five_tuple: FiveTuple, *, dscp: int = 0) -> PathExplanation:
        engine, mono = self._engine, self._mono

        def work() -> tuple[PathExplanation, EngineOutput]:
            return engine.explain(five_tuple, dscp=dscp, now=mono()), EngineOutput()

        return self._write(work, None)
