"""EventBus: ordering, filtering, bounded queues that cut slow readers off, replay."""

from __future__ import annotations

import threading
import time

import pytest

from controller.concurrency.eventbus import EventBus, SubscriptionDropped
from controller.engine.outputs import EventKind


def _publish(bus: EventBus, n: int, kind: EventKind = EventKind.LINK_UP) -> list[int]:
    return [bus.publish(kind, f"s{i}", time=100.0 + i).seq for i in range(n)]


def test_seq_is_consecutive_and_record_carries_fields() -> None:
    bus = EventBus()
    first = bus.publish(
        EventKind.FLOW_REROUTED,
        "flow 7",
        reason="congestion",
        attributes={"to": "spine2", "from": "spine1"},
        time=12.5,
    )
    second = bus.publish(EventKind.LINK_DOWN, "leaf1/3->spine1/1", time=13.0)
    assert (first.seq, second.seq) == (1, 2)
    assert first.kind is EventKind.FLOW_REROUTED
    assert first.subject == "flow 7"
    assert first.reason == "congestion"
    assert first.time == 12.5
    # Sorted, so equal events compare equal whatever order the caller used.
    assert first.attributes == (("from", "spine1"), ("to", "spine2"))
    assert bus.last_seq == 2


def test_attributes_as_pairs_are_recorded_like_a_mapping() -> None:
    """Engine notices hand their attributes over as (name, value) pairs of strings."""
    bus = EventBus()
    pairs = bus.publish(
        EventKind.FLOW_PLACED, "7", attributes=(("path", "a -> b"), ("five_tuple", "udp")), time=1
    )
    mapping = bus.publish(
        EventKind.FLOW_PLACED, "7", attributes={"path": "a -> b", "five_tuple": "udp"}, time=1
    )
    assert pairs.attributes == mapping.attributes == (("five_tuple", "udp"), ("path", "a -> b"))
    assert bus.publish(EventKind.FLOW_PLACED, "7", attributes=(), time=1).attributes == ()
    assert bus.publish(EventKind.LINK_UP, "x", attributes={"n": 3}, time=1).attributes == (
        ("n", "3"),
    )


def test_subscriber_gets_events_in_order_and_none_on_timeout() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    seqs = _publish(bus, 5)
    got = [sub.get(timeout=0.1) for _ in range(5)]
    assert [r.seq for r in got if r] == seqs
    start = time.monotonic()
    assert sub.get(timeout=0.05) is None
    assert time.monotonic() - start >= 0.04


def test_kind_filter() -> None:
    bus = EventBus()
    sub = bus.subscribe(kinds=frozenset({EventKind.LINK_DOWN}))
    bus.publish(EventKind.LINK_UP, "a", time=1.0)
    down = bus.publish(EventKind.LINK_DOWN, "b", time=2.0)
    got = sub.get(timeout=0.1)
    assert got == down
    assert sub.get(timeout=0.01) is None


def test_overflow_cuts_subscriber_off_after_draining() -> None:
    bus = EventBus()
    slow = bus.subscribe(max_queue=3)
    fast = bus.subscribe(max_queue=100)
    seqs = _publish(bus, 10)
    assert slow.dropped
    assert bus.subscriber_count == 1  # the slow one is no longer fed
    # What was queued before the cut is still delivered, then the drop is reported.
    assert [slow.get(timeout=0.1).seq for _ in range(3)] == seqs[:3]
    with pytest.raises(SubscriptionDropped, match="more than 3 events queued"):
        slow.get(timeout=0.1)
    assert [fast.get(timeout=0.1).seq for _ in range(10)] == seqs


def test_publish_never_waits_for_a_reader_that_never_reads() -> None:
    bus = EventBus()
    bus.subscribe(max_queue=8)
    start = time.monotonic()
    _publish(bus, 20_000)
    # Bounded: a blocked publisher would hang here; 20k publishes take milliseconds.
    assert time.monotonic() - start < 5.0
    assert bus.subscriber_count == 0


def test_close_wakes_reader_and_unsubscribes() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(sub.get(timeout=5.0)))
    reader.start()
    time.sleep(0.05)
    sub.close()
    reader.join(timeout=2.0)
    assert not reader.is_alive()
    assert result == [None]
    assert bus.subscriber_count == 0
    sub.close()  # idempotent


def test_recent_ring_keeps_last_events() -> None:
    bus = EventBus(ring_size=4)
    seqs = _publish(bus, 6)
    assert [r.seq for r in bus.recent(10)] == seqs[-4:]
    assert [r.seq for r in bus.recent(2)] == seqs[-2:]
    assert bus.recent(0) == []


def test_replay_then_live_without_gap_or_repeat() -> None:
    bus = EventBus(ring_size=16)
    _publish(bus, 3, EventKind.LINK_UP)
    _publish(bus, 2, EventKind.LINK_DOWN)
    sub = bus.subscribe(kinds=frozenset({EventKind.LINK_UP}), replay=2)
    live = bus.publish(EventKind.LINK_UP, "live", time=9.0)
    got = [sub.get(timeout=0.1) for _ in range(3)]
    assert [r.seq for r in got if r] == [2, 3, live.seq]


def test_concurrent_publishers_keep_seq_strictly_increasing_for_each_subscriber() -> None:
    bus = EventBus()
    subs = [bus.subscribe(max_queue=10_000) for _ in range(3)]

    def burst() -> None:
        _publish(bus, 1000)

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sub in subs:
        seqs = []
        while (rec := sub.get(timeout=0)) is not None:
            seqs.append(rec.seq)
        assert seqs == list(range(1, 4001))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="ring_size"):
        EventBus(ring_size=0)
    bus = EventBus()
    with pytest.raises(ValueError, match="max_queue"):
        bus.subscribe(max_queue=0)
    with pytest.raises(ValueError, match="replay"):
        bus.subscribe(replay=-1)
