"""FabricMetrics: names, label sets, helpers and promtool-clean exposition."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from controller.engine.views import LinkView
from controller.fabric.model import LinkId, PortRef
from controller.observability.metrics import FabricMetrics
from controller.telemetry.counters import UNSUPPORTED, PortCounters

LID = LinkId(PortRef(1, 3), PortRef(0x65, 1))
LINK_LABELS = {"link": "leaf1/3->spine1/1", "src_switch": "leaf1", "dst_switch": "spine1"}


def view(**overrides: object) -> LinkView:
    fields: dict[str, object] = {
        "link": LID,
        "name": "leaf1/3->spine1/1",
        "src_switch": "leaf1",
        "dst_switch": "spine1",
        "up": True,
        "drained": False,
        "capacity_bps": 10e6,
        "rate_bps": 7.5e6,
        "utilization": 0.75,
        "congested": False,
    }
    fields.update(overrides)
    return LinkView(**fields)  # type: ignore[arg-type]


@pytest.fixture
def m() -> FabricMetrics:
    return FabricMetrics(CollectorRegistry())


def value(m: FabricMetrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return m.registry.get_sample_value(name, labels or {})


def test_fresh_registry_each_time_never_the_global_one() -> None:
    a, b = FabricMetrics(), FabricMetrics()  # would clash on a shared registry
    a.switches_connected.set(3)
    assert b.registry.get_sample_value("fabric_switches_connected") == 0.0
    assert a.registry.get_sample_value("fabric_switches_connected") == 3.0


def test_links_come_from_the_provider_at_scrape_time(m: FabricMetrics) -> None:
    links = [view(congested=True, drained=True)]
    m.set_link_provider(lambda: tuple(links))
    assert value(m, "fabric_link_up", LINK_LABELS) == 1.0
    assert value(m, "fabric_link_utilization_ratio", LINK_LABELS) == 0.75
    # Exported in the base unit, bytes: 7.5 Mbit/s is 937,500 B/s.
    assert value(m, "fabric_link_bytes_per_second", LINK_LABELS) == 937_500
    assert value(m, "fabric_link_capacity_bytes_per_second", LINK_LABELS) == 1_250_000
    assert value(m, "fabric_link_congested", LINK_LABELS) == 1.0
    assert value(m, "fabric_link_drained", LINK_LABELS) == 1.0
    links[0] = view(congested=False, utilization=0.2)  # the next scrape reads the new view
    assert value(m, "fabric_link_congested", LINK_LABELS) == 0.0
    assert value(m, "fabric_link_drained", LINK_LABELS) == 0.0
    assert value(m, "fabric_link_utilization_ratio", LINK_LABELS) == 0.2


def test_a_down_link_stays_as_down_and_loses_its_load(m: FabricMetrics) -> None:
    other = {"link": "x/1->y/1", "src_switch": "x", "dst_switch": "y"}
    m.set_link_provider(
        lambda: (view(up=False), view(name="x/1->y/1", src_switch="x", dst_switch="y"))
    )
    assert value(m, "fabric_link_up", LINK_LABELS) == 0.0
    for name in (
        "fabric_link_utilization_ratio",
        "fabric_link_bytes_per_second",
        "fabric_link_capacity_bytes_per_second",
        "fabric_link_congested",
        "fabric_link_drained",
    ):
        assert value(m, name, LINK_LABELS) is None, name
        assert value(m, name, other) is not None, name  # the up link next to it keeps its own
    assert value(m, "fabric_link_up", other) == 1.0


def test_port_counters_come_from_the_provider_at_scrape_time(m: FabricMetrics) -> None:
    rows: list[tuple[str, int, PortCounters]] = [
        ("leaf1", 3, PortCounters(rx_bytes=100, tx_bytes=200, rx_packets=1, tx_packets=2)),
        ("spine1", 1, PortCounters(rx_errors=4, tx_dropped=5, rx_dropped=UNSUPPORTED)),
    ]
    m.set_port_counter_provider(lambda: tuple(rows))
    leaf = {"switch": "leaf1", "port": "3"}
    spine = {"switch": "spine1", "port": "1"}
    assert value(m, "fabric_port_receive_bytes_total", leaf) == 100
    assert value(m, "fabric_port_transmit_bytes_total", leaf) == 200
    assert value(m, "fabric_port_receive_packets_total", leaf) == 1
    assert value(m, "fabric_port_transmit_packets_total", leaf) == 2
    assert value(m, "fabric_port_receive_errors_total", spine) == 4
    assert value(m, "fabric_port_transmit_dropped_total", spine) == 5
    assert value(m, "fabric_port_transmit_errors_total", spine) == 0
    # An all-ones "unsupported" marker is not a count: it is left out.
    assert value(m, "fabric_port_receive_dropped_total", spine) is None
    rows[0] = ("leaf1", 3, PortCounters(rx_bytes=150))
    assert value(m, "fabric_port_receive_bytes_total", leaf) == 150


@pytest.mark.parametrize(
    ("set_provider", "series", "labels", "complaint"),
    [
        (
            "set_port_counter_provider",
            "fabric_port_receive_bytes_total",
            {"switch": "a", "port": "1"},
            "port counter provider failed",
        ),
        ("set_link_provider", "fabric_link_up", LINK_LABELS, "link provider failed"),
    ],
)
def test_collected_series_absent_without_provider_and_on_provider_failure(
    m: FabricMetrics,
    caplog: pytest.LogCaptureFixture,
    set_provider: str,
    series: str,
    labels: dict[str, str],
    complaint: str,
) -> None:
    assert value(m, series, labels) is None

    def broken() -> Iterable[object]:
        raise RuntimeError("snapshot not ready")

    getattr(m, set_provider)(broken)
    m.switches_connected.set(2)
    text = generate_latest(m.registry).decode()  # the scrape still succeeds
    assert "fabric_switches_connected 2.0" in text
    assert complaint in caplog.text


def test_openflow_and_packet_in_counters(m: FabricMetrics) -> None:
    m.openflow_messages_sent.labels("flow_mod").inc(3)
    m.openflow_errors.labels("bad_match").inc()
    m.count_packet_in("leaf1", "arp")
    m.count_packet_in("leaf1", "ipv6")  # unknown kinds stay bounded
    m.lldp_ignored.labels("leaf1").inc()
    assert value(m, "fabric_openflow_messages_sent_total", {"type": "flow_mod"}) == 3
    assert value(m, "fabric_openflow_errors_total", {"type": "bad_match"}) == 1
    assert value(m, "fabric_packet_in_total", {"switch": "leaf1", "kind": "arp"}) == 1
    assert value(m, "fabric_packet_in_total", {"switch": "leaf1", "kind": "other"}) == 1
    assert value(m, "fabric_packet_in_total", {"switch": "leaf1", "kind": "ipv6"}) is None
    assert value(m, "fabric_lldp_ignored_total", {"switch": "leaf1"}) == 1


def test_stats_histogram_and_kind_validation(m: FabricMetrics) -> None:
    m.observe_stats_request("port", 0.004)
    m.observe_stats_request("port", 0.2)
    assert value(m, "fabric_stats_request_duration_seconds_count", {"kind": "port"}) == 2
    assert value(m, "fabric_stats_request_duration_seconds_sum", {"kind": "port"}) == (
        pytest.approx(0.204)
    )
    assert (
        value(m, "fabric_stats_request_duration_seconds_bucket", {"kind": "port", "le": "0.005"})
        == 1
    )
    with pytest.raises(ValueError, match="group"):
        m.observe_stats_request("group", 0.1)
    m.stats_failures.labels("leaf2").inc()
    assert value(m, "fabric_stats_failures_total", {"switch": "leaf2"}) == 1


def test_te_metrics(m: FabricMetrics) -> None:
    m.reroutes.labels("congestion").inc()
    m.count_congestion_event(congested=True)
    m.count_congestion_event(congested=False)
    m.count_congestion_event(congested=False)
    m.policy_applies.labels("applied").inc()
    m.config_errors.labels("link_capacity").inc()
    m.packet_in_dropped.labels("rate_limited").inc()
    m.path_computation_seconds.observe(0.0003)
    m.flow_programming_seconds.observe(0.02)
    m.flow_setup_seconds.observe(0.03)
    assert value(m, "fabric_reroutes_total", {"reason": "congestion"}) == 1
    assert value(m, "fabric_congestion_events_total", {"state": "congested"}) == 1
    assert value(m, "fabric_congestion_events_total", {"state": "cleared"}) == 2
    assert value(m, "fabric_policy_applies_total", {"result": "applied"}) == 1
    assert value(m, "fabric_config_errors_total", {"kind": "link_capacity"}) == 1
    assert value(m, "fabric_packet_in_dropped_total", {"reason": "rate_limited"}) == 1
    assert value(m, "fabric_path_computation_seconds_count") == 1
    assert value(m, "fabric_path_computation_seconds_bucket", {"le": "0.0005"}) == 1
    assert value(m, "fabric_flow_programming_seconds_count") == 1
    assert value(m, "fabric_flow_setup_seconds_count") == 1


def test_flows_tracked_replaces_per_policy_series(m: FabricMetrics) -> None:
    m.set_flows_tracked({"rocev2": 4, "nccl": 2})
    assert value(m, "fabric_flows_tracked", {"policy": "rocev2"}) == 4
    m.set_flows_tracked({"nccl": 1})
    assert value(m, "fabric_flows_tracked", {"policy": "rocev2"}) is None
    assert value(m, "fabric_flows_tracked", {"policy": "nccl"}) == 1


def test_gauges_switches_and_hosts(m: FabricMetrics) -> None:
    m.switches_connected.set(6)
    m.hosts_learned.set(8)
    assert value(m, "fabric_switches_connected") == 6
    assert value(m, "fabric_hosts_learned") == 8


def test_exposition_passes_promtool_lint(m: FabricMetrics) -> None:
    m.set_link_provider(
        lambda: (view(), view(name="leaf2/3->spine1/2", src_switch="leaf2", up=False))
    )
    m.set_port_counter_provider(lambda: [("leaf1", 3, PortCounters(rx_bytes=1, tx_bytes=2))])
    m.count_packet_in("leaf1", "lldp")
    m.openflow_messages_sent.labels("flow_mod").inc()
    m.observe_stats_request("flow", 0.01)
    m.reroutes.labels("failure").inc()
    m.set_flows_tracked({"rocev2": 1})
    m.flow_setup_seconds.observe(0.1)
    text = generate_latest(m.registry)
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    assert proc.stdout.strip() == b"" and proc.stderr.strip() == b"", proc.stderr.decode()
