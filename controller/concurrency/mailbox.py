"""Hand work from OS threads (gRPC handlers) to the hub thread that owns the state.

A caller submits a function and waits on a ``concurrent.futures.Future``; a
byte written to a pipe wakes the hub, which runs queued functions in order
and hands each result to a ``finish`` step of its own (the shim sends the
engine output a command returned) before the caller is answered. Deadlines
are honoured both ways, so a write is either done and answered, or not done:
the hub skips work whose caller has given up or would be answered too late
(less than ``min_runway_s`` left), and a caller who gives up cancels work
that has not started. Pure threading: the hub side waits on :meth:`fileno`
with whatever its event loop offers; nothing here raises into the hub.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from controller.errors import Unavailable

__all__ = ["Mailbox", "MailboxTimeout"]

T = TypeVar("T")

# Work should not start when less than this is left of its caller's deadline:
# a policy apply takes ~10 ms in the hub, and an answer that arrives after the
# caller gave up would report a committed write as failed.
DEFAULT_MIN_RUNWAY_S = 0.02


class MailboxTimeout(Unavailable):
    """The hub did not take the work before the caller's timeout; nothing was done."""


def _identity(value: Any) -> Any:
    return value


class Mailbox:
    def __init__(
        self, *, max_pending: int = 1024, min_runway_s: float = DEFAULT_MIN_RUNWAY_S
    ) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], Future[Any], float]] = queue.Queue(
            max_pending
        )
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        # Makes "check closed, queue, wake the hub" atomic against close(): else a
        # racing close() shuts the pipe under a caller, who then writes to a dead
        # (or reused) descriptor, or queues work nobody will ever cancel.
        self._lock = threading.Lock()
        self.min_runway_s = min_runway_s
        self.closed = False

    def fileno(self) -> int:
        """Readable when work is waiting."""
        return self._rfd

    def submit(self, work: Callable[[], T], *, deadline: float = float("inf")) -> Future[T]:
        """Queue ``work``; ``deadline`` (time.monotonic) after which it must not start."""
        future: Future[T] = Future()
        with self._lock:
            if self.closed:
                raise Unavailable("controller is shutting down")
            try:
                self._queue.put_nowait((work, future, deadline))
            except queue.Full:
                raise Unavailable("controller is overloaded: too many pending writes") from None
            # A full pipe of wake-ups already means the hub is awake.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wfd, b"x")
        return future

    def call(self, work: Callable[[], T], *, timeout: float) -> T:
        """Run ``work`` in the hub and return its (finished) result, or raise its exception.

        :class:`MailboxTimeout` means the work was not done and never will be.
        """
        deadline = time.monotonic() + timeout
        future = self.submit(work, deadline=deadline)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            if future.cancel():
                raise MailboxTimeout(
                    f"controller did not take the request within {timeout:.3g} s"
                ) from None
            return future.result()  # it started just now: wait for the outcome
        except CancelledError:
            raise Unavailable("request cancelled during shutdown") from None

    def run_pending(self, finish: Callable[[Any], Any] = _identity) -> int:
        """Hub side: run everything queued; ``finish(value)`` turns what the work
        returned into the caller's result (after doing what the value asks).
        Returns how many ran."""
        if self.closed:
            return 0  # closed under the hub: its queue was cancelled, its pipe is gone
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass
        ran = 0
        while True:
            try:
                work, future, deadline = self._queue.get_nowait()
            except queue.Empty:
                return ran
            if not future.set_running_or_notify_cancel():
                continue
            if time.monotonic() > deadline - self.min_runway_s:
                future.set_exception(
                    MailboxTimeout("the request's deadline passed before the controller took it")
                )
                continue
            try:
                future.set_result(finish(work()))
            except Exception as exc:  # delivered to the caller, not swallowed
                future.set_exception(exc)
            except BaseException:
                # Shutdown of the hub itself: the caller learns the request is lost.
                future.set_exception(Unavailable("controller is shutting down"))
                raise
            ran += 1

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return  # the descriptors may already belong to someone else
            self.closed = True
            while True:
                try:
                    _, future, _ = self._queue.get_nowait()
                except queue.Empty:
                    break
                future.cancel()
            for fd in (self._rfd, self._wfd):
                with contextlib.suppress(OSError):
                    os.close(fd)
