"""Publisher: after each change in the hub, the immutable views, the event stream and metrics.

The hub thread calls :meth:`Publisher.absorb` with every engine output the
shim sent (its notices go to the event bus and to counters) and
:meth:`Publisher.publish` once per batch of work (a tick, a mailbox round):
if anything changed, the views are rebuilt from the engine's state and
swapped in with one reference assignment, and the gauges follow. Readers in
other threads only ever see complete views. It also saves learned hosts when
they changed. It decides nothing about the network.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.app.clock import Clock
from controller.concurrency.eventbus import EventBus
from controller.engine.engine import FabricEngine
from controller.engine.outputs import EngineOutput, EventKind
from controller.engine.snapshot import build_topology_view
from controller.engine.views import FlowView, JobView, TopologyView
from controller.errors import FabricError
from controller.observability.metrics import FabricMetrics
from controller.policy.model import Policy
from controller.store.hosts import HostView
from controller.telemetry import PortCounters

__all__ = ["Publisher", "Views"]

log = logging.getLogger("fabricd.publisher")


@dataclass(frozen=True)
class Views:
    topology: TopologyView = field(default_factory=TopologyView)
    flows: tuple[FlowView, ...] = ()
    policies: tuple[Policy, ...] = ()
    jobs: tuple[JobView, ...] = ()


class Publisher:
    def __init__(
        self,
        engine: FabricEngine,
        *,
        bus: EventBus,
        metrics: FabricMetrics,
        clock: Clock,
        hosts: HostView | None = None,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.metrics = metrics
        self.clock = clock
        self.hosts = hosts
        self.views = Views()
        self.ready = False
        self.publications = 0  # how many times views were rebuilt (for tests and logs)
        self._dirty = True
        self._counted: dict[str, int] = {}
        metrics.set_port_counter_provider(self._port_counters)
        self.publish()  # readers see the stored policies from the first moment

    # ----------------------------------------------------------- hub side
    def absorb(self, out: EngineOutput) -> None:
        """An output was sent: stream its notices; the views are stale."""
        now = self.clock.wall()
        for notice in out.notices:
            self.bus.publish(
                notice.kind,
                notice.subject,
                reason=notice.reason,
                attributes=dict(notice.attributes),
                time=now,
            )
            if notice.kind is EventKind.FLOW_REROUTED:
                self.metrics.reroutes.labels(reason=notice.reason).inc()
            elif notice.kind in (EventKind.LINK_CONGESTED, EventKind.LINK_CLEARED):
                self.metrics.count_congestion_event(
                    congested=notice.kind is EventKind.LINK_CONGESTED
                )
        self._dirty = True

    def set_ready(self) -> None:
        self.ready = True

    def publish(self) -> bool:
        """Rebuild the views if anything changed since the last time. True if rebuilt."""
        if not self._dirty:
            return False
        self._dirty = False
        engine = self.engine
        topo, monitor = engine.visible()
        for lid in topo.links:
            monitor.seen_links[lid] = topo.link_name(lid)
        down = {lid: name for lid, name in monitor.seen_links.items() if lid not in topo.links}
        view = build_topology_view(
            topo, loads=monitor.loads(topo), congested=monitor.congested(), known_down=down
        )
        self.views = Views(
            topology=view,
            flows=self._flow_views(),
            policies=engine.policies.book.all(),
            jobs=tuple(engine.jobs.view_of(job.name) for job in engine.jobs.jobs()),
        )
        self.publications += 1
        self._sync_metrics(view)
        self._save_hosts()
        return True

    def _sync_metrics(self, view: TopologyView) -> None:
        m = self.metrics
        per_policy: dict[str, int] = {p.name: 0 for p in self.views.policies}
        for flow in self.views.flows:
            per_policy[flow.policy] = per_policy.get(flow.policy, 0) + 1
        m.set_flows_tracked(per_policy)
        for reason, total in self.engine.placer.counters.items():
            delta = total - self._counted.get(reason, 0)
            if delta > 0:
                m.packet_in_dropped.labels(reason=reason).inc(delta)
                self._counted[reason] = total
        topo, _ = self.engine.visible()
        m.switches_connected.set(len(topo.connected()))
        m.hosts_learned.set(len(self.engine.net.topo.hosts))
        for link in view.links:
            m.set_link(link)

    def _save_hosts(self) -> None:
        net = self.engine.net
        if not net.hosts_changed or self.hosts is None:
            return
        net.hosts_changed = False
        try:
            self.hosts.sync(list(net.topo.hosts.values()))
        except FabricError as exc:  # the store is down: hosts are learned again anyway
            log.error("cannot save learned hosts: %s", exc)

    def _port_counters(self) -> Iterable[tuple[str, int, PortCounters]]:
        topo = self.engine.net.topo
        return [
            (topo.label(ref.dpid), ref.port, counters)
            for ref, counters in self.engine.monitor.rates.counters_snapshot()
        ]

    def _flow_views(self) -> tuple[FlowView, ...]:
        topo = self.engine.net.topo
        te = self.engine.placer.te
        to_wall = self.clock.to_wall
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
                    placed_at=to_wall(flow.placed_at),
                    moves=flow.moves,
                    last_move_reason=flow.last_move_reason,
                    last_move_at=to_wall(flow.last_move_at),
                    fell_back=flow.fell_back,
                )
            )
        return tuple(views)
