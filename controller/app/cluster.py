"""This daemon as a member of a controller cluster: election, node record, roles into the hub.

:class:`ClusterMember` starts the election (etcd lease, :mod:`controller.cluster`),
records where this node's API listens (so standbys can forward writes to the
leader), hands every change of role or leader to the engine through the
mailbox (the hub thread owns the engine), follows the shared store on behalf
of a standby, and answers status questions for ``fabricctl status``. A
single controller uses :class:`SingleMember`, which answers the same
questions. Nothing here talks to switches.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from controller.api.facade import Completed
from controller.cluster.election import ClusterState, Role
from controller.cluster.metrics import ClusterMetrics
from controller.cluster.runner import ElectionRunner, default_node_id, start_cluster_node
from controller.cluster.status import ClusterStatusView, NodeInfo
from controller.concurrency.mailbox import Mailbox
from controller.engine.engine import FabricEngine
from controller.engine.outputs import EngineOutput
from controller.errors import FabricError
from controller.store.documents import DocumentStore

__all__ = ["ClusterMember", "SingleMember", "NODE_KIND"]

log = logging.getLogger("fabricd.cluster")

NODE_KIND = "node"


class SingleMember:
    """The status of a controller that runs alone."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def is_leader(self) -> bool:
        return True

    def leader_address(self) -> str | None:
        return None

    def status(self) -> ClusterStatusView:
        return ClusterStatusView(mode="single", role="single", store=self.store.describe())

    def stop(self) -> None:
        return None


class ClusterMember:
    def __init__(
        self,
        *,
        endpoints: str,
        cluster: str,
        node_id: str | None,
        store: DocumentStore,
        engine: FabricEngine,
        mailbox: Mailbox,
        metrics: ClusterMetrics,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = endpoints
        self.cluster = cluster
        self.node_id = node_id
        self.store = store
        self.engine = engine
        self.mailbox = mailbox
        self.metrics = metrics
        self.mono = mono
        self.runner: ElectionRunner | None = None
        self._unwatch: Callable[[], None] | None = None

    def start(self, *, grpc_address: str, grpc_port: int) -> None:
        """Record this node's API address, join the election and follow the store.

        Raises :class:`~controller.store.documents.StoreError` (one line) when etcd
        cannot be reached or the node id is taken by a live node.
        """
        node_id = self.node_id or default_node_id(grpc_port)
        self.node_id = node_id
        self.engine.join_cluster(may_program=self._may_program)
        self.runner = runner = start_cluster_node(
            self.endpoints, cluster=self.cluster, node_id=node_id, on_change=self._changed
        )
        self.metrics.follow(lambda: runner.state, clock=self.mono)
        self.store.put(NODE_KIND, node_id, {"grpc": grpc_address})
        self._unwatch = self.store.watch(self._store_changed)
        self._changed(self.runner.state)  # the state reached while starting

    def _may_program(self, now: float) -> bool:
        return self.runner is not None and self.runner.state.may_program(now)

    def _changed(self, state: ClusterState) -> None:
        """Election thread: count it, and let the hub apply it."""
        self.metrics.observe(state)
        role = "leader" if state.role is Role.LEADER else "standby"
        generation = state.generation_id or 0
        engine, mono = self.engine, self.mono

        def apply() -> Completed:
            return Completed(None, engine.set_role(role, generation=generation, now=mono()))

        try:
            self.mailbox.submit(apply)
        except FabricError:  # shutting down: the next leader takes over anyway
            log.info("role change to %s not applied: the daemon is stopping", role)

    def _store_changed(self, change: Any) -> None:
        engine = self.engine

        def note() -> Completed:
            engine.store_changed()
            return Completed(None, EngineOutput())

        with contextlib.suppress(FabricError):  # shutting down
            self.mailbox.submit(note)

    def is_leader(self) -> bool:
        return self.runner is not None and self.runner.state.role is Role.LEADER

    def leader_address(self) -> str | None:
        state = self.runner.state if self.runner else None
        if state is None or not state.leader_id:
            return None
        try:
            doc = self.store.get(NODE_KIND, state.leader_id)
        except FabricError:
            return None
        address = doc.body.get("grpc")
        return str(address) if address else None

    def status(self) -> ClusterStatusView:
        if self.runner is None:
            return ClusterStatusView(mode="etcd", role="starting", store=self.store.describe())
        status = self.runner.status()
        state = status.state
        try:
            nodes = tuple(
                NodeInfo(d.name, str(d.body.get("grpc", "")), d.name == state.leader_id)
                for d in self.store.list(NODE_KIND)
            )
        except FabricError:
            nodes = ()
        return ClusterStatusView(
            mode="etcd",
            node_id=state.node_id,
            role=state.role.value,
            leader_id=state.leader_id or "",
            generation_id=state.generation_id or 0,
            lease_id=state.lease_id or 0,
            lease_ttl_s=state.lease_ttl_s,
            leader_changes=state.leader_changes,
            endpoints=tuple((e.endpoint, e.healthy, e.detail) for e in status.endpoints),
            nodes=nodes,
            store=self.store.describe(),
        )

    def stop(self) -> None:
        """Leave the election (the lease is given back: a standby takes over at once)."""
        if self._unwatch is not None:
            self._unwatch()
        if self.runner is not None:
            self.runner.stop()
