"""Hand work from OS threads (gRPC handlers) to the hub thread that owns the state.

A caller submits a function and waits on a ``concurrent.futures.Future``; a
byte written to a pipe wakes the hub, which runs queued functions in order.
If the caller gives up (deadline), the future is cancelled and the hub skips
the work, so a timed-out write never half-applies later. Pure threading: the
hub side waits on :meth:`fileno` with whatever its event loop offers.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from controller.errors import Unavailable

__all__ = ["Mailbox"]

T = TypeVar("T")


class Mailbox:
    def __init__(self, *, max_pending: int = 1024) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue(max_pending)
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        # Makes "check closed, queue, wake the hub" atomic against close(): else a
        # racing close() shuts the pipe under a caller, who then writes to a dead
        # (or reused) descriptor, or queues work nobody will ever cancel.
        self._lock = threading.Lock()
        self.closed = False

    def fileno(self) -> int:
        """Readable when work is waiting."""
        return self._rfd

    def submit(self, work: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self.closed:
                raise Unavailable("controller is shutting down")
            try:
                self._queue.put_nowait((work, future))
            except queue.Full:
                raise Unavailable("controller is overloaded: too many pending writes") from None
            # A full pipe of wake-ups already means the hub is awake.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wfd, b"x")
        return future

    def call(self, work: Callable[[], T], *, timeout: float) -> T:
        """Run ``work`` in the hub and return its result (or raise its exception)."""
        future = self.submit(work)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            if future.cancel():
                raise Unavailable(
                    f"controller did not take the request within {timeout:.1f} s"
                ) from None
            return future.result()  # it started just now: wait for the outcome
        except CancelledError:
            raise Unavailable("request cancelled during shutdown") from None

    def run_pending(self) -> int:
        """Hub side: run everything queued. Returns how many ran."""
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass
        ran = 0
        while True:
            try:
                work, future = self._queue.get_nowait()
            except queue.Empty:
                return ran
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # delivered to the caller, not swallowed
                future.set_exception(exc)
            ran += 1

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return  # the descriptors may already belong to someone else
            self.closed = True
            while True:
                try:
                    _, future = self._queue.get_nowait()
                except queue.Empty:
                    break
                future.cancel()
            for fd in (self._rfd, self._wfd):
                with contextlib.suppress(OSError):
                    os.close(fd)
