"""Observers that run beside an experiment, each in its own thread, until stopped.

The controller's event stream (WatchEvents), every link direction's
utilization (ListLinks, sampled), and the first packet of a flow crossing a
given switch interface (a raw socket). They record with wall-clock times, the
clock flowgen and the controller's events use. They talk gRPC or read a
socket only - never Mininet, whose node shells belong to the main thread -
and change nothing.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from controller.api import convert
from controller.api.client import FabricClient

__all__ = ["EventWatcher", "LinkSampler", "FirstPacket"]


class FirstPacket:
    """Wall-clock times of UDP packets ``sport -> dport`` seen on an interface.

    A raw (AF_PACKET) socket on a switch's interface, read by a thread from the
    moment it is created until :meth:`close`: far finer than polling port
    counters, and it tells which flow crossed, not just that something did.
    Every match is kept (up to :data:`MAX_MATCHES`), so a caller can ask for the
    first one after an instant it learns only later (:meth:`first_after`).
    Needs root; Ethernet II + IPv4 frames only.
    """

    MAX_MATCHES = 100_000

    def __init__(self, iface: str, *, sport: int, dport: int) -> None:
        self.iface = iface
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.bind((iface, 0))
        self._sock.settimeout(0.1)
        self._ports = (sport, dport)
        self._stop = threading.Event()
        self._matched = threading.Event()
        self._times: list[float] = []
        self.frames = 0  # every frame read, matching or not
        self.error: str | None = None  # why reading stopped before close(), if it did
        self._thread = threading.Thread(target=self._run, name=f"sniff-{iface}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._sock.recv(256)
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stop.is_set():
                    self.error = f"{type(exc).__name__}: {exc}"
                return
            now = time.time()
            self.frames += 1
            if _udp_ports(frame) == self._ports and len(self._times) < self.MAX_MATCHES:
                self._times.append(now)
                self._matched.set()

    @property
    def seen_at(self) -> float | None:
        """Time of the first matching packet, or None."""
        return self._times[0] if self._times else None

    @property
    def matches(self) -> int:
        return len(self._times)

    def first_after(self, instant: float) -> float | None:
        """Time of the first matching packet at or after ``instant``, or None."""
        return next((t for t in self._times if t >= instant), None)

    def matches_before(self, instant: float) -> int:
        return sum(1 for t in self._times if t < instant)

    def wait(self, timeout: float) -> float | None:
        """Wait up to ``timeout`` s for a first matching packet; its time, or None."""
        self._matched.wait(timeout)
        return self.seen_at

    def diagnostics(self) -> dict[str, Any]:
        """What the socket read: for a rep that saw no packet, why."""
        return {
            "iface": self.iface,
            "frames": self.frames,
            "matches": self.matches,
            "error": self.error,
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


ETH_P_ALL = 0x0003


def _udp_ports(frame: bytes) -> tuple[int, int] | None:
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    udp = 14 + (frame[14] & 0x0F) * 4
    if len(frame) < udp + 4:
        return None
    sport, dport = struct.unpack_from("!HH", frame, udp)
    return int(sport), int(dport)


class EventWatcher:
    """Collects WatchEvents (live only) in a thread until :meth:`stop`."""

    def __init__(self, target: str) -> None:
        self._client = FabricClient(target)
        self._stream = self._client.watch_events(live_only=True)
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, name="event-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for ev in self._stream:
                record = {
                    "time": ev.time.seconds + ev.time.nanos / 1e9,
                    "kind": convert.event_kind_from_proto(ev.kind, field="event.kind").value,
                    "subject": ev.subject,
                    "reason": ev.reason,
                    "attributes": dict(ev.attributes),
                }
                with self._lock:
                    self._events.append(record)
        except grpc.RpcError:
            pass  # cancelled by stop(), or the controller went away

    def events(self, *, since: float = 0.0, kind: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [
                e for e in self._events if e["time"] >= since and (not kind or e["kind"] == kind)
            ]

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], *, timeout: float
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                hit = next((e for e in self._events if pred(e)), None)
            if hit is not None:
                return hit
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        self._stream.cancel()
        self._thread.join(timeout=5)
        self._client.close()


class LinkSampler:
    """Samples every link direction's utilization (ListLinks) every ``period`` seconds."""

    def __init__(self, target: str, *, period: float = 0.5) -> None:
        self._client = FabricClient(target, timeout=2)
        self._period = period
        self._stop = threading.Event()
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._thread = threading.Thread(target=self._run, name="link-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                links = self._client.list_links()
                sample = {
                    f"{lk.src_switch}->{lk.dst_switch}": round(lk.utilization, 4) for lk in links
                }
                self.samples.append((time.time(), sample))
            except grpc.RpcError:
                pass  # a slow answer is a missing sample, not a failure
            next_at += self._period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()
