"""The election runner's start, change reports and stop; cluster metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from controller.cluster.election import ClusterState, Elector, NodeIdInUse, Role, Timing
from controller.cluster.metrics import ClusterMetrics
from controller.cluster.runner import ElectionRunner
from controller.devtools.fake_election import FakeBackend, FakeClock, FakeEtcd
from controller.store.documents import StoreUnavailable
from controller.store.etcdclient import EndpointHealth


def test_start_joins_reports_changes_and_stop_hands_over() -> None:
    clock = FakeClock()
    etcd = FakeEtcd(clock)
    seen: list[ClusterState] = []
    health = [EndpointHealth("http://127.0.0.1:1", True, "")]
    a = ElectionRunner(
        Elector(FakeBackend(etcd), node_id="a", instance="a1"),
        on_change=seen.append,
        clock=clock,
        health=lambda: health,
    )
    b = Elector(FakeBackend(etcd), node_id="b", instance="b1")
    assert a.start().role is Role.LEADER
    assert a.status().endpoints == tuple(health)
    assert b.tick(clock.now).role is Role.STANDBY
    a.stop()
    assert [s.role for s in seen] == [Role.LEADER, Role.STOPPED]
    assert b.tick(clock.now).role is Role.LEADER


def test_start_gives_up_with_the_last_error_when_etcd_is_unreachable() -> None:
    clock = FakeClock()
    backend = FakeBackend(FakeEtcd(clock), cut=True, cut_timeout_s=1.0)
    runner = ElectionRunner(Elector(backend, node_id="a", instance="a1"), clock=clock)
    with pytest.raises(StoreUnavailable, match="could not join: no etcd endpoint answered"):
        runner.start(timeout=3)


def test_start_refuses_a_node_id_held_by_a_live_node() -> None:
    clock = FakeClock()
    etcd = FakeEtcd(clock)
    holder = Elector(FakeBackend(etcd), node_id="n1", instance="first")
    holder.tick(clock.now)
    twin = Elector(FakeBackend(etcd, latency_s=Timing().refresh_s), node_id="n1", instance="2nd")
    runner = ElectionRunner(twin, clock=clock)
    original = twin.tick

    def tick(now: float) -> ClusterState:
        holder.tick(clock.now)  # the other node keeps refreshing meanwhile
        return original(now)

    twin.tick = tick  # type: ignore[method-assign]
    with pytest.raises(NodeIdInUse, match="node id 'n1' is in use"):
        runner.start(timeout=60)


def test_metrics_follow_the_published_state() -> None:
    registry = CollectorRegistry()
    metrics = ClusterMetrics(registry)
    base = ClusterState(node_id="a")
    metrics.observe(base)
    assert registry.get_sample_value("fabric_cluster_leader") == 0
    metrics.observe(ClusterState(node_id="a", role=Role.LEADER, leader_changes=1))
    metrics.observe(ClusterState(node_id="a", role=Role.LEADER, leader_changes=1))
    assert registry.get_sample_value("fabric_cluster_leader") == 1
    assert registry.get_sample_value("fabric_cluster_leader_changes_total") == 1
    metrics.observe(ClusterState(node_id="a", role=Role.STANDBY, leader_changes=3))
    assert registry.get_sample_value("fabric_cluster_leader") == 0
    assert registry.get_sample_value("fabric_cluster_leader_changes_total") == 3


def test_the_leader_gauge_follows_the_live_lease_once_given_it() -> None:
    registry = CollectorRegistry()
    metrics = ClusterMetrics(registry)
    now = [5.0]
    live = [ClusterState(node_id="a", role=Role.LEADER, deadline=10.0)]
    metrics.observe(live[0])
    metrics.follow(lambda: live[0], clock=lambda: now[0])
    assert registry.get_sample_value("fabric_cluster_leader") == 1
    # The deadline passes while the election thread is stuck: nothing is published,
    # and the gauge still drops, as the switch writes stop.
    now[0] = 10.5
    assert registry.get_sample_value("fabric_cluster_leader") == 0
    live[0] = ClusterState(node_id="a", role=Role.LEADER, deadline=12.0)  # a refresh
    assert registry.get_sample_value("fabric_cluster_leader") == 1
    live[0] = ClusterState(node_id="a", role=Role.STANDBY, deadline=12.0)
    assert registry.get_sample_value("fabric_cluster_leader") == 0
