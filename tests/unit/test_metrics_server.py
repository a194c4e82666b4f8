"""The /metrics HTTP exporter: serves the given registry, reports a busy port clearly."""

from __future__ import annotations

import errno
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from controller.observability.exporter import start_metrics_server
from controller.observability.metrics import FabricMetrics


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
