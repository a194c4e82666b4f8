"""Runs an :class:`Elector` in real time and publishes what the daemon shows.

:class:`ElectionRunner` ticks the elector on an OS thread of its own every
refresh period, wakes at the lease deadline so a step-down is published on
time even when a tick is stuck waiting on etcd, and reports each change of
role, leader or generation to ``on_change`` (on its thread: hand it to the
hub through the mailbox). :meth:`ElectionRunner.status` adds the etcd
endpoints' health, checked every few seconds, for ``fabricctl status``.
:func:`start_cluster_node` is the one call a daemon makes. This module must
not touch switches: the daemon gates every switch write on
``runner.state.may_program(time.monotonic())``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from controller.cluster.election import ClusterState, Elector, NodeIdInUse, Role, Timing
from controller.cluster.etcd_backend import EtcdElection
from controller.store.documents import StoreError, StoreUnavailable
from controller.store.etcdclient import EndpointHealth, EtcdClient

__all__ = ["ClusterStatus", "ElectionRunner", "start_cluster_node", "default_node_id"]

log = logging.getLogger("fabricd.cluster")


def default_node_id(port: int) -> str:
    """``<host name>:<port>``: unique per machine and listening port."""
    return f"{socket.gethostname()}:{port}"


@dataclass(frozen=True)
class ClusterStatus:
    state: ClusterState
    endpoints: tuple[EndpointHealth, ...]


class ElectionRunner:
    def __init__(
        self,
        elector: Elector,
        *,
        health: Callable[[], list[EndpointHealth]] | None = None,
        on_change: Callable[[ClusterState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        health_period_s: float = 3.0,
    ) -> None:
        self.elector = elector
        self._health = health
        self._on_change = on_change
        self._clock = clock
        self._health_period = health_period_s
        self._endpoints: tuple[EndpointHealth, ...] = ()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[Role, str | None, int | None] | None = None

    @property
    def state(self) -> ClusterState:
        return self.elector.state

    def status(self) -> ClusterStatus:
        return ClusterStatus(self.elector.state, self._endpoints)

    def start(self, *, timeout: float | None = None) -> ClusterState:
        """Tick until the node is registered (standby or leader), then go on in
        the background. Raises :class:`NodeIdInUse`, or :class:`StoreUnavailable`
        with the last error when etcd cannot be reached within ``timeout``."""
        timing = self.elector.timing
        limit = self._clock() + (timeout if timeout else timing.node_id_wait_s + 2.0)
        while True:
            state = self._tick()
            if state.role in (Role.STANDBY, Role.LEADER):
                break
            if self._clock() >= limit:
                raise StoreUnavailable(f"cluster: could not join: {state.error or 'no answer'}")
            time.sleep(timing.refresh_s)
        self._refresh_health()
        self._thread = threading.Thread(target=self._run, daemon=True, name="cluster-election")
        self._thread.start()
        return state

    def stop(self, *, resign: bool = True) -> None:
        """Stop ticking; ``resign`` gives the lease back so a standby takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if resign:
            self._publish(self.elector.resign())

    def _tick(self) -> ClusterState:
        state = self.elector.tick(self._clock())
        self._publish(state)
        return state

    def _publish(self, state: ClusterState) -> None:
        key = (state.role, state.leader_id, state.generation_id)
        if key == self._last:
            return
        self._last = key
        log.info(
            "cluster: %s is %s; leader %s (generation %s)",
            state.node_id,
            state.role.value,
            state.leader_id or "unknown",
            state.generation_id,
        )
        if self._on_change is not None:
            try:
                self._on_change(state)
            except Exception:
                log.exception("cluster: the role change handler failed")

    def _refresh_health(self) -> None:
        if self._health is not None:
            self._endpoints = tuple(self._health())

    def _run(self) -> None:
        timing = self.elector.timing
        next_health = self._clock() + self._health_period
        while not self._stop.is_set():
            started = self._clock()
            try:
                state = self._tick()
            except NodeIdInUse as exc:
                # Someone took our node id while our lease was lost: never lead twice.
                log.error("cluster: %s; standing down", exc)
                self._publish(self.elector.resign())
                return
            if started >= next_health:
                self._refresh_health()
                next_health = started + self._health_period
            wake = started + timing.refresh_s
            if state.role is Role.LEADER and state.deadline is not None:
                wake = min(wake, state.deadline)
            self._stop.wait(max(0.0, wake - self._clock()))
            if state.role is Role.LEADER and not state.may_program(self._clock()):
                self._publish(self.elector.step_down_if_late(self._clock()))


def start_cluster_node(
    endpoints: str,
    *,
    cluster: str,
    node_id: str,
    on_change: Callable[[ClusterState], None] | None = None,
    timing: Timing | None = None,
) -> ElectionRunner:
    """Join the election of ``cluster`` as ``node_id``; returns the running runner.

    Raises :class:`StoreError` (one line) when etcd is unreachable or the node id
    is taken by a live node.
    """
    timing = timing or Timing()
    client = EtcdClient(
        endpoints, timeout=timing.request_timeout_s, attempt_timeout=timing.request_timeout_s / 2
    )
    elector = Elector(
        EtcdElection(client, cluster=cluster, timeout=timing.request_timeout_s),
        node_id=node_id,
        # Unique per process start, readable in the "node id in use" message.
        instance=f"pid {os.getpid()} on {socket.gethostname()}, {uuid.uuid4().hex[:8]}",
        timing=timing,
    )
    runner = ElectionRunner(elector, health=client.health, on_change=on_change)
    try:
        runner.start()
    except StoreError as exc:
        raise type(exc)(f"etcd {client.describe()}: {exc}") from None
    return runner
