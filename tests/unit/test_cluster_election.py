"""Leader election and step-down on a fake clock and a fake etcd."""

from __future__ import annotations

import pytest

from controller.cluster.election import ClusterState, Elector, NodeIdInUse, Role, Timing
from controller.devtools.election_contract import ElectionBackendContract
from controller.devtools.fake_election import FakeBackend, FakeClock, FakeEtcd

TIMING = Timing()  # TTL 2 s, refresh 0.25 s, margin 0.25 s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def etcd(clock: FakeClock) -> FakeEtcd:
    return FakeEtcd(clock)


class TestFakeBackend(ElectionBackendContract):
    @pytest.fixture
    def backends(self, etcd: FakeEtcd):  # type: ignore[no-untyped-def]
        return lambda: FakeBackend(etcd)

    @pytest.fixture
    def wait(self, clock: FakeClock):  # type: ignore[no-untyped-def]
        return clock.advance


def node(etcd: FakeEtcd, name: str, *, instance: str | None = None) -> tuple[Elector, FakeBackend]:
    backend = FakeBackend(etcd)
    return Elector(backend, node_id=name, instance=instance or f"{name}-1", timing=TIMING), backend


def run(
    clock: FakeClock, electors: list[Elector], seconds: float
) -> list[tuple[float, list[ClusterState]]]:
    """Tick every elector once per refresh period for ``seconds``; the states seen."""
    seen = []
    end = clock.now + seconds
    while clock.now < end:
        start = clock.now
        states = [e.tick(clock.now) for e in electors]
        seen.append((clock.now, states))
        clock.now = max(clock.now, start + TIMING.refresh_s)
    return seen


def test_a_lone_node_leads_with_a_generation_from_etcd(clock: FakeClock, etcd: FakeEtcd) -> None:
    a, _ = node(etcd, "a")
    state = a.tick(clock.now)
    assert state.role is Role.LEADER and state.leader_id == "a"
    assert state.generation_id == etcd.leader_key.generation  # type: ignore[union-attr]
    assert state.may_program(clock.now)
    assert state.deadline == pytest.approx(clock.now + 2 - 0.25)
    assert state.leader_changes == 1


def test_a_second_node_stands_by_and_knows_the_leader(clock: FakeClock, etcd: FakeEtcd) -> None:
    a, _ = node(etcd, "a")
    b, _ = node(etcd, "b")
    a.tick(clock.now)
    state = b.tick(clock.now)
    assert state.role is Role.STANDBY and not state.may_program(clock.now)
    assert (state.leader_id, state.generation_id) == ("a", a.state.generation_id)
    assert state.leader_changes == 0  # a leader found at start is not a change
    run(clock, [a, b], 10)
    assert a.state.role is Role.LEADER and b.state.role is Role.STANDBY
    assert a.state.leader_changes == 1 and b.state.leader_changes == 0


def test_a_killed_leader_is_replaced_within_three_seconds(clock: FakeClock, etcd: FakeEtcd) -> None:
    a, _ = node(etcd, "a")
    b, _ = node(etcd, "b")
    run(clock, [a, b], 2)
    old = a.state.generation_id
    killed_at = clock.now  # a's last refresh was at most one period ago
    seen = run(clock, [b], 5)
    took_over = next(t for t, (s,) in seen if s.role is Role.LEADER)
    assert took_over - killed_at < 3.0
    assert b.state.generation_id is not None and old is not None
    assert b.state.generation_id > old
    assert b.state.leader_changes == 1


def test_a_leader_cut_off_from_etcd_steps_down_before_anyone_else_can_lead(
    clock: FakeClock, etcd: FakeEtcd
) -> None:
    a, a_link = node(etcd, "a")
    b, _ = node(etcd, "b")
    run(clock, [a, b], 2)
    last_refresh_sent = clock.now - TIMING.refresh_s  # a's last successful refresh
    a_link.cut = True
    stepped_down = b_leads = None
    while b_leads is None:
        now = clock.now
        if stepped_down is None and not a.state.may_program(now):
            stepped_down = now
        a.tick(clock.now)
        if b.tick(clock.now).role is Role.LEADER:
            b_leads = clock.now
        clock.advance(0.01)
    assert stepped_down is not None
    assert stepped_down <= last_refresh_sent + TIMING.ttl_s
    assert stepped_down < b_leads
    assert a.state.role is Role.STANDBY  # the tick published it, not only may_program


def test_a_short_etcd_outage_keeps_the_same_leader(clock: FakeClock, etcd: FakeEtcd) -> None:
    a, a_link = node(etcd, "a")
    b, _ = node(etcd, "b")
    run(clock, [a, b], 2)
    generation = a.state.generation_id
    a_link.cut = True
    clock.advance(1.0)  # shorter than TTL - margin after the last refresh
    a_link.cut = False
    run(clock, [a, b], 3)
    assert a.state.role is Role.LEADER and a.state.generation_id == generation
    assert b.state.leader_changes == 0


def test_leadership_resumes_with_the_same_generation_if_etcd_kept_the_lease(
    clock: FakeClock, etcd: FakeEtcd
) -> None:
    """Stepping down is local; when the lease survived (e.g. etcd was electing its
    own leader), the same node leads again without a new generation."""
    a, a_link = node(etcd, "a")
    a.tick(clock.now)
    generation = a.state.generation_id
    a_link.cut, a_link.cut_timeout_s = True, 0.0
    clock.advance(1.8)  # past the local deadline (1.75 s); etcd keeps the lease until 2 s
    assert not a.state.may_program(clock.now)
    assert a.tick(clock.now).role is Role.STANDBY
    a_link.cut = False
    state = a.tick(clock.now)
    assert state.role is Role.LEADER and state.generation_id == generation


def test_an_expired_lease_is_replaced_and_the_generation_grows(
    clock: FakeClock, etcd: FakeEtcd
) -> None:
    a, a_link = node(etcd, "a")
    a.tick(clock.now)
    generation = a.state.generation_id
    assert generation is not None
    a_link.cut = True
    for _ in range(8):
        a.tick(clock.now)
    a_link.cut = False
    a.tick(clock.now)  # keepalive says expired
    assert a.state.lease_id is None and a.state.role is Role.STANDBY
    state = a.tick(clock.now)
    assert state.role is Role.LEADER and state.generation_id is not None
    assert state.generation_id > generation
    assert state.leader_changes == 2


def test_a_second_node_with_the_same_id_refuses_to_start(clock: FakeClock, etcd: FakeEtcd) -> None:
    a, _ = node(etcd, "n1", instance="first")
    twin, _ = node(etcd, "n1", instance="second")
    a.tick(clock.now)
    with pytest.raises(NodeIdInUse) as info:
        for _ in range(100):
            a.tick(clock.now)
            assert twin.tick(clock.now).role is Role.STARTING
            clock.advance(TIMING.refresh_s)
    assert "node id 'n1' is in use by another running fabricd (first)" in str(info.value)


def test_a_restarted_node_gets_its_id_back_once_the_old_lease_lapses(
    clock: FakeClock, etcd: FakeEtcd
) -> None:
    old, _ = node(etcd, "n1", instance="before-restart")
    run(clock, [old], 1)  # then it dies (no more ticks) without resigning
    new, _ = node(etcd, "n1", instance="after-restart")
    seen = run(clock, [new], TIMING.node_id_wait_s)
    assert new.state.role is Role.LEADER
    assert any(s.role is Role.STARTING for _, (s,) in seen)


def test_resigning_hands_over_at_once(clock: FakeClock, etcd: FakeEtcd) -> None:
    a, _ = node(etcd, "a")
    b, _ = node(etcd, "b")
    run(clock, [a, b], 1)
    assert a.resign().role is Role.STOPPED
    assert b.tick(clock.now).role is Role.LEADER
    assert a.tick(clock.now).role is Role.STOPPED


def test_the_deadline_counts_from_when_the_refresh_was_sent(
    clock: FakeClock, etcd: FakeEtcd
) -> None:
    a, a_link = node(etcd, "a")
    a_link.latency_s = 0.4
    sent = clock.now
    state = a.tick(sent)
    assert state.role is Role.LEADER
    assert clock.now > sent  # the requests took time
    assert state.deadline == pytest.approx(sent + TIMING.ttl_s - TIMING.margin_s)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl_s": 1}, "etcd's minimum is 2 s"),
        ({"margin_s": 1.5}, "margin"),
        ({"refresh_s": 1.0}, "too few refreshes"),
    ],
)
def test_timing_is_checked(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Timing(**kwargs)  # type: ignore[arg-type]
