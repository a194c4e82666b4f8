"""WatchEvents: ordering, replay, filtering, and slow watchers that must not hold anyone up."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from apilab import ApiLab, running_server
from fabric.v1 import fabric_pb2 as pb

from controller.api.client import FabricClient
from controller.api.server import ApiServer
from controller.engine.outputs import EventKind


def wait_for(cond: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def take(stream: Any, n: int) -> list[Any]:
    out = []
    for event in stream:
        out.append(event)
        if len(out) == n:
            break
    return out


def test_live_stream_is_ordered_and_complete(server: ApiServer, api: ApiLab) -> None:
    with FabricClient(server.address) as client, client.watch_events(live_only=True) as stream:
        wait_for(lambda: api.bus.subscriber_count == 1)
        published: list[int] = []

        def publish() -> None:
            for i in range(300):
                rec = api.bus.publish(
                    EventKind.FLOW_REROUTED,
                    f"flow {i}",
                    reason="congestion",
                    attributes={"from": "spine1", "to": "spine2"},
                    time=1000.0 + i,
                )
                published.append(rec.seq)

        pub = threading.Thread(target=publish)
        pub.start()
        events = take(stream, 300)
        pub.join()
    seqs = [e.seq for e in events]
    assert seqs == published  # nothing lost, nothing repeated
    assert all(a < b for a, b in itertools.pairwise(seqs))
    first = events[0]
    assert first.kind == pb.EVENT_KIND_FLOW_REROUTED
    assert (first.subject, first.reason) == ("flow 0", "congestion")
    assert dict(first.attributes) == {"from": "spine1", "to": "spine2"}
    assert first.time.seconds == 1000


def test_default_stream_replays_recent_then_goes_live(server: ApiServer, api: ApiLab) -> None:
    base = api.bus.last_seq  # what the controller published while starting up
    assert 0 < base < 100
    for i in range(3):
        api.publish(EventKind.LINK_DOWN, f"l{i}", reason="port-down")
    with FabricClient(server.address) as client, client.watch_events() as stream:
        replayed = take(stream, base + 3)
        api.publish(EventKind.LINK_UP, "l0")
        (live,) = take(stream, 1)
    assert [e.seq for e in replayed] == list(range(1, base + 4))
    assert [e.subject for e in replayed[-3:]] == ["l0", "l1", "l2"]
    assert live.seq == base + 4 and live.kind == pb.EVENT_KIND_LINK_UP


def test_replay_fills_at_most_half_the_watch_queue(api: ApiLab) -> None:
    base = api.bus.last_seq
    for i in range(20):
        api.publish(EventKind.HOST_LEARNED, f"h{i}")
    with (
        running_server(api.facade, watch_queue=8) as srv,
        FabricClient(srv.address) as client,
        client.watch_events() as stream,
    ):
        replayed = take(stream, 4)
        api.publish(EventKind.HOST_MOVED, "h0")
        (live,) = take(stream, 1)
    assert [e.seq - base for e in replayed] == [17, 18, 19, 20]
    assert live.seq - base == 21


def test_kind_filter(server: ApiServer, api: ApiLab) -> None:
    kinds = [EventKind.LINK_DRAINED, EventKind.LINK_UNDRAINED]
    with FabricClient(server.address) as client, client.watch_events(kinds=kinds) as stream:
        wait_for(lambda: api.bus.subscriber_count == 1)
        client.apply_policy(pb.Policy(name="p", priority=1, match=[pb.FlowMatch()]))
        client.drain_link("leaf1-spine1")
        client.undrain_link("leaf1-spine1")
        events = take(stream, 4)
    drained, undrained = pb.EVENT_KIND_LINK_DRAINED, pb.EVENT_KIND_LINK_UNDRAINED
    assert [e.kind for e in events] == [drained, drained, undrained, undrained]
    cable = ["leaf1/1->spine1/1", "spine1/1->leaf1/1"]  # both directions, by name
    assert [e.subject for e in events] == cable + cable


def test_unknown_kind_is_invalid_argument(server: ApiServer) -> None:
    channel = grpc.insecure_channel(server.address)
    try:
        from fabric.v1 import fabric_pb2_grpc

        stub = fabric_pb2_grpc.FabricControllerStub(channel)
        call = stub.WatchEvents(pb.WatchEventsRequest(kinds=[pb.EVENT_KIND_LINK_UP, 99]), timeout=5)
        with pytest.raises(grpc.RpcError) as err:
            next(iter(call))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "kinds[1]" in err.value.details()
    finally:
        channel.close()


def test_never_reading_watcher_is_cut_off_while_others_and_publish_proceed(
    api: ApiLab,
) -> None:
    queue = 32
    # Big events fill the slow client's transport buffers (a few MB) in a few hundred events.
    pad = "x" * 16000
    with (
        running_server(api.facade, watch_queue=queue) as srv,
        FabricClient(srv.address) as client,
    ):
        slow = client.watch_events(live_only=True)  # opened, never read
        fast = client.watch_events(live_only=True)
        received: list[int] = []

        def read() -> None:
            with contextlib.suppress(grpc.RpcError):  # cancelled at the end of the test
                received.extend(e.seq for e in fast)

        reader = threading.Thread(target=read)
        reader.start()
        wait_for(lambda: api.bus.subscriber_count == 2)

        published: list[int] = []
        slowest_publish = 0.0
        deadline = time.monotonic() + 30
        while api.bus.subscriber_count == 2:
            assert time.monotonic() < deadline, "the slow watcher was never cut off"
            for _ in range(queue // 2):  # bursts the reading watcher's queue can absorb
                start = time.monotonic()
                rec = api.bus.publish(
                    EventKind.LINK_CONGESTED, "l", attributes={"pad": pad}, time=1.0
                )
                slowest_publish = max(slowest_publish, time.monotonic() - start)
                published.append(rec.seq)
            wait_for(lambda: len(received) >= len(published))

        # The reading watcher got everything, in order, and keeps getting events.
        last = api.bus.publish(EventKind.LINK_CLEARED, "l", time=2.0)
        wait_for(lambda: len(received) == len(published) + 1)
        assert received == [*published, last.seq]
        assert slowest_publish < 1.0  # publish never waited for a reader

        # When the slow client finally reads, it gets what was queued, then the verdict.
        got: list[int] = []
        with pytest.raises(grpc.RpcError) as err:
            for event in slow:
                got.append(event.seq)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert err.value.details() == f"watcher too slow: more than {queue} events queued"
        assert got == published[: len(got)]
        fast.cancel()
        reader.join(timeout=5)


def test_watcher_slots_are_limited_and_released(api: ApiLab) -> None:
    with running_server(api.facade, max_watchers=1) as srv, FabricClient(srv.address) as client:
        first = client.watch_events(live_only=True)
        wait_for(lambda: api.bus.subscriber_count == 1)
        with pytest.raises(grpc.RpcError) as err:
            take(client.watch_events(live_only=True), 1)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many watchers" in err.value.details()
        first.cancel()  # the server closes the subscription and frees the slot
        wait_for(lambda: api.bus.subscriber_count == 0)
        with client.watch_events() as again:
            api.publish(EventKind.SWITCH_UP, "leaf1")
            assert take(again, 1)[0].subject == "leaf1"
        # Unary calls are never starved by open streams.
        assert client.list_links()


def test_server_stop_ends_streams(api: ApiLab) -> None:
    srv_cm = running_server(api.facade)
    srv = srv_cm.__enter__()
    client = FabricClient(srv.address)
    try:
        stream = client.watch_events(live_only=True)
        wait_for(lambda: api.bus.subscriber_count == 1)
        srv.stop(grace=0)
        with pytest.raises(grpc.RpcError):
            take(stream, 1)
        wait_for(lambda: api.bus.subscriber_count == 0, timeout=3.0)
    finally:
        client.close()
        srv_cm.__exit__(None, None, None)
