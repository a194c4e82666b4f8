"""Runtime: everything fabricd runs, wired together, and the API facade.

Two kinds of callers meet here, and they never share mutable objects:
- the hub thread (the Ryu shim) drives the core and calls :meth:`absorb`
  and :meth:`publish`;
- API threads call the facade methods: reads return the latest published
  views, writes go through the :class:`Mailbox` and run in the hub.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from controller.app.config import FabricdConfig
from controller.concurrency.eventbus import EventBus
from controller.concurrency.mailbox import Mailbox
from controller.engine.connectivity import Connectivity, ConnectivityConfig
from controller.engine.controller import FabricController
from controller.engine.hoststore import load_hosts, save_hosts
from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import EngineOutput
from controller.engine.placement import FlowPlacer
from controller.engine.policies import PolicyManager
from controller.engine.snapshot import build_topology_view
from controller.engine.views import (
    ApplyResult,
    DrainResult,
    EventKind,
    FlowView,
    LinkView,
    PathExplanation,
    TopologyView,
)
from controller.errors import FabricError, InvalidArgument, NotFound, VersionConflict
from controller.fabric.model import FiveTuple
from controller.observability.metrics import FabricMetrics
from controller.policy.model import Policy
from controller.policy.parse import load_policy_dir
from controller.policy.sqlite_store import SqlitePolicyStore
from controller.te.engineer import TrafficEngineer
from controller.telemetry import CapacityConfig, CongestionEvent

__all__ = ["Runtime", "Clock"]

log = logging.getLogger("fabricd.runtime")
T = TypeVar("T")


@dataclass(frozen=True)
class Clock:
    """Monotonic time for the core, wall time for what users see."""

    mono: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time

    def to_wall(self, mono_t: float) -> float:
        return self.wall() - (self.mono() - mono_t) if mono_t else 0.0


@dataclass(frozen=True)
class Views:
    topology: TopologyView = field(default_factory=TopologyView)
    flows: tuple[FlowView, ...] = ()
    policies: tuple[Policy, ...] = ()


class Runtime:
    def __init__(self, config: FabricdConfig, *, metrics: FabricMetrics | None = None) -> None:
        self.config = config
        self.clock = Clock()
        self.started_at = self.clock.mono()
        self.metrics = metrics or FabricMetrics()
        self.events = EventBus()
        self.mailbox = Mailbox()
        lldp = config.lldp_interval
        self.core = Connectivity(
            ConnectivityConfig(
                lldp_interval_s=lldp,
                link_timeout_s=3.5 * lldp,
                edge_grace_s=2.0 * lldp,
                warmup_s=max(4.0, 4.0 * lldp),
                packet_in_pps=config.packet_in_rate,
            )
        )
        self.monitor = LinkMonitor(
            capacity=CapacityConfig.from_config(
                config.link_capacity_mbps, config.link_capacity_overrides
            ),
            alpha=config.ewma_alpha,
            threshold=config.congestion_threshold,
            clear_threshold=config.clear_threshold,
            samples=config.congestion_samples,
        )
        self.state_dir = Path(config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._hosts_file = self.state_dir / "hosts.json"
        self.core.restore_hosts(load_hosts(self._hosts_file))
        self.store = _open_store(self.state_dir / "policies.db", Path(config.policies))
        policies = PolicyManager(self.store)
        capacity = (config.link_capacity_mbps or 1000.0) * 1e6
        engineer = TrafficEngineer(
            seed=config.seed,
            visibility_s=max(3.0, 3 * config.poll_interval),
            max_moves_per_round=config.max_moves_per_round,
            default_demand_bps=capacity,
        )
        flows = FlowPlacer(
            self.core,
            self.monitor,
            book=lambda: policies.book,
            engineer=engineer,
            setup_budget=config.flow_setup_budget,
            default_rebalance_s=config.rebalance_period,
            failover_groups=config.failover_groups,
        )
        self.ctl = FabricController(self.core, self.monitor, policies, flows)
        self.ctl.install_policies(now=self.clock.mono())
        self._execute: Callable[[EngineOutput], None] | None = None
        self._synced_counts: dict[str, int] = {}
        self._views = Views()
        self._dirty = True
        self._ready = False
        self._reported_unmatched = False
        self.metrics.set_port_counter_provider(self._port_counters)
        self.publish(force=True)  # readers see the stored policies from the first moment

    # ------------------------------------------------------------ hub side
    def absorb(self, out: EngineOutput) -> EngineOutput:
        """Publish the notices of a core output; the shim sends the rest."""
        now = self.clock.wall()
        for notice in out.notices:
            self.events.publish(
                EventKind(notice.kind),
                notice.subject,
                reason=notice.reason,
                attributes=dict(notice.attributes),
                time=now,
            )
            if notice.kind == "flow-rerouted":
                self.metrics.reroutes.labels(reason=notice.reason).inc()
        self._dirty = True
        return out

    def congestion(self, events: list[CongestionEvent]) -> None:
        now = self.clock.wall()
        topo = self.core.topo
        for ev in events:
            kind = EventKind.LINK_CONGESTED if ev.congested else EventKind.LINK_CLEARED
            self.metrics.count_congestion_event(congested=ev.congested)
            self.events.publish(
                kind,
                topo.link_name(ev.link),
                reason=f"utilization {ev.utilization:.2f}",
                attributes={"utilization": f"{ev.utilization:.4f}"},
                time=now,
            )

    def mark_dirty(self) -> None:
        self._dirty = True

    def publish(self, *, force: bool = False) -> None:
        """Rebuild the views if anything changed (hub thread only)."""
        if not (self._dirty or force):
            return
        self._dirty = False
        topo = self.core.topo
        loads = self.monitor.loads(topo)
        for lid in topo.links:
            self.monitor.seen_links[lid] = topo.link_name(lid)
        down = {lid: name for lid, name in self.monitor.seen_links.items() if lid not in topo.links}
        view = build_topology_view(
            topo, loads=loads, congested=self.monitor.congested(), known_down=down
        )
        self._views = Views(
            topology=view,
            flows=self._flow_views(),
            policies=self.ctl.policies.book.all(),
        )
        m = self.metrics
        per_policy: dict[str, int] = {p.name: 0 for p in self.ctl.policies.book.all()}
        for flow in self._views.flows:
            per_policy[flow.policy] = per_policy.get(flow.policy, 0) + 1
        m.set_flows_tracked(per_policy)
        for reason, total in self.ctl.flows.counters.items():
            delta = total - self._synced_counts.get(reason, 0)
            if delta > 0:
                m.packet_in_dropped.labels(reason=reason).inc(delta)
                self._synced_counts[reason] = total
        m.switches_connected.set(len(topo.connected()))
        m.hosts_learned.set(len(topo.hosts))
        for link in view.links:
            m.set_link(link)
        if self.core.hosts_changed:
            self.core.hosts_changed = False
            try:
                save_hosts(self._hosts_file, list(topo.hosts.values()))
            except OSError as exc:
                log.error("cannot save learned hosts to %s: %s", self._hosts_file, exc)

    def report_unmatched_overrides(self) -> None:
        """Once discovery settled, name capacity overrides that match no link (once)."""
        if self._reported_unmatched or not self.core.topo.links:
            return
        self._reported_unmatched = True
        for text in self.monitor.capacity.unmatched(self.core.topo.links, self.core.topo.label):
            log.error("link_capacity_overrides: %r matches no discovered link", text)
            self.metrics.config_errors.labels(kind="unknown-link").inc()

    def _port_counters(self):  # type: ignore[no-untyped-def]
        topo = self.core.topo
        return [
            (topo.label(ref.dpid), ref.port, counters)
            for ref, counters in self.monitor.rates.counters_snapshot()
        ]

    def _flow_views(self) -> tuple[FlowView, ...]:
        topo = self.core.topo
        te = self.ctl.flows.te
        views = []
        for flow in te.snapshot():
            policy = te.policy_of(flow.flow_id)
            strategy = policy.strategy if policy else None
            if policy is not None and flow.fell_back:
                strategy = policy.fallback
            views.append(
                FlowView(
                    flow_id=flow.flow_id,
                    five_tuple=flow.five_tuple,
                    dscp=flow.dscp,
                    policy=flow.policy,
                    strategy=strategy.value if strategy else "",
                    path=tuple(topo.label(d) for d in flow.path.switches),
                    path_links=tuple(topo.link_name(lid) for lid in flow.path.links),
                    rate_bps=flow.rate_bps,
                    placed_at=self.clock.to_wall(flow.placed_at),
                    moves=flow.moves,
                    last_move_reason=flow.last_move_reason,
                    last_move_at=self.clock.to_wall(flow.last_move_at),
                    fell_back=flow.fell_back,
                )
            )
        return tuple(views)

    def attach(self, execute: Callable[[EngineOutput], None]) -> None:
        """The shim's way of sending a core output (used by hub-side commands)."""
        self._execute = execute

    def _run(self, out: EngineOutput) -> None:
        if self._execute is None:
            raise FabricError("the OpenFlow side is not running")
        self._execute(out)

    def set_ready(self) -> None:
        self._ready = True

    def close(self) -> None:
        self.mailbox.close()
        self.store.close()

    # ---------------------------------------------------- facade (any thread)
    def ready(self) -> bool:
        return self._ready

    def call(self, work: Callable[[], T], *, timeout: float = 10.0) -> T:
        return self.mailbox.call(work, timeout=timeout)

    def get_topology(self) -> TopologyView:
        return self._views.topology

    def list_links(self) -> list[LinkView]:
        return list(self._views.topology.links)

    def list_flows(self, *, policy: str = "") -> list[FlowView]:
        return [f for f in self._views.flows if not policy or f.policy == policy]

    def get_policy(self, name: str) -> Policy:
        for policy in self._views.policies:
            if policy.name == name:
                return policy
        raise NotFound("policy", name)

    def list_policies(self) -> list[Policy]:
        return sorted(self._views.policies, key=lambda p: p.name)

    def apply_policy(
        self, policy: Policy, *, dry_run: bool = False, expected_version: int | None = None
    ) -> ApplyResult:
        def work() -> ApplyResult:
            result, out = self.ctl.apply_policy(
                policy, dry_run=dry_run, expected_version=expected_version, now=self.clock.mono()
            )
            self._run(out)
            self.publish(force=True)
            return result

        try:
            result = self.call(work)
        except InvalidArgument:
            self.metrics.policy_applies.labels(result="invalid").inc()
            raise
        except VersionConflict:
            self.metrics.policy_applies.labels(result="conflict").inc()
            raise
        except FabricError:
            self.metrics.policy_applies.labels(result="rejected").inc()
            raise
        self.metrics.policy_applies.labels(result="dry-run" if dry_run else "applied").inc()
        return result

    def delete_policy(self, name: str, *, expected_version: int | None = None) -> int:
        def work() -> int:
            version, out = self.ctl.delete_policy(
                name, expected_version=expected_version, now=self.clock.mono()
            )
            self._run(out)
            self.publish(force=True)
            return version

        return self.call(work)

    def _drain(self, link: str, drained: bool) -> DrainResult:
        def work() -> DrainResult:
            result, out = self.ctl.drain(link, drained=drained, now=self.clock.mono())
            self._run(out)
            self.publish(force=True)
            return result

        return self.call(work)

    def drain_link(self, link: str) -> DrainResult:
        return self._drain(link, True)

    def undrain_link(self, link: str) -> DrainResult:
        return self._drain(link, False)

    def explain_path(self, five_tuple: FiveTuple, *, dscp: int = 0) -> PathExplanation:
        return self.call(lambda: self.ctl.explain(five_tuple, dscp=dscp, now=self.clock.mono()))


def _open_store(path: Path, defaults_dir: Path) -> SqlitePolicyStore:
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
