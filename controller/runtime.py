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

from controller.config import FabricdConfig
from controller.engine.core import CoreConfig, FabricCore
from controller.engine.hoststore import load_hosts, save_hosts
from controller.engine.monitor import LinkMonitor
from controller.engine.outputs import CoreOutput
from controller.engine.snapshot import build_topology_view
from controller.eventbus import EventBus
from controller.mailbox import Mailbox
from controller.metrics import FabricMetrics
from controller.telemetry import CapacityConfig, CongestionEvent
from controller.views import EventKind, LinkView, TopologyView

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


class Runtime:
    def __init__(self, config: FabricdConfig, *, metrics: FabricMetrics | None = None) -> None:
        self.config = config
        self.clock = Clock()
        self.started_at = self.clock.mono()
        self.metrics = metrics or FabricMetrics()
        self.events = EventBus()
        self.mailbox = Mailbox()
        lldp = config.lldp_interval
        self.core = FabricCore(
            CoreConfig(
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
        self._views = Views()
        self._dirty = True
        self._ready = False
        self._reported_unmatched = False
        self.metrics.set_port_counter_provider(self._port_counters)

    # ------------------------------------------------------------ hub side
    def absorb(self, out: CoreOutput) -> CoreOutput:
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
            if notice.kind == "link-down":
                self._dirty = True
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
        self._views = Views(topology=view)
        m = self.metrics
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

    def set_ready(self) -> None:
        self._ready = True

    def close(self) -> None:
        self.mailbox.close()

    # ---------------------------------------------------- facade (any thread)
    def ready(self) -> bool:
        return self._ready

    def call(self, work: Callable[[], T], *, timeout: float = 10.0) -> T:
        return self.mailbox.call(work, timeout=timeout)

    def get_topology(self) -> TopologyView:
        return self._views.topology

    def list_links(self) -> list[LinkView]:
        return list(self._views.topology.links)
