"""Leader election on an etcd lease, as a pure state machine driven by ticks.

:class:`Elector` holds one node's view: its lease, whether its node id is
registered, who leads and with which generation. Each :meth:`Elector.tick`
(every ``Timing.refresh_s``, given the monotonic time ``now``) refreshes the
lease, registers the node id, and reads or campaigns for the leader key,
through an :class:`ElectionBackend` (etcd in production, a fake in tests).
It never reads a clock, sleeps or starts a thread: the runner does.

The safety rule: a leader may program switches only until
``deadline = send time of the last successful refresh + TTL - margin``.
etcd restarts a lease's TTL when it *receives* a refresh, which is after we
sent it, so the lease cannot expire anywhere (and no other node can be
elected) before that deadline; the margin absorbs clock-rate differences and
a message already on its way to a switch. Callers must check
:meth:`ClusterState.may_program` with the current time before each switch
write, so a starved tick thread cannot stretch a leadership.
The generation id for OpenFlow roles is the leader key's create revision:
each election creates the key anew, so generations grow across leaders.
This module must not talk to switches or decide what a leader does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from controller.store.documents import StoreError

__all__ = [
    "Role",
    "Timing",
    "LeaderRecord",
    "ElectionBackend",
    "ClusterState",
    "NodeIdInUse",
    "Elector",
]


class Role(StrEnum):
    STARTING = "starting"  # no lease or node id yet
    STANDBY = "standby"
    LEADER = "leader"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Timing:
    """Lease timing. Defaults: TTL 2 s (etcd's minimum with its default
    heartbeat; a takeover takes about TTL plus etcd's 0.5 s expiry check plus
    one tick, so 2 s is the largest TTL that keeps a takeover under 3 s),
    refresh every 0.25 s (8 chances per TTL; a failed refresh is retried at
    once on another endpoint), margin 0.25 s."""

    ttl_s: int = 2
    refresh_s: float = 0.25
    margin_s: float = 0.25
    request_timeout_s: float = 0.5

    def __post_init__(self) -> None:
        if self.ttl_s < 2:
            raise ValueError(f"lease TTL {self.ttl_s} s: etcd's minimum is 2 s")
        if not 0 < self.margin_s < self.ttl_s / 2:
            raise ValueError(f"margin {self.margin_s} s must be in (0, TTL/2)")
        if not 0 < self.refresh_s <= (self.ttl_s - self.margin_s) / 4:
            raise ValueError(f"refresh period {self.refresh_s} s leaves too few refreshes per TTL")

    @property
    def node_id_wait_s(self) -> float:
        """How long a node id held by another instance may be a dead process's
        leftover: its lease expires within TTL plus etcd's expiry check."""
        return self.ttl_s + 1.5


@dataclass(frozen=True)
class LeaderRecord:
    node_id: str
    generation: int  # the leader key's create revision
    lease: int


class ElectionBackend(Protocol):
    """What the elector needs from etcd. Any method may raise :class:`StoreError`
    (unreachable, timed out); the elector treats that as a failed request."""

    def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (lease id, granted TTL)."""
        ...

    def keepalive(self, lease: int) -> int:
        """Refresh: the lease's TTL, or 0 if it has expired."""
        ...

    def register(self, node_id: str, instance: str, lease: int) -> str:
        """Bind ``node_id`` to ``instance`` under ``lease`` unless another instance
        holds it; returns the instance holding it afterwards."""
        ...

    def leader(self) -> LeaderRecord | None: ...

    def campaign(self, node_id: str, lease: int) -> LeaderRecord:
        """Become leader if nobody is; returns whoever leads afterwards."""
        ...

    def resign(self, lease: int) -> None:
        """Give up the lease (and with it leadership and the node id) at once."""
        ...


class NodeIdInUse(StoreError):
    """Another live instance runs with this node id."""


@dataclass(frozen=True)
class ClusterState:
    """One node's view of the cluster, immutable; published after each tick."""

    node_id: str
    role: Role = Role.STARTING
    leader_id: str | None = None
    generation_id: int | None = None  # the current leader's, whoever it is
    lease_id: int | None = None
    lease_ttl_s: int = 0
    deadline: float | None = None  # monotonic; a leader stops writing to switches here
    leader_changes: int = 0
    error: str = ""  # the last failed request, "" after a clean tick

    def lease_valid(self, now: float) -> bool:
        """True while this node's lease cannot have expired anywhere."""
        return self.deadline is not None and now < self.deadline

    def may_program(self, now: float) -> bool:
        """True while this node leads and its lease is certainly still valid."""
        return self.role is Role.LEADER and self.lease_valid(now)


class Elector:
    def __init__(
        self,
        backend: ElectionBackend,
        *,
        node_id: str,
        instance: str,
        timing: Timing | None = None,
    ) -> None:
        self.backend = backend
        self.timing = timing or Timing()
        self.instance = instance
        self._state = ClusterState(node_id=node_id)
        self._registered = False
        self._conflict_since: float | None = None

    @property
    def state(self) -> ClusterState:
        return self._state

    def _set(self, **changes: object) -> ClusterState:
        self._state = replace(self._state, **changes)  # type: ignore[arg-type]
        return self._state

    def tick(self, now: float) -> ClusterState:
        """One round: refresh the lease, register, read or win the leader key."""
        state = self._state
        if state.role is Role.STOPPED:
            return state
        self._set(error="")
        if not self._refresh(now):
            return self._state
        if not self._register(now):
            return self._state
        try:
            record = self.backend.leader()
            if record is None:
                record = self.backend.campaign(state.node_id, self._lease())
        except StoreError as exc:
            return self._set(error=str(exc))
        return self._observe(record, now)

    def resign(self) -> ClusterState:
        """Stop: give the lease back so another node takes over at once."""
        lease = self._state.lease_id
        self._set(role=Role.STOPPED, deadline=None)
        if lease is not None:
            try:
                self.backend.resign(lease)
            except StoreError as exc:
                self._set(error=f"resign: {exc}")  # the lease then lapses by itself
        return self._set(lease_id=None)

    # ------------------------------------------------------------------ steps

    def _lease(self) -> int:
        lease = self._state.lease_id
        assert lease is not None
        return lease

    def _refresh(self, now: float) -> bool:
        """Keep a lease; False when this tick can go no further."""
        state, timing = self._state, self.timing
        if state.lease_id is None:
            try:
                lease, ttl = self.backend.grant(timing.ttl_s)
            except StoreError as exc:
                self._set(error=str(exc))
                return False
            self._registered = False
            self._set(lease_id=lease, lease_ttl_s=ttl, deadline=now + ttl - timing.margin_s)
            return True
        try:
            ttl = self.backend.keepalive(state.lease_id)
        except StoreError as exc:
            self._set(error=str(exc))
            self.step_down_if_late(now)
            return False
        if ttl <= 0:
            # etcd dropped the lease (and with it our keys): start over with a new one.
            self._registered = False
            self._set(role=Role.STANDBY if state.role is Role.LEADER else state.role)
            self._set(lease_id=None, deadline=None, error="the lease expired in etcd")
            return False
        ttl = min(ttl, state.lease_ttl_s or ttl)
        self._set(deadline=now + ttl - timing.margin_s)
        return True

    def step_down_if_late(self, now: float) -> ClusterState:
        """A leader whose deadline passed becomes standby (without asking etcd)."""
        if self._state.role is Role.LEADER and not self._state.lease_valid(now):
            # Keep the lease id: if etcd still has it (e.g. etcd was electing its
            # own leader), the next refresh restores leadership, same generation.
            self._set(role=Role.STANDBY)
        return self._state

    def _register(self, now: float) -> bool:
        if self._registered:
            return True
        state = self._state
        try:
            holder = self.backend.register(state.node_id, self.instance, self._lease())
        except StoreError as exc:
            self._set(error=str(exc))
            return False
        if holder != self.instance:
            self._conflict_since = self._conflict_since if self._conflict_since else now
            if now - self._conflict_since >= self.timing.node_id_wait_s:
                raise NodeIdInUse(
                    f"node id {state.node_id!r} is in use by another running fabricd "
                    f"({holder}); give each node its own --node-id"
                )
            self._set(error=f"node id {state.node_id!r} is held by {holder}; waiting")
            return False
        self._registered = True
        self._conflict_since = None
        if state.role is Role.STARTING:
            self._set(role=Role.STANDBY)
        return True

    def _observe(self, record: LeaderRecord, now: float) -> ClusterState:
        state = self._state
        ours = record.lease == state.lease_id
        changes = state.leader_changes
        if record.generation != state.generation_id and (state.generation_id is not None or ours):
            changes += 1
        role = Role.LEADER if ours and state.lease_valid(now) else Role.STANDBY
        return self._set(
            role=role,
            leader_id=record.node_id,
            generation_id=record.generation,
            leader_changes=changes,
        )
