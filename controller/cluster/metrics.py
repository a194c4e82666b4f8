"""Cluster metrics: ``fabric_cluster_leader`` and ``fabric_cluster_leader_changes_total``.

:class:`ClusterMetrics` registers both on a registry (the daemon's, or a
test's own) and :meth:`ClusterMetrics.observe` follows a
:class:`~controller.cluster.election.ClusterState`: call it with every
published state. Once :meth:`ClusterMetrics.follow` is given the election's
live state, ``fabric_cluster_leader`` is read at scrape time from the same
answer that gates switch writes (leader with a lease certainly valid now), so
it drops at the lease deadline even while the election thread waits on an
unreachable etcd. It must not decide anything about leadership.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from controller.cluster.election import ClusterState, Role

__all__ = ["ClusterMetrics"]


class ClusterMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = REGISTRY if registry is None else registry
        self.leader = Gauge(
            "fabric_cluster_leader",
            "1 while this fabricd is the cluster leader with a valid lease (it may program "
            "switches), else 0",
            registry=registry,
        )
        self.leader.set_function(self._leading)
        self._role = Role.STOPPED
        self._live: Callable[[], ClusterState] | None = None
        self._clock: Callable[[], float] = time.monotonic
        self.leader_changes = Counter(
            "fabric_cluster_leader_changes_total",
            "Leader changes (new leader generations) this fabricd has seen",
            registry=registry,
        )
        self._changes = 0

    def follow(
        self, live: Callable[[], ClusterState], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Read leadership from ``live()`` (the elector's current state) at scrape time."""
        self._live, self._clock = live, clock

    def _leading(self) -> float:
        if self._live is None:
            return 1.0 if self._role is Role.LEADER else 0.0
        return 1.0 if self._live().may_program(self._clock()) else 0.0

    def observe(self, state: ClusterState) -> None:
        self._role = state.role
        if state.leader_changes > self._changes:
            self.leader_changes.inc(state.leader_changes - self._changes)
            self._changes = state.leader_changes
