"""Start the OpenFlow side (the framework's app manager and our shim) without monkey patching.

The framework's OpenFlow server and the shim run as green threads of the
hub in the main OS thread; grpcio and the metrics exporter run in OS threads
of their own, which eventlet monkey patching would break (see the project's
environment notes), so nothing here patches anything.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from controller.southbound import framework

__all__ = ["Southbound", "start_southbound"]


@dataclass
class Southbound:
    """The running OpenFlow side: its app manager, green threads and hub module."""

    app_manager: Any
    services: list[Any]
    hub: Any

    def close(self) -> None:
        # Shutting down anyway: never mask the exit code.
        with contextlib.suppress(Exception):
            self.app_manager.close()


def start_southbound(*, name: str, host: str, port: int, hub_context: Any) -> Southbound:
    """Listen for switches on ``host:port`` with framework ``name``; the shim gets
    ``hub_context`` (a :class:`controller.app.composition.HubContext`)."""
    fw = framework.select(name)
    _ = fw.controller_module  # its import registers the OpenFlow listen options
    fw.cfg.CONF(
        args=["--ofp-listen-host", host, "--ofp-tcp-listen-port", str(port)],
        project=fw.package,
    )
    manager = fw.app_manager.AppManager.get_instance()
    manager.load_apps(["controller.southbound.ofapp", fw.ofp_handler])
    contexts = manager.create_contexts()
    contexts["fabric_hub"] = hub_context
    services = manager.instantiate_apps(**contexts)
    return Southbound(app_manager=manager, services=services, hub=fw.hub)
