"""Mailbox: work from OS threads runs in the hub thread; timeouts and shutdown are clean."""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError

import pytest

from controller.concurrency.mailbox import Mailbox
from controller.errors import Unavailable


class Hub:
    """A thread standing in for the hub: waits on the mailbox's fd and runs what is queued."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.stop = threading.Event()
        self.ident: int | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        self.ident = threading.get_ident()
        while not self.stop.is_set():
            ready, _, _ = select.select([self.mailbox.fileno()], [], [], 0.02)
            if ready:
                self.mailbox.run_pending()

    def join(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(max_pending=4)
    yield box
    box.close()


def readable(box: Mailbox) -> bool:
    return bool(select.select([box.fileno()], [], [], 0)[0])


def test_results_come_back_from_the_hub_thread(mailbox: Mailbox) -> None:
    hub = Hub(mailbox)
    try:
        ran_in = mailbox.call(threading.get_ident, timeout=5)
        assert ran_in == hub.ident != threading.get_ident()
        assert mailbox.call(lambda: 6 * 7, timeout=5) == 42
    finally:
        hub.join()


def test_exceptions_cross_back_to_the_caller(mailbox: Mailbox) -> None:
    hub = Hub(mailbox)

    def bad() -> None:
        raise KeyError("no such policy")

    try:
        with pytest.raises(KeyError, match="no such policy"):
            mailbox.call(bad, timeout=5)
        assert mailbox.call(lambda: "still serving", timeout=5) == "still serving"
    finally:
        hub.join()


def test_the_fd_wakes_the_hub_and_work_runs_in_order(mailbox: Mailbox) -> None:
    assert not readable(mailbox)
    order: list[int] = []
    futures = [mailbox.submit(lambda i=i: order.append(i)) for i in range(3)]
    assert readable(mailbox)
    assert mailbox.run_pending() == 3
    assert order == [0, 1, 2] and all(f.done() for f in futures)
    assert not readable(mailbox)
    assert mailbox.run_pending() == 0


def test_a_timed_out_call_is_cancelled_and_never_runs_later(mailbox: Mailbox) -> None:
    ran = threading.Event()
    with pytest.raises(Unavailable, match=r"did not take the request within 0\.1 s"):
        mailbox.call(ran.set, timeout=0.1)  # no hub is running
    assert mailbox.run_pending() == 0
    assert not ran.is_set()


def test_a_call_that_already_started_waits_for_its_outcome(mailbox: Mailbox) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "applied"

    hub = Hub(mailbox)
    try:
        threading.Timer(0.3, release.set).start()
        # The deadline passes while the hub runs it: cancelling is impossible,
        # so the caller gets the real outcome rather than a false "not applied".
        assert mailbox.call(slow, timeout=0.1) == "applied"
        assert started.is_set()
    finally:
        release.set()
        hub.join()


def test_close_cancels_pending_work_and_waiting_callers() -> None:
    box = Mailbox()
    ran = threading.Event()
    pending = box.submit(ran.set)
    outcome: list[BaseException] = []

    def caller() -> None:
        try:
            box.call(ran.set, timeout=5)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    deadline = time.monotonic() + 5
    while box._queue.qsize() < 2 and time.monotonic() < deadline:  # the caller's work is queued
        time.sleep(0.01)
    box.close()
    thread.join(timeout=5)
    assert pending.cancelled()
    with pytest.raises(CancelledError):
        pending.result(timeout=0)
    assert len(outcome) == 1 and isinstance(outcome[0], Unavailable)
    assert "cancelled during shutdown" in str(outcome[0])
    assert not ran.is_set()


def test_submit_after_close_is_unavailable() -> None:
    box = Mailbox()
    box.close()
    with pytest.raises(Unavailable, match="shutting down"):
        box.submit(lambda: None)
    with pytest.raises(Unavailable):
        box.call(lambda: None, timeout=1)
    box.close()  # closing twice is harmless


def test_a_full_mailbox_refuses_more_work(mailbox: Mailbox) -> None:
    for _ in range(4):
        mailbox.submit(lambda: None)
    with pytest.raises(Unavailable, match="overloaded"):
        mailbox.submit(lambda: None)
    assert mailbox.run_pending() == 4
    mailbox.submit(lambda: None)  # room again
