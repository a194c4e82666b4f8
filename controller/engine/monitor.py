"""LinkMonitor: port counters in, per-direction link load and congestion events out.

Hub-owned glue over the pure telemetry pieces: it remembers rates per port,
resolves each link's capacity (configured override, default, reported port
speed), and feeds the congestion detector once per new sample.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.engine.snapshot import LinkLoad
from controller.fabric.model import Dpid, LinkId, PortNo, PortRef
from controller.fabric.topology import Topology
from controller.telemetry import (
    CapacityConfig,
    CongestionDetector,
    CongestionEvent,
    PortCounters,
    RateEstimator,
    link_load,
)

__all__ = ["LinkMonitor"]


class LinkMonitor:
    def __init__(
        self,
        *,
        capacity: CapacityConfig,
        alpha: float = 0.5,
        threshold: float = 0.8,
        clear_threshold: float = 0.6,
        samples: int = 2,
    ) -> None:
        self.capacity = capacity
        self.rates = RateEstimator(alpha=alpha)
        self.detector = CongestionDetector(
            threshold=threshold, clear_threshold=clear_threshold, samples=samples
        )
        self._loads: dict[LinkId, LinkLoad] = {}
        self.seen_links: dict[LinkId, str] = {}  # every link ever up -> last name

    def capacity_of(self, topo: Topology, lid: LinkId) -> float:
        sw = topo.switches.get(lid.src.dpid)
        port = sw.ports.get(lid.src.port) if sw else None
        speed = port.speed_bps if port else 0.0
        return self.capacity.capacity_for(lid, names=topo.label, port_speed_bps=speed)

    def port_stats(
        self,
        dpid: Dpid,
        stats: Iterable[tuple[PortNo, PortCounters]],
        *,
        now: float,
        topo: Topology,
    ) -> list[CongestionEvent]:
        """A switch's port counters arrived: update rates, loads and congestion state."""
        for port_no, counters in stats:
            self.rates.update(PortRef(dpid, port_no), counters, now)
        events = []
        for lid in topo.links_at(dpid):  # O(degree): a reply only touches its switch's links
            capacity = self.capacity_of(topo, lid)
            sample = link_load(lid, self.rates, capacity)
            self._loads[lid] = LinkLoad(sample.rate_bps, sample.capacity_bps, sample.utilization)
            rate = self.rates.latest_raw(lid.src) or self.rates.latest_raw(lid.dst)
            if sample.measured and sample.capacity_bps > 0 and rate is not None:
                # The detector's hysteresis is its filter: it judges the last
                # interval's rate, not the smoothed one (which would add polls).
                raw = link_load(lid, self.rates, capacity, raw=True)
                event = self.detector.observe(lid, raw.utilization, rate.time)
                if event is not None:
                    events.append(event)
        return events

    def to_confirm(self, topo: Topology, dpid: Dpid) -> set[Dpid]:
        """Switches whose next counters decide whether a link at ``dpid`` is congested."""
        return {lid.src.dpid for lid in topo.links_at(dpid) if self.detector.rising(lid)}

    def link_gone(self, lid: LinkId) -> None:
        self._loads.pop(lid, None)
        self.detector.forget(lid)

    def switch_gone(self, dpid: Dpid) -> None:
        self.rates.forget_switch(dpid)

    def loads(self, topo: Topology) -> dict[LinkId, LinkLoad]:
        """Load of every up link (capacity filled in even before the first sample)."""
        out = {}
        for lid in topo.links:
            have = self._loads.get(lid)
            out[lid] = (
                have if have is not None else LinkLoad(capacity_bps=self.capacity_of(topo, lid))
            )
        return out

    def loads_at(self, topo: Topology, dpid: Dpid) -> dict[LinkId, LinkLoad]:
        """Load of the up links of ``dpid`` (those a port-stats reply of it updates)."""
        return {lid: self._loads[lid] for lid in topo.links_at(dpid) if lid in self._loads}

    def congested(self) -> frozenset[LinkId]:
        return frozenset(self.detector.congested())
