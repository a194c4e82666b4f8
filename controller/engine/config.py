"""EngineConfig: the settings of one :class:`~controller.engine.engine.FabricEngine`."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.engine.discovery import ConnectivityConfig
from controller.telemetry import CapacityConfig

__all__ = ["EngineConfig"]


@dataclass(frozen=True)
class EngineConfig:
    lldp_interval_s: float = 1.0
    packet_in_pps: int = 0
    poll_interval_s: float = 1.0
    # Share of the hub's time that reading statistics answers may take: when a
    # round of them costs more, polls are spaced further apart, up to the maximum.
    poll_budget: float = 0.5
    poll_interval_max_s: float = 30.0
    # The same for LLDP discovery: a round of probes that costs more than this
    # share of the hub's time spaces rounds further apart, up to the maximum.
    lldp_budget: float = 0.2
    lldp_interval_max_s: float = 30.0
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    ewma_alpha: float = 0.5
    congestion_threshold: float = 0.8
    clear_threshold: float = 0.6
    congestion_samples: int = 2
    seed: int = 0
    max_moves_per_round: int = 8
    default_demand_bps: float = 1e9
    flow_setup_budget: int = 500
    rebalance_period_s: float = 2.0
    failover_groups: bool = True
    sync_timeout_s: float = 10.0
    spread_l4: bool = True  # default traffic over several next hops by source-port bits
    local_repair: bool = True  # a spine's failed last hop bounces packets to another spine
    # The hub freezes the garbage collector's view once per poll interval and does
    # a full collection this often (EngineOutput.heap); False: never touch it.
    heap_freeze: bool = True
    heap_collect_s: float = 600.0
    # A rebalance round whose first fit is stuck re-places measured elephants jointly.
    joint_rebalance: bool = True

    def connectivity(self) -> ConnectivityConfig:
        lldp = self.lldp_interval_s
        return ConnectivityConfig(
            lldp_interval_s=lldp,
            link_timeout_s=3.5 * lldp,
            edge_grace_s=2.0 * lldp,
            warmup_s=max(4.0, 4.0 * lldp),
            packet_in_pps=self.packet_in_pps,
            spread_l4=self.spread_l4,
            local_repair=self.local_repair,
            lldp_budget=self.lldp_budget,
            lldp_interval_max_s=self.lldp_interval_max_s,
        )
