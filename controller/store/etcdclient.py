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

import base64
import contextlib
import http.client
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from controller.store.documents import StoreError, StoreUnavailable

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

log = logging.getLogger(__name__)

# gRPC status codes the gateway reports in its error bodies.
_UNAVAILABLE, _DEADLINE = 14, 4
# Server-side refusals that certainly did not apply a write, so any request may
# move on to the next member: the member has no leader or is not yet serving.
_NOT_APPLIED = ("no leader", "not capable", "leader changed", "not started", "too many requests")


class EtcdError(StoreError):
    """etcd refused the request; ``code`` is the gRPC status code it gave."""

    def __init__(self, message: str, *, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class EtcdUnavailable(StoreUnavailable):
    """No endpoint answered in time (the message names them)."""


class EtcdOutcomeUnknown(EtcdUnavailable):
    """A write was sent but not answered: it may or may not have been applied."""


class EtcdCompacted(EtcdError):
    """The requested revision was compacted away."""


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def prefix_end(prefix: str) -> str:
    """The range end covering every key that starts with ``prefix`` (ASCII prefixes)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def parse_endpoints(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``http://host:port`` endpoints from a comma-separated string or a list."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in (i.strip() for i in items):
        url = urllib.parse.urlsplit(item if "://" in item else f"http://{item}")
        if url.scheme != "http" or not url.hostname or not url.port or url.path not in ("", "/"):
            raise StoreError(f"etcd endpoint {item!r}: expected http://HOST:PORT")
        out.append(f"http://{url.hostname}:{url.port}")
    if not out:
        raise StoreError("no etcd endpoint given")
    return tuple(out)


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @staticmethod
    def from_json(doc: dict[str, Any]) -> KeyValue:
        return KeyValue(
            key=base64.b64decode(doc["key"]).decode(),
            value=base64.b64decode(doc.get("value", "")),
            create_revision=int(doc.get("create_revision", 0)),
            mod_revision=int(doc.get("mod_revision", 0)),
            version=int(doc.get("version", 0)),
            lease=int(doc.get("lease", 0)),
        )


@dataclass(frozen=True)
class WatchEvent:
    deleted: bool
    kv: KeyValue


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: str
    healthy: bool
    detail: str  # "" when healthy; why not otherwise


class _NotSent(Exception):
    """The request never reached the endpoint (connection refused, no route)."""


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

    @staticmethod
    def _post(endpoint: str, path: str, body: dict[str, Any], timeout: float) -> tuple[int, bytes]:
        url = urllib.parse.urlsplit(endpoint)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise _NotSent(str(exc)) from None
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

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
                    status, raw = self._post(
                        endpoint, f"/v3/{path}", body, min(remaining, self.attempt_timeout)
                    )
                except _NotSent as exc:
                    problems[endpoint] = str(exc)
                    continue
                except (OSError, http.client.HTTPException) as exc:
                    if not retry_ambiguous:
                        raise EtcdOutcomeUnknown(
                            f"etcd at {endpoint} did not answer a write in time ({_why(exc)}); "
                            "it may or may not have been applied"
                        ) from None
                    problems[endpoint] = _why(exc)
                    continue
                answer = _json(raw)
                if status == 200:
                    self._prefer(endpoint)
                    return answer
                message = str(answer.get("message") or answer.get("error") or raw[:200])
                code = int(answer.get("code", 0))
                if any(text in message for text in _NOT_APPLIED):
                    problems[endpoint] = message
                    continue
                if code in (_UNAVAILABLE, _DEADLINE) or status >= 500:
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
                answer = _json(resp.read())
                healthy = resp.status == 200 and answer.get("health") == "true"
                out.append(EndpointHealth(endpoint, healthy, "" if healthy else "no quorum"))
            except (OSError, http.client.HTTPException) as exc:
                out.append(EndpointHealth(endpoint, False, _why(exc)))
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
            self,
            prefix,
            start_revision=start_revision,
            on_events=on_events,
            on_compacted=on_compacted,
            probe_interval=probe_interval,
        )


class EtcdWatch:
    """One watch stream, kept alive across members, on a thread of its own.

    ``on_events`` gets each batch of events in revision order. When etcd has
    compacted the revision the watch must resume from, ``on_compacted(rev)``
    must bring its owner up to date some other way (a fresh read) and return
    the revision it read at; the watch continues after it. A prober checks the
    member serving the stream every ``probe_interval`` with a linearizable read
    and drops the stream if it fails (a killed, frozen or isolated member would
    otherwise hold a silent stream forever).
    """

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        *,
        start_revision: int,
        on_events: Callable[[list[WatchEvent]], None],
        on_compacted: Callable[[int], int],
        probe_interval: float,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._next = start_revision
        self._on_events = on_events
        self._on_compacted = on_compacted
        self._probe_interval = probe_interval
        self._stopped = threading.Event()
        self._sock: socket.socket | None = None
        self._endpoint = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="etcd-watch")
        self._thread.start()
        threading.Thread(target=self._probe, daemon=True, name="etcd-watch-probe").start()

    @property
    def next_revision(self) -> int:
        return self._next

    def stop(self) -> None:
        self._stopped.set()
        self._drop()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _drop(self) -> None:
        with self._lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        endpoints = self._client.endpoints
        index = 0
        while not self._stopped.is_set():
            endpoint = endpoints[index % len(endpoints)]
            try:
                self._stream(endpoint)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                if not self._stopped.is_set():
                    log.warning("etcd watch on %s ended: %s; resuming", endpoint, _why(exc))
            with self._lock:
                served, self._sock, self._endpoint = self._endpoint, None, ""
            # Any end moves the stream to the next member; a full round of
            # members that could not even start a stream backs off a little.
            index += 1
            pause = 0.5 if not served and index % len(endpoints) == 0 else 0.05
            self._stopped.wait(pause)

    def _stream(self, endpoint: str) -> None:
        url = urllib.parse.urlsplit(endpoint)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=2.0)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(None)  # idle streams are normal; the prober ends dead ones
            with self._lock:
                self._sock = conn.sock
            request = {
                "create_request": {
                    "key": b64(self._prefix),
                    "range_end": b64(prefix_end(self._prefix)),
                    "start_revision": str(self._next),
                }
            }
            conn.request("POST", "/v3/watch", json.dumps(request))
            resp = conn.getresponse()
            if resp.status != 200:
                raise http.client.HTTPException(f"HTTP {resp.status}")
            while not self._stopped.is_set():
                line = resp.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                if not self._handle(endpoint, json.loads(line)):
                    return
        finally:
            conn.close()

    def _handle(self, endpoint: str, chunk: dict[str, Any]) -> bool:
        """Act on one message of the stream; False when the stream must restart."""
        if "error" in chunk:
            raise http.client.HTTPException(str(chunk["error"]))
        result = chunk["result"]
        if result.get("created"):
            with self._lock:
                self._endpoint = endpoint
            return True
        if result.get("canceled"):
            compacted = int(result.get("compact_revision", 0))
            if compacted:
                # etcd cancelled this stream; a new one starts after the owner's read.
                self._next = self._on_compacted(compacted) + 1
                return False
            raise http.client.HTTPException(f"watch canceled: {result.get('cancel_reason', '')}")
        events = [
            WatchEvent(e.get("type") == "DELETE", KeyValue.from_json(e["kv"]))
            for e in result.get("events", [])
        ]
        if events:
            self._on_events(events)
            self._next = events[-1].kv.mod_revision + 1
        return True

    def _probe(self) -> None:
        while not self._stopped.wait(self._probe_interval):
            with self._lock:
                endpoint = self._endpoint
            if not endpoint:
                continue
            body = {"key": b64(self._prefix), "count_only": True}
            try:
                status, _ = EtcdClient._post(
                    endpoint, "/v3/kv/range", body, min(1.0, self._probe_interval)
                )
                ok = status == 200
            except (_NotSent, OSError, http.client.HTTPException):
                ok = False
            if not ok:
                log.warning("etcd member %s stopped serving; moving the watch", endpoint)
                self._drop()


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {"error": raw[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {"error": str(value)[:200]}


def _why(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
