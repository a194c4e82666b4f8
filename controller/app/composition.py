"""Wiring at start: build every part fabricd runs from its configuration.

:func:`assemble` opens the state directory and the policy store, builds the
engine, the publisher, the mailbox, the event bus and the API facade, and
returns them together. :class:`HubContext` is the narrow, typed set of
objects the OpenFlow shim gets (the engine, the mailbox, the publisher and
the message counters); nothing else of the application reaches the shim.
Nothing here runs at steady state: it is called once, then closed once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.api.facade import EngineFacade
from controller.app.clock import Clock
from controller.app.cluster import ClusterMember, SingleMember
from controller.app.config import FabricdConfig
from controller.app.publisher import Publisher
from controller.cluster.metrics import ClusterMetrics
from controller.concurrency.eventbus import EventBus
from controller.concurrency.mailbox import Mailbox
from controller.engine.engine import EngineConfig, FabricEngine
from controller.observability.metrics import FabricMetrics
from controller.policy.parse import load_policy_dir
from controller.store.documents import DocumentStore
from controller.store.etcd import EtcdStore
from controller.store.etcdclient import EtcdClient
from controller.store.hosts import HostView
from controller.store.policies import PolicyView
from controller.store.secrets import shared_secret
from controller.store.statedir import StateDir, open_state_dir
from controller.store.uplinks import UplinkView
from controller.telemetry import CapacityConfig

__all__ = ["HubContext", "Assembly", "assemble", "engine_config", "seed_policies"]

log = logging.getLogger("fabricd")


@dataclass(frozen=True)
class HubContext:
    """What the OpenFlow shim may use: it translates events for ``engine``, runs
    ``mailbox`` work, reports every output it sent to ``publisher``."""

    engine: FabricEngine
    mailbox: Mailbox
    publisher: Publisher
    metrics: FabricMetrics
    clock: Clock


@dataclass
class Assembly:
    config: FabricdConfig
    clock: Clock
    metrics: FabricMetrics
    store: DocumentStore
    engine: FabricEngine
    publisher: Publisher
    mailbox: Mailbox
    facade: EngineFacade
    member: ClusterMember | SingleMember
    state: StateDir | None = None  # single node: the locked state directory

    @property
    def hub(self) -> HubContext:
        return HubContext(self.engine, self.mailbox, self.publisher, self.metrics, self.clock)

    def close(self) -> None:
        self.member.stop()
        self.mailbox.close()
        if self.state is not None:
            self.state.close()
        else:
            self.store.close()


def engine_config(config: FabricdConfig) -> EngineConfig:
    capacity = (config.link_capacity_mbps or 1000.0) * 1e6
    return EngineConfig(
        lldp_interval_s=config.lldp_interval,
        lldp_budget=config.lldp_budget,
        lldp_interval_max_s=config.lldp_interval_max,
        packet_in_pps=config.packet_in_rate,
        poll_interval_s=config.poll_interval,
        poll_budget=config.poll_budget,
        poll_interval_max_s=config.poll_interval_max,
        capacity=CapacityConfig.from_config(
            config.link_capacity_mbps, config.link_capacity_overrides
        ),
        ewma_alpha=config.ewma_alpha,
        congestion_threshold=config.congestion_threshold,
        clear_threshold=config.clear_threshold,
        congestion_samples=config.congestion_samples,
        seed=config.seed,
        max_moves_per_round=config.max_moves_per_round,
        default_demand_bps=capacity,
        flow_setup_budget=config.flow_setup_budget,
        rebalance_period_s=config.rebalance_period,
        failover_groups=config.failover_groups,
        spread_l4=config.spread_l4,
        local_repair=config.local_repair,
    )


def assemble(config: FabricdConfig, *, metrics: FabricMetrics | None = None) -> Assembly:
    """Every part, wired. Raises StoreError (one line) for a locked, damaged or foreign
    state directory or an unreachable etcd, ValueError (one line) for bad default
    policy files. A cluster member joins the election later (:meth:`ClusterMember.start`),
    once its API listens."""
    clock = Clock()
    metrics = metrics or FabricMetrics()
    state: StateDir | None = None
    if config.cluster_etcd:
        store: DocumentStore = EtcdStore(
            EtcdClient(config.cluster_etcd), cluster=config.cluster_name
        )
    else:
        state = open_state_dir(config.state_dir)
        store = state.store
    try:
        seed_policies(store, Path(config.policies))
        lldp: dict[str, Any] = {}
        if config.cluster_etcd:  # a standby checks the leader's probes: one key, one clock
            lldp = {
                "lldp_key": shared_secret(store, "lldp"),
                "lldp_clock_offset": clock.wall() - clock.mono(),
            }
        engine = FabricEngine(
            engine_config(config), store=store, metrics=metrics, now=clock.mono(), **lldp
        )
        publisher = Publisher(
            engine,
            bus=EventBus(),
            metrics=metrics,
            clock=clock,
            hosts=HostView(store),
            uplinks=UplinkView(store),
        )
        mailbox = Mailbox()
    except BaseException:
        (state.close if state is not None else store.close)()
        raise
    member: ClusterMember | SingleMember = SingleMember(store)
    if config.cluster_etcd:
        member = ClusterMember(
            endpoints=config.cluster_etcd,
            cluster=config.cluster_name,
            node_id=config.node_id,
            store=store,
            engine=engine,
            mailbox=mailbox,
            metrics=ClusterMetrics(metrics.registry),
            mono=clock.mono,
        )
    facade = EngineFacade(
        engine=engine,
        hub=mailbox,
        publisher=publisher,
        mono=clock.mono,
        metrics=metrics,
        cluster=member.status,
    )
    return Assembly(
        config, clock, metrics, store, engine, publisher, mailbox, facade, member, state
    )


def seed_policies(store: DocumentStore, defaults_dir: Path) -> None:
    """A store never written starts with the default policy files (once its content
    exists, it wins, even if everything was deleted)."""
    policies = PolicyView(store)
    if policies.list():
        return
    defaults = load_policy_dir(defaults_dir) if defaults_dir.is_dir() else []
    if not defaults:
        log.warning("no default policies in %s: all traffic uses hash ECMP", defaults_dir)
    policies.seed_if_empty(defaults)
