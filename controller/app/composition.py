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

from controller.api.facade import EngineFacade
from controller.app.clock import Clock
from controller.app.config import FabricdConfig
from controller.app.publisher import Publisher
from controller.concurrency.eventbus import EventBus
from controller.concurrency.mailbox import Mailbox
from controller.engine.engine import EngineConfig, FabricEngine
from controller.engine.hoststore import load_hosts
from controller.observability.metrics import FabricMetrics
from controller.policy.parse import load_policy_dir
from controller.policy.sqlite_store import SqlitePolicyStore
from controller.policy.store import PolicyStore
from controller.telemetry import CapacityConfig

__all__ = ["HubContext", "Assembly", "assemble", "engine_config"]

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
    store: PolicyStore
    engine: FabricEngine
    publisher: Publisher
    mailbox: Mailbox
    facade: EngineFacade

    @property
    def hub(self) -> HubContext:
        return HubContext(self.engine, self.mailbox, self.publisher, self.metrics, self.clock)

    def close(self) -> None:
        self.mailbox.close()
        self.store.close()


def engine_config(config: FabricdConfig) -> EngineConfig:
    capacity = (config.link_capacity_mbps or 1000.0) * 1e6
    return EngineConfig(
        lldp_interval_s=config.lldp_interval,
        packet_in_pps=config.packet_in_rate,
        poll_interval_s=config.poll_interval,
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
    """Every part, wired. Raises ValueError (one line) for a bad state dir or store."""
    clock = Clock()
    metrics = metrics or FabricMetrics()
    state_dir = Path(config.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    hosts_file = state_dir / "hosts.json"
    store = open_store(state_dir / "policies.db", Path(config.policies))
    try:
        engine = FabricEngine(
            engine_config(config),
            store=store,
            metrics=metrics,
            now=clock.mono(),
            hosts=load_hosts(hosts_file),
        )
        publisher = Publisher(
            engine, bus=EventBus(), metrics=metrics, clock=clock, hosts_file=hosts_file
        )
        mailbox = Mailbox()
    except BaseException:
        store.close()
        raise
    facade = EngineFacade(
        engine=engine, hub=mailbox, publisher=publisher, mono=clock.mono, metrics=metrics
    )
    return Assembly(config, clock, metrics, store, engine, publisher, mailbox, facade)


def open_store(path: Path, defaults_dir: Path) -> SqlitePolicyStore:
    """The policy store; a new one is seeded from the default policy files."""
    store = SqlitePolicyStore(path)
    try:
        if not store.list():
            defaults = load_policy_dir(defaults_dir) if defaults_dir.is_dir() else []
            if not defaults:
                log.warning("no default policies in %s: all traffic uses hash ECMP", defaults_dir)
            store.seed_if_empty(defaults)
    except BaseException:
        store.close()
        raise
    return store
