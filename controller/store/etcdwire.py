"""The wire format of etcd's HTTP/JSON gateway: errors, key-values, events, one POST.

Shared by the client (:mod:`controller.store.etcdclient`) and its watch
stream (:mod:`controller.store.etcdwatch`): how keys are encoded, how a
reply becomes a :class:`KeyValue`, which failures mean what, and the one
HTTP POST every call makes. It keeps no state and knows no endpoint order,
retry or key meaning.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.store.documents import StoreError, StoreUnavailable

__all__ = [
    "EtcdError",
    "EtcdUnavailable",
    "EtcdOutcomeUnknown",
    "EtcdCompacted",
    "KeyValue",
    "WatchEvent",
    "EndpointHealth",
    "NotSent",
    "b64",
    "prefix_end",
    "parse_endpoints",
    "post",
    "json_answer",
    "why",
    "UNAVAILABLE",
    "DEADLINE",
    "NOT_APPLIED",
]

# gRPC status codes the gateway reports in its error bodies.
UNAVAILABLE, DEADLINE = 14, 4
# Server-side refusals that certainly did not apply a write, so any request may
# move on to the next member: the member has no leader or is not yet serving.
NOT_APPLIED = ("no leader", "not capable", "leader changed", "not started", "too many requests")


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


class NotSent(Exception):
    """The request never reached the endpoint (connection refused, no route)."""


def post(endpoint: str, path: str, body: dict[str, Any], timeout: float) -> tuple[int, bytes]:
    """POST ``body`` as JSON to ``endpoint``; (HTTP status, raw answer). Raises
    :class:`NotSent` when the connection could not even be made."""
    url = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        try:
            conn.connect()
        except OSError as exc:
            raise NotSent(str(exc)) from None
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def json_answer(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {"error": raw[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {"error": str(value)[:200]}


def why(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
