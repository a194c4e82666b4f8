"""LinkMonitor: port counters in, per-direction link load and congestion events out.

Hub-owned glue over the pure telemetry pieces: it remembers rates per port,
resolves each link's capacity (configured override, default, reported port
speed), and feeds the congestion detector once per new sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from controller.engine.snapshot import LinkLoad
from controller.fabric.model import Dpid, LinkId, PortNo
from controller.fabric.topology import Topology
from controller.telemetry import (
    CapacityConfig,
    CongestionDetector,
    CongestionEvent,
    PortCounters,
    RateEstimator,
    carried,
)

__all__ = ["LinkMonitor", "StatsUpdate"]


class StatsUpdate(NamedTuple):
    """What one port-stats reply changed: congestion flips, the links whose load
    was recomputed, and the ports that receive packets."""

    events: list[CongestionEvent]
    links: tuple[LinkId, ...]
    receiving: tuple[PortNo, ...] = ()  # the switch's ports traffic arrives on (links alive)


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
        self.seen_links: set[LinkId] = set()  # every link ever up

    def capacity_of(self, topo: Topology, lid: LinkId) -> float:
        sw = topo.switches.get(lid.src.dpid)
        port = sw.ports.get(lid.src.port) if sw else None
        speed = port.speed_bps if port else 0.0
        if not self.capacity.overrides:  # no names to match (every link, every poll)
            return self.capacity.unless_overridden(speed)
        return self.capacity.capacity_for(lid, names=topo.label, port_speed_bps=speed)

    def port_stats(
        self,
        dpid: Dpid,
        stats: Iterable[tuple[PortNo, PortCounters]],
        *,
        now: float,
        topo: Topology,
    ) -> StatsUpdate:
        """A switch's port counters arrived: update rates, loads and congestion state.

        A link is measured where it leaves (its source's transmit rate); its
        destination's receive rate stands in only while the source has no rate.
        So a reply updates the links leaving ``dpid`` and those entering it from
        a switch without a rate: the others' loads (and the samples the detector
        saw) are exactly what they were, and recomputing them would cost one
        load per link per reply twice over (a spine of 64 x 512 has 1,024).
        Runs for every port of the fabric once per poll: written for that.
        """
        rates, loads, observe = self.rates, self._loads, self.detector.observe
        stats = list(stats)
        here = rates.update_switch(dpid, stats, now)
        ports_of = rates.ports_of
        events = []
        changed = []
        for lid in topo.links_at(dpid):  # O(degree): a reply only touches its switch's links
            src_ref, dst_ref = lid.src, lid.dst
            if src_ref.dpid == dpid:
                src, dst = here.get(src_ref.port), ports_of(dst_ref.dpid).get(dst_ref.port)
            else:
                src = ports_of(src_ref.dpid).get(src_ref.port)
                if src is not None and src.rate is not None:
                    continue  # measured at its source, whose counters did not change here
                dst = here.get(dst_ref.port)
            changed.append(lid)
            capacity = self.capacity_of(topo, lid)
            rate_bps, smoothed = carried(src, dst)
            loads[lid] = LinkLoad(rate_bps, capacity, rate_bps / capacity if capacity > 0 else 0.0)
            if smoothed is None or capacity <= 0:
                continue
            # The detector's hysteresis is its filter: it judges the last
            # interval's rate, not the smoothed one (which would add polls).
            raw_bps, raw = carried(src, dst, raw=True)
            if raw is None:
                continue
            event = observe(lid, raw_bps / capacity, raw.time)
            if event is not None:
                events.append(event)
        receiving = tuple(
            port_no
            for port_no, _ in stats
            if (st := here.get(port_no)) is not None and st.rate is not None and st.rate.rx_pps > 0
        )
        return StatsUpdate(events, tuple(changed), receiving)

    def to_confirm(self, topo: Topology, dpid: Dpid) -> set[Dpid]:
        """Switches whose next counters decide whether a link at ``dpid`` is congested."""
        return {
            lid.src.dpid
            for lid in self.detector.rising_links()
            if dpid in (lid.src.dpid, lid.dst.dpid) and lid in topo.links
        }

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

    def loads_of(self, links: Iterable[LinkId]) -> dict[LinkId, LinkLoad]:
        """Load of those of ``links`` that have one (e.g. a reply's :class:`StatsUpdate`)."""
        loads = self._loads
        return {lid: loads[lid] for lid in links if lid in loads}

    def congested(self) -> frozenset[LinkId]:
        return frozenset(self.detector.congested())
