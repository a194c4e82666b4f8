"""A small etcd v3 client over etcd's HTTP/JSON gateway, with endpoint failover.

Why not a library: the gRPC client ``etcd3`` 0.12 does not import with
protobuf >= 4 (this project needs protobuf 5); its fork blacklists an
endpoint for 300 s after one timeout (during an etcd leader change every
endpoint times out once, and the client then refuses to talk at all); and
``etcd3gw`` speaks to one endpoint only, drops watch errors in a thread
pool (a watch whose member died stops silently, so a standby would stop
following the leader without a word) and pulls in requests, futurist and pbr.
What fabricd needs - range, transactions, leases, one watch, health - is a
dozen JSON POSTs, so this module speaks them with the standard library and
adds what the libraries lack: every call has a deadline and moves on to the
next endpoint when one is down (never blacklisting), a write whose outcome
is unknown (sent, then timed out) is reported as such rather than blindly
retried, and a watch resumes on another member from the next revision.
It must not know what the keys mean: :mod:`controller.store.etcd` and
:mod:`controller.cluster` do.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from controller.store.etcdwatch import EtcdWatch
from controller.store.etcdwire import (
    DEADLINE,
    NOT_APPLIED,
    UNAVAILABLE,
    EndpointHealth,
    EtcdCompacted,
    EtcdError,
    EtcdOutcomeUnknown,
    EtcdUnavailable,
    KeyValue,
    NotSent,
    WatchEvent,
    b64,
    json_answer,
    parse_endpoints,
    post,
    prefix_end,
    why,
)

__all__ = [
    "EtcdClient",
    "EtcdError",
    "EtcdUnavailable",
    "EtcdOutcomeUnknown",
    "EtcdCompacted",
    "KeyValue",
    "WatchEvent",
    "EtcdWatch",
    "EndpointHealth",
    "b64",
    "prefix_end",
    "parse_endpoints",
]


class EtcdClient:
    """Calls to any of ``endpoints``; thread-safe (one connection per call).

    ``timeout`` bounds a whole call across endpoints; one endpoint gets at most
    ``attempt_timeout`` of it, so a black-holed member leaves time for the next.
    """

    def __init__(
        self, endpoints: str | Sequence[str], *, timeout: float = 3.0, attempt_timeout: float = 1.0
    ) -> None:
        self.endpoints = parse_endpoints(endpoints)
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self._preferred = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        return ",".join(self.endpoints)

    # ------------------------------------------------------------------ transport

    def _order(self) -> list[str]:
        with self._lock:
            first = self._preferred
        n = len(self.endpoints)
        return [self.endpoints[(first + i) % n] for i in range(n)]

    def _prefer(self, endpoint: str) -> None:
        with self._lock:
            self._preferred = self.endpoints.index(endpoint)

    def call(
        self,
        path: str,
        body: dict[str, Any],
        *,
        timeout: float | None = None,
        retry_ambiguous: bool = True,
    ) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>`` on the first endpoint that serves it.

        ``retry_ambiguous=False`` is for writes that must not be applied twice:
        when one was sent but not answered, :class:`EtcdOutcomeUnknown` is raised
        instead of trying the next endpoint.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        problems: dict[str, str] = {}
        while True:
            for endpoint in self._order():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    status, raw = post(
                        endpoint, f"/v3/{path}", body, min(remaining, self.attempt_timeout)
                    )
                except NotSent as exc:
                    problems[endpoint] = str(exc)
                    continue
                except (OSError, http.client.HTTPException) as exc:
                    if not retry_ambiguous:
                        raise EtcdOutcomeUnknown(
                            f"etcd at {endpoint} did not answer a write in time ({why(exc)}); "
                            "it may or may not have been applied"
                        ) from None
                    problems[endpoint] = why(exc)
                    continue
                answer = json_answer(raw)
                if status == 200:
                    self._prefer(endpoint)
                    return answer
                message = str(answer.get("message") or answer.get("error") or raw[:200])
                code = int(answer.get("code", 0))
                if any(text in message for text in NOT_APPLIED):
                    problems[endpoint] = message
                    continue
                if code in (UNAVAILABLE, DEADLINE) or status >= 500:
                    if not retry_ambiguous:
                        raise EtcdOutcomeUnknown(
                            f"etcd at {endpoint}: {message}; the write may or may not have "
                            "been applied"
                        )
                    problems[endpoint] = message
                    continue
                if "compacted" in message:
                    raise EtcdCompacted(f"etcd at {endpoint}: {message}", code=code)
                raise EtcdError(f"etcd at {endpoint}: {message}", code=code)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)  # every member refused at once (e.g. an election): try again
        shown = "; ".join(f"{e}: {p}" for e, p in problems.items()) or "no time left"
        raise EtcdUnavailable(f"no etcd endpoint answered ({shown})")

    # ------------------------------------------------------------------ KV

    def range(
        self,
        key: str,
        range_end: str | None = None,
        *,
        revision: int = 0,
        count_only: bool = False,
        timeout: float | None = None,
    ) -> tuple[list[KeyValue], int]:
        """The key (or range) as (key-values, header revision); linearizable."""
        body: dict[str, Any] = {"key": b64(key)}
        if range_end is not None:
            body["range_end"] = b64(range_end)
        if revision:
            body["revision"] = str(revision)
        if count_only:
            body["count_only"] = True
        answer = self.call("kv/range", body, timeout=timeout)
        kvs = [KeyValue.from_json(kv) for kv in answer.get("kvs", [])]
        return kvs, int(answer["header"]["revision"])

    def txn(
        self,
        compare: list[dict[str, Any]],
        success: list[dict[str, Any]],
        failure: list[dict[str, Any]] = (),  # type: ignore[assignment]
        *,
        retry_ambiguous: bool = False,
        timeout: float | None = None,
    ) -> tuple[bool, int, list[dict[str, Any]]]:
        """(succeeded, header revision, responses of the branch taken)."""
        answer = self.call(
            "kv/txn",
            {"compare": compare, "success": success, "failure": list(failure)},
            retry_ambiguous=retry_ambiguous,
            timeout=timeout,
        )
        responses = answer.get("responses", [])
        return bool(answer.get("succeeded", False)), int(answer["header"]["revision"]), responses

    # ------------------------------------------------------------------ leases

    def lease_grant(self, ttl: int, *, timeout: float | None = None) -> tuple[int, int]:
        """A new lease: (id, granted TTL in seconds; etcd may raise it to its minimum)."""
        answer = self.call("lease/grant", {"TTL": ttl}, timeout=timeout)
        if answer.get("error"):
            raise EtcdError(f"etcd refused a lease: {answer['error']}")
        return int(answer["ID"]), int(answer["TTL"])

    def lease_keepalive(self, lease: int, *, timeout: float | None = None) -> int:
        """Refresh ``lease``: its TTL again, or 0 if it has expired."""
        answer = self.call("lease/keepalive", {"ID": str(lease)}, timeout=timeout)
        return max(0, int(answer.get("result", {}).get("TTL", 0)))

    def lease_revoke(self, lease: int, *, timeout: float | None = None) -> None:
        try:
            self.call("kv/lease/revoke", {"ID": str(lease)}, timeout=timeout)
        except EtcdError as exc:
            if "not found" not in str(exc):
                raise

    def lease_remaining(self, lease: int, *, timeout: float | None = None) -> int:
        """Seconds the lease has left, -1 if it does not exist (any more)."""
        answer = self.call("kv/lease/timetolive", {"ID": str(lease)}, timeout=timeout)
        return int(answer.get("TTL", -1))

    # ------------------------------------------------------------------ health

    def health(self, *, timeout: float = 1.0) -> list[EndpointHealth]:
        """Each endpoint on its own: serving, and part of a cluster with a leader."""
        out = []
        for endpoint in self.endpoints:
            url = urllib.parse.urlsplit(endpoint)
            conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
            try:
                conn.request("GET", "/health")
                resp = conn.getresponse()
                answer = json_answer(resp.read())
                healthy = resp.status == 200 and answer.get("health") == "true"
                out.append(EndpointHealth(endpoint, healthy, "" if healthy else "no quorum"))
            except (OSError, http.client.HTTPException) as exc:
                out.append(EndpointHealth(endpoint, False, why(exc)))
            finally:
                conn.close()
        return out

    def watch(
        self,
        prefix: str,
        *,
        start_revision: int,
        on_events: Callable[[list[WatchEvent]], None],
        on_compacted: Callable[[int], int],
        probe_interval: float = 1.0,
    ) -> EtcdWatch:
        """Follow every key under ``prefix`` from ``start_revision``; see :class:`EtcdWatch`."""
        return EtcdWatch(
            self.endpoints,
            prefix,
            start_revision=start_revision,
            on_events=on_events,
            on_compacted=on_compacted,
            probe_interval=probe_interval,
        )
