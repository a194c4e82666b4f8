"""The controller's Prometheus metrics, all on one injectable registry.

:class:`FabricMetrics` creates every metric the controller exports (prefix
``fabric_``, base units, ``_total`` counters) on the registry it is given, so
tests use a fresh registry and never the process-global one. Label sets stay
bounded: switch, port, link, policy, reason, message type - never anything
per flow. Metric objects are thread-safe; the hub updates them, the exporter
thread reads them. Port byte/packet counters and the links' state and load
are not copied into metric objects: custom collectors read them at scrape
time from providers that return immutable snapshots (the links: the
published topology view). This module decides nothing and reads no
switch; it only records what the hub tells it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from controller.engine.views import LinkView
from controller.telemetry.counters import UNSUPPORTED, PortCounters

__all__ = [
    "PACKET_IN_KINDS",
    "STATS_KINDS",
    "FabricMetrics",
    "LinkViewProvider",
    "PortCounterProvider",
]

log = logging.getLogger(__name__)

PortCounterProvider = Callable[[], Iterable[tuple[str, int, PortCounters]]]
LinkViewProvider = Callable[[], Iterable[LinkView]]

PACKET_IN_KINDS = frozenset({"lldp", "arp", "ipv4", "other"})
STATS_KINDS = frozenset({"port", "flow"})

_LINK_LABELS = ("link", "src_switch", "dst_switch")

# (exported name without _total, PortCounters field, help)
_PORT_COUNTERS = (
    ("fabric_port_receive_bytes", "rx_bytes", "Bytes received on a switch port."),
    ("fabric_port_transmit_bytes", "tx_bytes", "Bytes transmitted on a switch port."),
    ("fabric_port_receive_packets", "rx_packets", "Packets received on a switch port."),
    ("fabric_port_transmit_packets", "tx_packets", "Packets transmitted on a switch port."),
    ("fabric_port_receive_dropped", "rx_dropped", "Received packets dropped by a switch port."),
    ("fabric_port_transmit_dropped", "tx_dropped", "Packets to send dropped by a switch port."),
    ("fabric_port_receive_errors", "rx_errors", "Receive errors on a switch port."),
    ("fabric_port_transmit_errors", "tx_errors", "Transmit errors on a switch port."),
)

# Seconds. Path computation is in-process graph work (sub-millisecond on small
# fabrics); setup and programming include switch round trips and barriers.
_FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_SWITCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _PortCounterCollector:
    """Exports the switches' own port counters as Prometheus counters at scrape time."""

    def __init__(self) -> None:
        self.provider: PortCounterProvider | None = None

    def describe(self) -> Iterator[Metric]:
        # Declares the names so the registry rejects a clash at registration.
        for name, _, doc in _PORT_COUNTERS:
            yield CounterMetricFamily(name, doc, labels=("switch", "port"))

    def collect(self) -> Iterator[Metric]:
        families = [
            (CounterMetricFamily(name, doc, labels=("switch", "port")), field)
            for name, field, doc in _PORT_COUNTERS
        ]
        provider = self.provider  # one read: the hub may swap it concurrently
        rows: Iterable[tuple[str, int, PortCounters]] = ()
        if provider is not None:
            try:
                rows = list(provider())
            except Exception:
                # One broken source must not fail the whole scrape.
                log.exception("port counter provider failed; port counters omitted")
                rows = ()
        for switch, port_no, counters in rows:
            for family, field in families:
                value: int = getattr(counters, field)
                if value != UNSUPPORTED:
                    family.add_metric((switch, str(port_no)), float(value))
        for family, _ in families:
            yield family


# (exported name, help, value of an up link's view): an up link exports all of
# them; a link that went down stays as ``fabric_link_up 0`` (so an alert can see
# it) and loses its load series instead of freezing them.
_LINK_GAUGES: tuple[tuple[str, str, Callable[[LinkView], float]], ...] = (
    (
        "fabric_link_utilization_ratio",
        "Smoothed rate of a directed link divided by its capacity (0 if unknown).",
        lambda v: v.utilization,
    ),
    # Bytes, not bits: Prometheus' base unit for data is the byte (promtool lints
    # "bits"); dashboards multiply by 8 to show bit/s.
    (
        "fabric_link_bytes_per_second",
        "Smoothed rate a directed link carries.",
        lambda v: v.rate_bps / 8.0,
    ),
    (
        "fabric_link_capacity_bytes_per_second",
        "Capacity of a directed link (0 if unknown).",
        lambda v: v.capacity_bps / 8.0,
    ),
    (
        "fabric_link_congested",
        "1 while the directed link is judged congested.",
        lambda v: 1.0 if v.congested else 0.0,
    ),
    (
        "fabric_link_drained",
        "1 while the directed link is drained for maintenance.",
        lambda v: 1.0 if v.drained else 0.0,
    ),
)
_LINK_UP_HELP = "1 if the directed link is up, 0 if it went down."


class _LinkCollector:
    """Exports every link's state and load at scrape time, from the published view."""

    def __init__(self) -> None:
        self.provider: LinkViewProvider | None = None

    def _families(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("fabric_link_up", _LINK_UP_HELP, labels=_LINK_LABELS)] + [
            GaugeMetricFamily(name, doc, labels=_LINK_LABELS) for name, doc, _ in _LINK_GAUGES
        ]

    def describe(self) -> Iterator[Metric]:
        yield from self._families()  # the registry rejects a clash at registration

    def collect(self) -> Iterator[Metric]:
        up, *loads = families = self._families()
        provider = self.provider  # one read: the hub may swap it concurrently
        links: list[LinkView] = []
        if provider is not None:
            try:
                links = list(provider())  # the views are built here, as read
            except Exception:
                log.exception("link provider failed; link metrics omitted")
        for view in links:
            labels = (view.name, view.src_switch, view.dst_switch)
            up.add_metric(labels, 1.0 if view.up else 0.0)
            if view.up:
                for family, (_, _, read) in zip(loads, _LINK_GAUGES, strict=True):
                    family.add_metric(labels, read(view))
        yield from families


class FabricMetrics:
    """Every metric of the controller, created on ``registry`` (a fresh one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry

        # ----------------------------------------------------------- fabric state
        self.switches_connected = Gauge(
            "fabric_switches_connected", "Switches connected to the controller.", registry=reg
        )
        self.hosts_learned = Gauge(
            "fabric_hosts_learned", "Hosts the controller has learned.", registry=reg
        )
        self.uplinks_lost = Gauge(
            "fabric_uplinks_lost",
            "Leaf uplinks cabled but without a link (a spine or cable lost): their "
            "leaves' spread sets run degraded until the link is back or the port deleted.",
            registry=reg,
        )
        # Link gauges are read from the published topology view at scrape time: at
        # 64 x 512 setting 65,536 x 6 gauge children took the hub ~1 s per publish.
        self._links = _LinkCollector()
        reg.register(self._links)
        self._port_counters = _PortCounterCollector()
        reg.register(self._port_counters)

        # --------------------------------------------------------------- openflow
        self.openflow_messages_sent = Counter(
            "fabric_openflow_messages_sent",
            "OpenFlow messages sent to switches, by message type.",
            ("type",),
            registry=reg,
        )
        self.openflow_errors = Counter(
            "fabric_openflow_errors",
            "OpenFlow error messages received from switches, by error type.",
            ("type",),
            registry=reg,
        )
        self.packet_in = Counter(
            "fabric_packet_in",
            "Packet-in messages received, by switch and kind (lldp, arp, ipv4, other).",
            ("switch", "kind"),
            registry=reg,
        )
        self.packet_in_dropped = Counter(
            "fabric_packet_in_dropped",
            "Packet-ins the controller chose not to handle, by reason.",
            ("reason",),
            registry=reg,
        )
        self.lldp_ignored = Counter(
            "fabric_lldp_ignored",
            "LLDP frames that could not create a link (e.g. on a host port), by switch.",
            ("switch",),
            registry=reg,
        )
        self.stats_request_duration = Histogram(
            "fabric_stats_request_duration_seconds",
            "Time from a stats request to its complete reply, by kind (port, flow).",
            ("kind",),
            buckets=_SWITCH_BUCKETS,
            registry=reg,
        )
        self.stats_failures = Counter(
            "fabric_stats_failures",
            "Stats requests that failed or timed out, by switch.",
            ("switch",),
            registry=reg,
        )
        self.poll_interval = Gauge(
            "fabric_poll_interval_seconds",
            "Seconds between statistics polls of a switch: poll_interval, or longer "
            "when reading a round of answers would take more than poll_budget of the hub.",
            registry=reg,
        )
        self.lldp_interval = Gauge(
            "fabric_lldp_interval_seconds",
            "Seconds between LLDP probe rounds: lldp_interval, or longer when a round "
            "(probes built, frames read) would take more than lldp_budget of the hub.",
            registry=reg,
        )
        self.poll_round_work = Gauge(
            "fabric_poll_round_work_seconds",
            "CPU seconds the hub spent reading one round of statistics answers (estimate).",
            registry=reg,
        )

        # ------------------------------------------------------ traffic engineering
        self.reroutes = Counter(
            "fabric_reroutes", "Flows moved to another path, by reason.", ("reason",), registry=reg
        )
        self.flows_tracked = Gauge(
            "fabric_flows_tracked",
            "Flows placed with per-flow rules, by policy.",
            ("policy",),
            registry=reg,
        )
        self.flow_setup_seconds = Histogram(
            "fabric_flow_setup_seconds",
            "Time from a new flow's first packet-in to its rules being installed.",
            buckets=_SWITCH_BUCKETS,
            registry=reg,
        )
        self.path_computation_seconds = Histogram(
            "fabric_path_computation_seconds",
            "Time to compute a path for a flow.",
            buckets=_FAST_BUCKETS,
            registry=reg,
        )
        self.flow_programming_seconds = Histogram(
            "fabric_flow_programming_seconds",
            "Time to program a path on the switches, until the barriers confirm it.",
            buckets=_SWITCH_BUCKETS,
            registry=reg,
        )
        self.policy_applies = Counter(
            "fabric_policy_applies",
            "Policy apply requests, by result (applied, dry_run, invalid, conflict, error).",
            ("result",),
            registry=reg,
        )
        self.config_errors = Counter(
            "fabric_config_errors",
            "Configuration problems found, by kind.",
            ("kind",),
            registry=reg,
        )
        self.congestion_events = Counter(
            "fabric_congestion_events",
            "Links turning congested or clearing, by state (congested, cleared).",
            ("state",),
            registry=reg,
        )
        self._policies_tracked: set[str] = set()
        self._packet_in_series: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------------ helpers
    def set_port_counter_provider(self, provider: PortCounterProvider | None) -> None:
        """Where scrapes read port counters from. ``provider`` runs on the exporter
        thread, so it must only return an immutable snapshot the hub published."""
        self._port_counters.provider = provider

    def set_link_provider(self, provider: LinkViewProvider | None) -> None:
        """Where scrapes read the links from (the published topology view's links).
        ``provider`` runs on the exporter thread: it must return immutable views."""
        self._links.provider = provider

    def count_packet_in(self, switch: str, kind: str) -> None:
        """Count a packet-in; an unknown ``kind`` counts as ``other`` (bounded labels)."""
        kind = kind if kind in PACKET_IN_KINDS else "other"
        child = self._packet_in_series.get((switch, kind))
        if child is None:  # looked up once per series: this runs for every packet-in
            child = self._packet_in_series[(switch, kind)] = self.packet_in.labels(switch, kind)
        child.inc()

    def observe_stats_request(self, kind: str, seconds: float) -> None:
        if kind not in STATS_KINDS:
            raise ValueError(f"stats kind must be one of {sorted(STATS_KINDS)}, not {kind!r}")
        self.stats_request_duration.labels(kind).observe(seconds)

    def count_congestion_event(self, *, congested: bool) -> None:
        self.congestion_events.labels("congested" if congested else "cleared").inc()

    def set_flows_tracked(self, per_policy: Mapping[str, int]) -> None:
        """Replace all per-policy flow counts; a policy that is gone drops its series."""
        for policy in self._policies_tracked - set(per_policy):
            self.flows_tracked.remove(policy)
        for policy, count in per_policy.items():
            self.flows_tracked.labels(policy).set(count)
        self._policies_tracked = set(per_policy)
