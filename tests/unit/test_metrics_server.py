"""The /metrics HTTP exporter: serves the given registry, reports a busy port clearly."""

from __future__ import annotations

import errno
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from controller.engine.views import LinkView
from controller.fabric.model import LinkId, PortRef
from controller.observability.exporter import start_metrics_server
from controller.observability.metrics import FabricMetrics
from controller.telemetry.counters import PortCounters


def test_serves_metrics_on_an_ephemeral_port_and_closes() -> None:
    metrics = FabricMetrics(CollectorRegistry())
    metrics.switches_connected.set(4)
    server = start_metrics_server("127.0.0.1", 0, metrics.registry)
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            body = resp.read().decode()
        assert "fabric_switches_connected 4.0" in body
        # Only the registry it was given: nothing from the process-global one.
        assert "python_gc_objects_collected_total" not in body
    finally:
        server.close()
    server.close()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=2)


def test_port_in_use_raises_oserror_naming_the_address() -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with pytest.raises(OSError) as exc:
            start_metrics_server("127.0.0.1", port, CollectorRegistry())
        assert f"127.0.0.1:{port}" in str(exc.value)
        assert exc.value.errno == errno.EADDRINUSE
    finally:
        holder.close()


def test_rejects_port_out_of_range() -> None:
    with pytest.raises(ValueError, match="65536"):
        start_metrics_server("127.0.0.1", 65536, CollectorRegistry())


def test_a_scrape_can_ask_for_some_series_only() -> None:
    """``name[]`` picks families (what a large fabric's scrape jobs use, see the deploy
    README): the link and port collectors take part like any other metric."""
    metrics = FabricMetrics(CollectorRegistry())
    lid = LinkId(PortRef(1, 3), PortRef(0x65, 1))
    link = LinkView(lid, "leaf1/3->spine1/1", "leaf1", "spine1", True, False, 1e9, 5e8, 0.5, False)
    metrics.set_link_provider(lambda: (link,))
    metrics.set_port_counter_provider(lambda: [("leaf1", 3, PortCounters(rx_bytes=7))])
    metrics.switches_connected.set(4)
    server = start_metrics_server("127.0.0.1", 0, metrics.registry)
    try:

        def families(query: str) -> set[str]:
            with urllib.request.urlopen(server.url + query, timeout=5) as resp:
                lines = resp.read().decode().splitlines()
            return {ln.split("{")[0].split(" ")[0] for ln in lines if ln and ln[0] != "#"}

        everything = families("")
        assert {"fabric_link_up", "fabric_port_receive_bytes_total"} <= everything
        assert "fabric_link_bytes_per_second" in everything
        assert families("?name[]=fabric_link_utilization_ratio") == {
            "fabric_link_utilization_ratio"
        }
        picked = "?name[]=fabric_link_up&name[]=fabric_port_receive_bytes_total"
        assert families(picked) == {"fabric_link_up", "fabric_port_receive_bytes_total"}
    finally:
        server.close()
