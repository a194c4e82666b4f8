"""The event bus: fans fabric events out from the hub thread to watchers.

The hub publishes; gRPC handler threads subscribe and read. Publishing never
waits for a reader: every subscription has a bounded queue, and a subscriber
that lets it overflow is cut off (``dropped``) instead of slowing the hub or
growing memory without bound. Sequence numbers are assigned under one lock
together with the fan-out, so every subscriber sees ``seq`` strictly
increasing. This module uses plain :mod:`threading` only: it must not import
eventlet or block the publisher on anything a reader controls.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.engine.outputs import EventKind

__all__ = ["EventBus", "EventRecord", "Subscription", "SubscriptionDropped"]


@dataclass(frozen=True)
class EventRecord:
    """One thing that happened, as streamed by WatchEvents. ``seq`` grows by one."""

    seq: int
    time: float  # unix seconds
    kind: EventKind
    subject: str  # what it is about: a link name, switch name, policy name, flow id
    reason: str = ""
    attributes: tuple[tuple[str, str], ...] = ()


class SubscriptionDropped(Exception):
    """The subscriber fell more than its queue size behind and was cut off."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        super().__init__(f"more than {max_queue} events queued")


class Subscription:
    """One reader's bounded view of the bus. Create with :meth:`EventBus.subscribe`."""

    def __init__(
        self, bus: EventBus, *, kinds: frozenset[EventKind] | None, max_queue: int
    ) -> None:
        self._bus = bus
        self.kinds = kinds
        self.max_queue = max_queue
        self._queue: deque[EventRecord] = deque()
        self._cond = threading.Condition()
        self._dropped = False
        self._closed = False

    @property
    def dropped(self) -> bool:
        """True once the queue overflowed; no further events are queued."""
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def wants(self, kind: EventKind) -> bool:
        return self.kinds is None or kind in self.kinds

    def _offer(self, record: EventRecord) -> bool:
        """Queue ``record``; False if this subscription is (now) cut off.

        Called by the bus with its lock held; only ever takes this
        subscription's own lock, which readers hold for a few instructions.
        """
        with self._cond:
            if self._closed or self._dropped:
                return False
            if len(self._queue) >= self.max_queue:
                self._dropped = True
                self._cond.notify_all()
                return False
            self._queue.append(record)
            self._cond.notify()
            return True

    def get(self, timeout: float) -> EventRecord | None:
        """The next event, or None if none arrived within ``timeout`` seconds.

        Raises :class:`SubscriptionDropped` once a dropped subscription's queue
        is drained, so the reader still gets everything queued before the cut.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: bool(self._queue) or self._dropped or self._closed, timeout=timeout
            )
            if self._queue:
                return self._queue.popleft()
            if self._dropped:
                raise SubscriptionDropped(self.max_queue)
            return None

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        """Stop receiving; idempotent. Wakes a reader blocked in :meth:`get`."""
        self._bus._unsubscribe(self)
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Thread-safe publish/subscribe of :class:`EventRecord` with a ring of recent events."""

    def __init__(self, *, ring_size: int = 256) -> None:
        if ring_size < 1:
            raise ValueError(f"ring_size must be >= 1, got {ring_size}")
        self._lock = threading.Lock()
        self._seq = 0
        self._ring: deque[EventRecord] = deque(maxlen=ring_size)
        self._subscribers: list[Subscription] = []

    def publish(
        self,
        kind: EventKind,
        subject: str,
        *,
        reason: str = "",
        attributes: Mapping[str, object] | Iterable[tuple[str, str]] | None = None,
        time: float,
    ) -> EventRecord:
        """Record an event and hand it to every interested subscriber; never blocks on them.

        ``attributes``: a mapping (names and values are turned into strings) or
        (name, value) pairs of strings with distinct names, as engine notices carry."""
        attrs: tuple[tuple[str, str], ...]
        if not attributes:
            attrs = ()
        elif isinstance(attributes, Mapping):
            attrs = tuple(sorted((str(k), str(v)) for k, v in attributes.items()))
        else:
            attrs = tuple(sorted(attributes))
        with self._lock:
            self._seq += 1
            record = EventRecord(
                seq=self._seq,
                time=time,
                kind=kind,
                subject=subject,
                reason=reason,
                attributes=attrs,
            )
            self._ring.append(record)
            cut_off = [s for s in self._subscribers if s.wants(kind) and not s._offer(record)]
            if cut_off:
                self._subscribers = [s for s in self._subscribers if s not in cut_off]
        return record

    def subscribe(
        self,
        *,
        kinds: frozenset[EventKind] | None = None,
        max_queue: int = 1024,
        replay: int = 0,
    ) -> Subscription:
        """A new subscription to events of ``kinds`` (None = all).

        ``replay`` > 0 first queues up to that many of the most recent matching
        events (bounded by ``max_queue``); taking them under the publish lock
        means no event is missed or repeated between the replay and live ones.
        """
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        if replay < 0:
            raise ValueError(f"replay must be >= 0, got {replay}")
        sub = Subscription(self, kinds=kinds, max_queue=max_queue)
        with self._lock:
            if replay:
                wanted = [r for r in self._ring if sub.wants(r.kind)]
                for record in wanted[-min(replay, max_queue) :]:
                    sub._offer(record)
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def recent(self, n: int) -> list[EventRecord]:
        """The last ``n`` events published, oldest first."""
        if n <= 0:
            return []
        with self._lock:
            return list(self._ring)[-n:]

    @property
    def last_seq(self) -> int:
        """The seq of the last event published (0 if none yet)."""
        with self._lock:
            return self._seq

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)
