"""Cluster metrics: ``fabric_cluster_leader`` and ``fabric_cluster_leader_changes_total``.

:class:`ClusterMetrics` registers both on a registry (the daemon's, or a
test's own) and :meth:`ClusterMetrics.observe` follows a
:class:`~controller.cluster.election.ClusterState`: call it with every
published state. It must not decide anything about leadership.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from controller.cluster.election import ClusterState, Role

__all__ = ["ClusterMetrics"]


class ClusterMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = REGISTRY if registry is None else registry
        self.leader = Gauge(
            "fabric_cluster_leader",
            "1 while this fabricd is the cluster leader (OpenFlow master), else 0",
            registry=registry,
        )
        self.leader_changes = Counter(
            "fabric_cluster_leader_changes_total",
            "Leader changes (new leader generations) this fabricd has seen",
            registry=registry,
        )
        self._changes = 0

    def observe(self, state: ClusterState) -> None:
        self.leader.set(1 if state.role is Role.LEADER else 0)
        if state.leader_changes > self._changes:
            self.leader_changes.inc(state.leader_changes - self._changes)
            self._changes = state.leader_changes
