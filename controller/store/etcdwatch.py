"""One etcd watch stream, kept alive across members, on a thread of its own.

The client (:mod:`controller.store.etcdclient`) starts it; it follows every
key under a prefix from a revision, moves to the next member when a stream
ends or its member stops serving (a prober checks), and resumes from the
next revision, so no event is lost or repeated. It must not know what the
keys mean.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

from controller.store.etcdwire import (
    KeyValue,
    NotSent,
    WatchEvent,
    b64,
    post,
    prefix_end,
    why,
)

__all__ = ["EtcdWatch"]

log = logging.getLogger("controller.store.etcdclient")


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
        endpoints: tuple[str, ...],
        prefix: str,
        *,
        start_revision: int,
        on_events: Callable[[list[WatchEvent]], None],
        on_compacted: Callable[[int], int],
        probe_interval: float,
    ) -> None:
        self._endpoints = endpoints
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
        endpoints = self._endpoints
        index = 0
        while not self._stopped.is_set():
            endpoint = endpoints[index % len(endpoints)]
            try:
                self._stream(endpoint)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                if not self._stopped.is_set():
                    log.warning("etcd watch on %s ended: %s; resuming", endpoint, why(exc))
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
                status, _ = post(endpoint, "/v3/kv/range", body, min(1.0, self._probe_interval))
                ok = status == 200
            except (NotSent, OSError, http.client.HTTPException):
                ok = False
            if not ok:
                log.warning("etcd member %s stopped serving; moving the watch", endpoint)
                self._drop()
