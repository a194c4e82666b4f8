"""A small typed Python client of the ``fabric.v1`` API, used by ``fabricctl`` and tests.

Every unary call carries a deadline (the client's ``timeout``) and, when a
token is configured, the bearer token. Calls return proto messages or plain
values and raise ``grpc.RpcError`` unchanged, so callers see the server's
status code. This module holds no controller logic and converts nothing but
model policies to their wire form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc

from controller.api import convert
from controller.engine.outputs import EventKind
from controller.fabric.model import FiveTuple
from controller.policy.model import Policy

__all__ = ["FabricClient", "EventStream", "ApiContractError"]

# A listing of more pages than this is a server that never ends it.
_MAX_PAGES = 100_000


class ApiContractError(Exception):
    """The server answered against the API's contract (e.g. a paging loop)."""


class EventStream:
    """An open WatchEvents stream: iterate for events, ``cancel()`` to end it."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[Any]:
        for response in self._call:
            yield response.event

    def cancel(self) -> None:
        self._call.cancel()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class FabricClient:
    """Client of ``fabric.v1.FabricController``; use as a context manager to close the channel."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 5.0,
        token: str | None = None,
        tls_ca: Path | None = None,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.target = target
        self.timeout = timeout
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if tls_ca is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stub = fabric_pb2_grpc.FabricControllerStub(self._channel)

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> FabricClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _unary(self, method: str, request: Any) -> Any:
        return getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)

    # ------------------------------------------------------------------ reads
    def get_topology(self) -> Any:
        """The GetTopologyResponse (switches, links, hosts)."""
        return self._unary("GetTopology", pb.GetTopologyRequest())

    def list_links(self) -> list[Any]:
        return list(self._unary("ListLinks", pb.ListLinksRequest()).links)

    def list_flows(self, *, policy: str = "") -> list[Any]:
        return list(self._unary("ListFlows", pb.ListFlowsRequest(policy=policy)).flows)

    def get_policy(self, name: str) -> Any:
        return self._unary("GetPolicy", pb.GetPolicyRequest(name=name)).policy

    def list_policies_page(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Any], str]:
        """One page of policies by name, and the token of the next ("" when complete)."""
        resp = self._unary(
            "ListPolicies", pb.ListPoliciesRequest(page_size=page_size, page_token=page_token)
        )
        return list(resp.policies), str(resp.next_page_token)

    def list_policies(self, *, page_size: int = 0) -> list[Any]:
        """Every policy by name, fetched page by page (each call has its own deadline)."""
        policies: list[Any] = []
        token = ""
        for _ in range(_MAX_PAGES):
            page, next_token = self.list_policies_page(page_size=page_size, page_token=token)
            policies += page
            if not next_token:
                return policies
            if next_token == token or not page:
                raise ApiContractError(f"ListPolicies did not advance past page token {token!r}")
            token = next_token
        raise ApiContractError(f"ListPolicies did not end after {_MAX_PAGES} pages")

    def explain_path(self, five_tuple: FiveTuple | Any, *, dscp: int = 0) -> Any:
        """The ExplainPathResponse for a model or proto 5-tuple."""
        if isinstance(five_tuple, FiveTuple):
            five_tuple = convert.five_tuple_to_proto(five_tuple)
        return self._unary("ExplainPath", pb.ExplainPathRequest(five_tuple=five_tuple, dscp=dscp))

    # ------------------------------------------------------------------ writes
    def apply_policy(
        self,
        policy: Policy | Any,
        *,
        dry_run: bool = False,
        expected_version: int | None = None,
    ) -> Any:
        """Apply a model or proto policy; returns the ApplyPolicyResponse."""
        if isinstance(policy, Policy):
            policy = convert.policy_to_proto(policy)
        request = pb.ApplyPolicyRequest(policy=policy, dry_run=dry_run)
        if expected_version is not None:
            request.expected_version = expected_version
        return self._unary("ApplyPolicy", request)

    def delete_policy(self, name: str, *, expected_version: int | None = None) -> int:
        """Delete a policy; returns the version that was deleted."""
        request = pb.DeletePolicyRequest(name=name)
        if expected_version is not None:
            request.expected_version = expected_version
        return int(self._unary("DeletePolicy", request).deleted_version)

    def drain_link(self, link: str) -> Any:
        return self._unary("DrainLink", pb.DrainLinkRequest(link=link))

    def undrain_link(self, link: str) -> Any:
        return self._unary("UndrainLink", pb.UndrainLinkRequest(link=link))

    # ------------------------------------------------------------------ jobs
    def apply_job(
        self, job: Any, *, dry_run: bool = False, expected_version: int | None = None
    ) -> Any:
        """Apply a proto Job; returns the ApplyJobResponse."""
        request = pb.ApplyJobRequest(job=job, dry_run=dry_run)
        if expected_version is not None:
            request.expected_version = expected_version
        return self._unary("ApplyJob", request)

    def get_job(self, name: str, *, page_size: int = 0) -> Any:
        """The GetJobResponse with every pair: the pages are fetched and joined."""
        request = pb.GetJobRequest(name=name, page_size=page_size)
        first = self._unary("GetJob", request)
        page = first
        while page.next_page_token:
            request.page_token = page.next_page_token
            page = self._unary("GetJob", request)
            first.pairs.extend(page.pairs)
        first.next_page_token = ""
        return first

    def cluster_status(self) -> Any:
        """The GetClusterStatusResponse of the node this client talks to."""
        return self._unary("GetClusterStatus", pb.GetClusterStatusRequest())

    def list_jobs(self) -> list[Any]:
        return list(self._unary("ListJobs", pb.ListJobsRequest()).jobs)

    def delete_job(self, name: str, *, expected_version: int | None = None) -> int:
        """Delete a job; returns the version that was deleted."""
        request = pb.DeleteJobRequest(name=name)
        if expected_version is not None:
            request.expected_version = expected_version
        return int(self._unary("DeleteJob", request).deleted_version)

    # ------------------------------------------------------------------ events
    def watch_events(
        self,
        *,
        kinds: Iterable[EventKind] = (),
        live_only: bool = False,
        timeout: float | None = None,
    ) -> EventStream:
        """Open an event stream. It has no deadline unless ``timeout`` is given:
        a watch is meant to run until cancelled."""
        request = pb.WatchEventsRequest(
            kinds=[convert.event_kind_to_proto(k) for k in kinds], live_only=live_only
        )
        call = self._stub.WatchEvents(request, timeout=timeout, metadata=self._metadata)
        return EventStream(call)
