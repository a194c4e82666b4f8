"""Serve ``/metrics`` over HTTP from a daemon OS thread.

This wraps prometheus_client's own WSGI server so that the daemon gets the
actual bound port (port 0 picks a free one, as tests need), a way to stop it,
and a bind failure that names the address. It serves exactly the registry it
is given, never the process-global default one, and it must run in a real OS
thread: never start it from a green thread or share eventlet objects with it.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "MetricsServer", "start_metrics_server"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9108


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MetricsServer:
    """A running exporter. ``port`` is the port actually bound."""

    def __init__(self, server: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port: int = server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{_address(self.host, self.port)}/metrics"

    def close(self, *, timeout: float = 5.0) -> None:
        """Stop serving and release the socket. Safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()


def start_metrics_server(host: str, port: int, registry: CollectorRegistry) -> MetricsServer:
    """Serve ``registry`` on ``http://host:port/metrics``.

    Raises OSError (same errno) whose message names ``host:port`` when the
    address cannot be bound, e.g. because another process holds the port.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be 0..65535, not {port}")
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise OSError(
            e.errno, f"cannot serve metrics on {_address(host, port)}: {e.strerror or e}"
        ) from e
    return MetricsServer(server, thread, host)
