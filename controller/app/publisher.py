"""Publisher: after each change in the hub, the immutable views, the event stream and metrics.

The hub thread calls :meth:`Publisher.absorb` with every engine output the
shim sent (its notices go to the event bus and to counters) and
:meth:`Publisher.publish` once per batch of work (a tick, a mailbox round):
if anything changed, the views are rebuilt from the engine's state and
swapped in with one reference assignment, and the gauges follow. Readers in
other threads only ever see complete views. It also saves learned hosts and
leaves' lost uplinks when they changed. It decides nothing about the network.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from controller.app.clock import Clock
from controller.concurrency.eventbus import EventBus
from controller.engine.engine import FabricEngine
from controller.engine.outputs import EngineOutput, EventKind
from controller.engine.snapshot import TopologyViews, flow_views
from controller.engine.views import FlowView, JobView, TopologyView
from controller.errors import FabricError
from controller.fabric.model import Dpid, PortNo
from controller.observability.metrics import FabricMetrics
from controller.policy.model import Policy
from controller.store.documents import StoreClosed
from controller.store.hosts import HostView
from controller.store.uplinks import UplinkView
from controller.te.flowtable import TrackedFlow
from controller.telemetry import PortCounters

__all__ = ["Publisher", "Views"]

_T = TypeVar("_T")
log = logging.getLogger("fabricd.publisher")


@dataclass(frozen=True)
class Views:
    topology: TopologyView = field(default_factory=TopologyView)
    flows: Sequence[FlowView] = ()  # built as read (see controller.engine.lazyviews)
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
        uplinks: UplinkView | None = None,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.metrics = metrics
        self.clock = clock
        self.hosts = hosts
        self.uplinks = uplinks
        self._saved_uplinks: dict[Dpid, tuple[tuple[PortNo, Dpid], ...]] | None = None
        self.views = Views()
        self.ready = False
        self.publications = 0  # how many times views were rebuilt (for tests and logs)
        self._dirty = True
        self._counted: dict[str, int] = {}
        self._topology = TopologyViews()
        metrics.set_port_counter_provider(self._port_counters)
        metrics.set_link_provider(lambda: self.views.topology.links)
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
                attributes=notice.attributes,
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
        """Rebuild the views if anything changed since the last time. True if rebuilt.

        Kept cheap at any fabric size: the links' and the flows' views are built
        by whoever reads them, from values captured here (see ``lazyviews``)."""
        if not self._dirty:
            return False
        self._dirty = False
        engine = self.engine
        topo, monitor = engine.visible()
        view = self._topology.build(
            topo, loads=monitor.loads(topo), congested=monitor.congested(), seen=monitor.seen_links
        )
        te = engine.placer.te
        flows = te.snapshot()
        self.views = Views(
            topology=view,
            flows=flow_views(
                flows,
                labels=engine.net.topo.labels(),
                policies=te.policies(),
                wall_offset=self.clock.wall_offset(),
            ),
            policies=engine.policies.book.all(),
            jobs=tuple(engine.jobs.view_of(job.name) for job in engine.jobs.jobs()),
        )
        self.publications += 1
        self._sync_metrics(flows)
        self._save_hosts()
        self._save_uplinks()
        return True

    def _sync_metrics(self, flows: Iterable[TrackedFlow]) -> None:
        m = self.metrics
        per_policy = dict.fromkeys((p.name for p in self.views.policies), 0)
        per_policy.update(Counter(f.policy for f in flows))
        m.set_flows_tracked(per_policy)
        for reason, total in self.engine.placer.counters.items():
            delta = total - self._counted.get(reason, 0)
            if delta > 0:
                m.packet_in_dropped.labels(reason=reason).inc(delta)
                self._counted[reason] = total
        topo, _ = self.engine.visible()
        m.switches_connected.set(len(topo.connected()))
        m.hosts_learned.set(len(self.engine.net.topo.hosts))
        m.uplinks_lost.set(self.engine.net.topo.lost_uplink_count())

    def _save_hosts(self) -> None:
        net = self.engine.net
        if not net.hosts_changed or self.hosts is None:
            return
        net.hosts_changed = False
        # The store down: hosts are learned again anyway.
        _saved("learned hosts", self.hosts.sync, list(net.topo.hosts.values()))

    def _save_uplinks(self) -> None:
        # A standby's view is the store's as of its last reload: saved, it could undo
        # what the leader wrote since. The leader saves.
        if self.uplinks is None or self.engine.cluster_role == "standby":
            return
        lost = self.engine.net.lost_uplinks_to_keep()
        if lost != self._saved_uplinks and _saved("lost uplinks", self.uplinks.save, lost):
            self._saved_uplinks = lost  # else tried again at the next publication

    def _port_counters(self) -> Iterable[tuple[str, int, PortCounters]]:
        topo = self.engine.net.topo
        return [
            (topo.label(ref.dpid), ref.port, counters)
            for ref, counters in self.engine.monitor.rates.counters_snapshot()
        ]


def _saved(what: str, save: Callable[[_T], object], items: _T) -> bool:
    """``save(items)``; a store that fails is logged (closed: the daemon is stopping,
    and what changed as its switches went is not worth an error)."""
    try:
        save(items)
    except StoreClosed:
        log.info("%s not saved: the store is closed", what)
        return False
    except FabricError as exc:
        log.error("cannot save %s: %s", what, exc)
        return False
    return True
