"""A fake etcd for election tests: leases on a fake clock, partitions on demand.

:class:`FakeEtcd` keeps what etcd keeps for an election (leases with expiry
times, the leader key with its create revision, node-id keys) and expires
leases the way etcd does: a refresh restarts the TTL when it is *received*,
and expiry is noticed by a periodic check (etcd runs it every 0.5 s), never
early. Each node talks to it through a :class:`FakeBackend`, which can be
cut off (every call raises, as an unreachable etcd does) or given latency
(the clock moves while a request is under way). The contract tests in
:mod:`controller.devtools.election_contract` run on this fake and on the real
etcd adapter, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from controller.cluster.election import LeaderRecord
from controller.store.documents import StoreUnavailable

__all__ = ["FakeClock", "FakeEtcd", "FakeBackend"]


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeEtcd:
    clock: FakeClock
    expiry_check_s: float = 0.5  # etcd's lease expiry loop period
    leases: dict[int, tuple[int, float]] = field(default_factory=dict)  # id -> (ttl, expiry)
    leader_key: LeaderRecord | None = None
    nodes: dict[str, tuple[str, int]] = field(default_factory=dict)  # node id -> (instance, lease)
    revision: int = 1
    _next_lease: int = 100

    def expire(self) -> None:
        # etcd only notices expiry at its next check after the deadline.
        now = self.clock.now
        tick = self.expiry_check_s
        for lease, (_, expiry) in list(self.leases.items()):
            noticed = math.ceil(expiry / tick) * tick if tick else expiry
            if now >= noticed:
                self.revoke(lease)

    def revoke(self, lease: int) -> None:
        self.leases.pop(lease, None)
        if self.leader_key is not None and self.leader_key.lease == lease:
            self.leader_key = None
            self.revision += 1
        for node, (_, held) in list(self.nodes.items()):
            if held == lease:
                del self.nodes[node]
                self.revision += 1


@dataclass
class FakeBackend:
    """One node's connection to :class:`FakeEtcd`."""

    etcd: FakeEtcd
    cut: bool = False
    cut_timeout_s: float = 0.5  # how long a call to an unreachable etcd takes to fail
    latency_s: float = 0.0
    calls: int = 0

    def _call(self) -> FakeEtcd:
        self.calls += 1
        if self.cut:
            self.etcd.clock.advance(self.cut_timeout_s)
            raise StoreUnavailable("no etcd endpoint answered (cut off)")
        self.etcd.clock.advance(self.latency_s / 2)  # on its way to etcd
        self.etcd.expire()
        return self.etcd

    def _answer(self) -> None:
        self.etcd.clock.advance(self.latency_s / 2)

    def grant(self, ttl: int) -> tuple[int, int]:
        etcd = self._call()
        ttl = max(ttl, 2)
        etcd._next_lease += 1
        etcd.leases[etcd._next_lease] = (ttl, etcd.clock.now + ttl)
        self._answer()
        return etcd._next_lease, ttl

    def keepalive(self, lease: int) -> int:
        etcd = self._call()
        found = etcd.leases.get(lease)
        if found is None:
            self._answer()
            return 0
        etcd.leases[lease] = (found[0], etcd.clock.now + found[0])
        self._answer()
        return found[0]

    def register(self, node_id: str, instance: str, lease: int) -> str:
        etcd = self._call()
        holder = etcd.nodes.get(node_id)
        if holder is None or holder[0] == instance:
            if lease in etcd.leases:
                etcd.nodes[node_id] = (instance, lease)
                etcd.revision += 1
            holder = (instance, lease)
        self._answer()
        return holder[0]

    def leader(self) -> LeaderRecord | None:
        etcd = self._call()
        self._answer()
        return etcd.leader_key

    def campaign(self, node_id: str, lease: int) -> LeaderRecord:
        etcd = self._call()
        if etcd.leader_key is None and lease in etcd.leases:
            etcd.revision += 1
            etcd.leader_key = LeaderRecord(node_id, etcd.revision, lease)
        self._answer()
        if etcd.leader_key is None:
            raise StoreUnavailable("lease not found")
        return etcd.leader_key

    def resign(self, lease: int) -> None:
        etcd = self._call()
        etcd.revoke(lease)
        self._answer()
