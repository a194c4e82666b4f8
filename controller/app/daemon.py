"""fabricd: the controller daemon.

Starts the metrics exporter and the gRPC API (OS threads), then the OpenFlow
side in the hub (eventlet, main thread) - without eventlet monkey patching,
which grpcio does not survive. SIGTERM and SIGINT only raise a flag (through
a pipe the hub watches): the daemon then stops taking writes, lets the API
answer what it already did, and exits 0, leaving the switches' flows in
place (fail-secure), so a restart does not interrupt traffic. Any startup
problem is one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

from controller.app.config import ConfigError, FabricdConfig, HostPort, load_config
from controller.app.listening import listening_here

log = logging.getLogger("fabricd")

API_GRACE_S = 1.0  # in-flight RPCs get this long to answer at shutdown
OF_LISTEN_WAIT_S = 10.0  # the OpenFlow server must listen within this long of the start


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The frameworks are chatty at INFO (every event registration); keep their warnings.
    for name in ("ryu", "ryu.base.app_manager", "ryu.controller", "os_ken"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def _check_listen(addr: HostPort, what: str) -> None:
    """Fail early with one clear line if an address is taken: the framework would only
    log it, and gRPC's C core prints lines of its own before the bind error surfaces."""
    family = socket.AF_INET6 if ":" in addr.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((addr.host, addr.port))
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigError(f"cannot listen for {what} on {addr}: {reason}") from None
    finally:
        sock.close()


class StopSignal:
    """SIGTERM/SIGINT raise a flag and wake the hub through a pipe; nothing is raised
    into whatever code the main thread happens to run."""

    def __init__(self) -> None:
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self.received: int | None = None
        self.failed: str | None = None  # fabricd cannot go on: why, in one line

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        with contextlib.suppress(OSError):
            os.write(self._wfd, b"x")

    def fail(self, reason: str) -> None:
        """Stop because fabricd cannot serve (``reason``: one line for the user)."""
        self.failed = reason
        with contextlib.suppress(OSError):
            os.write(self._wfd, b"x")

    def wait_green(self) -> None:
        """Block the calling green thread until a stop signal arrived or :meth:`fail`."""
        import eventlet.hubs

        while self.received is None and self.failed is None:
            eventlet.hubs.trampoline(self._rfd, read=True)
            with contextlib.suppress(BlockingIOError):
                os.read(self._rfd, 64)

    def close(self) -> None:
        for fd in (self._rfd, self._wfd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _start_metrics(cfg: FabricdConfig, registry: Any) -> Any:
    from controller.observability.exporter import start_metrics_server

    try:
        return start_metrics_server(cfg.metrics_listen.host, cfg.metrics_listen.port, registry)
    except OSError as exc:  # its message already names the address
        raise ConfigError(str(exc.strerror or exc)) from None


def _start_api(cfg: FabricdConfig, facade: Any, member: Any) -> Any:
    from controller.api.forward import LeaderForwarder
    from controller.api.server import SERVICE_NAME, ApiServerConfig, start_api_server

    forwarder = None
    if cfg.cluster_etcd:
        forwarder = LeaderForwarder(
            service=SERVICE_NAME,
            is_leader=member.is_leader,
            leader_address=member.leader_address,
            after_write=lambda timeout: facade.catch_up(timeout=timeout),
        )
    try:
        api = start_api_server(
            facade,
            ApiServerConfig(
                listen=str(cfg.grpc_listen),
                tls_cert=cfg.grpc_tls_cert,
                tls_key=cfg.grpc_tls_key,
                token_file=cfg.grpc_token_file,
            ),
            forwarder=forwarder,
        )
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot serve gRPC on {cfg.grpc_listen}: {exc}") from None
    api.set_serving(False)  # health says SERVING once the OpenFlow side runs
    return api


def _start_southbound(cfg: FabricdConfig, hub_context: Any) -> Any:
    from controller.southbound.framework import FrameworkMissing
    from controller.southbound.launcher import start_southbound

    try:
        return start_southbound(
            name=cfg.southbound,
            host=cfg.of_listen.host,
            port=cfg.of_listen.port,
            hub_context=hub_context,
        )
    except FrameworkMissing as exc:
        raise ConfigError(str(exc)) from None


def _serve(cfg: FabricdConfig, stop: StopSignal, api: Any, metrics_port: int, south: Any) -> None:
    """Announce readiness, then wait (in the hub) until a stop signal arrives."""

    def announce() -> None:
        south.hub.sleep(0.1)
        # The framework binds its OpenFlow server in a green thread that only logs a
        # failed bind: ready means one of this process's sockets listens there.
        waited = 0.1
        while listening_here(cfg.of_listen.port) is False:
            if waited >= OF_LISTEN_WAIT_S:
                stop.fail(
                    f"cannot listen for OpenFlow on {cfg.of_listen}: the framework's server "
                    f"did not start within {OF_LISTEN_WAIT_S:.0f} s (see the log above)"
                )
                return
            south.hub.sleep(0.05)
            waited += 0.05
        if stop.received is None:
            api.set_serving(True)
        log.info(
            "fabricd ready: openflow=%s grpc=%s:%d metrics=%s:%d state=%s southbound=%s%s",
            cfg.of_listen,
            cfg.grpc_listen.host,
            api.port,
            cfg.metrics_listen.host,
            metrics_port,
            cfg.etcd_label() if cfg.cluster_etcd else cfg.state_dir,
            cfg.southbound,
            f" cluster={cfg.cluster_name}" if cfg.cluster_etcd else "",
        )

    south.hub.spawn(announce)
    stop.wait_green()
    if stop.failed is not None:
        raise ConfigError(stop.failed)
    name = signal.Signals(stop.received).name if stop.received else "stop"
    log.info("fabricd stopping on %s (switches keep their flows)", name)


def _assemble(cfg: FabricdConfig) -> Any:
    from controller.app.composition import assemble
    from controller.store.documents import StoreError

    for addr, what in (
        (cfg.of_listen, "OpenFlow"),
        (cfg.grpc_listen, "gRPC"),
        (cfg.metrics_listen, "metrics"),
    ):
        _check_listen(addr, what)
    try:
        return assemble(cfg)
    except (ValueError, StoreError) as exc:
        raise ConfigError(str(exc)) from None


def _join_cluster(cfg: FabricdConfig, member: Any, api: Any) -> None:
    """A cluster member joins the election once its API listens (standbys forward to it)."""
    from controller.app.cluster import ClusterMember
    from controller.store.documents import StoreError

    if not isinstance(member, ClusterMember):
        return
    try:
        member.start(grpc_address=f"{cfg.grpc_listen.host}:{api.port}", grpc_port=api.port)
    except StoreError as exc:
        raise ConfigError(str(exc)) from None


def _shutdown(assembly: Any, api: Any, metrics_server: Any, south: Any) -> None:
    """No new writes (queued ones are cancelled, never half-done), then let the API
    answer what was done, then leave the cluster and close the store."""
    if api is not None:
        api.set_serving(False)
    assembly.mailbox.close()
    if api is not None:
        api.stop(grace=API_GRACE_S)
    if metrics_server is not None:
        metrics_server.close()
    assembly.close()
    if south is not None:
        south.close()


def run(cfg: FabricdConfig, stop: StopSignal) -> int:
    assembly = _assemble(cfg)
    api = metrics_server = south = None
    try:
        metrics_server = _start_metrics(cfg, assembly.metrics.registry)
        api = _start_api(cfg, assembly.facade, assembly.member)
        _join_cluster(cfg, assembly.member, api)
        south = _start_southbound(cfg, assembly.hub)
        _serve(cfg, stop, api, metrics_server.port, south)
        return 0
    finally:
        _shutdown(assembly, api, metrics_server, south)


def main(argv: list[str] | None = None) -> int:
    stop = StopSignal()
    stop.install()  # before anything else: a stop during startup is honoured too
    try:
        cfg = load_config(argv)
    except ConfigError as exc:
        print(f"fabricd: error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(cfg.log_level)
    try:
        return run(cfg, stop)
    except ConfigError as exc:
        print(f"fabricd: error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.close()


if __name__ == "__main__":
    sys.exit(main())
