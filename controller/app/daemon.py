"""fabricd: the controller daemon.

Starts the metrics exporter and the gRPC API (OS threads), then Ryu's
OpenFlow server and our app in the hub (eventlet, main thread) - without
eventlet monkey patching, which grpcio does not survive. Exits 0 on SIGTERM or
SIGINT and leaves the switches' flows in place (fail-secure), so a restart
does not interrupt traffic. Any startup problem is one line on stderr and a
non-zero exit code.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import socket
import sys
from types import FrameType

from controller.app.config import ConfigError, FabricdConfig, HostPort, load_config

log = logging.getLogger("fabricd")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Ryu is chatty at INFO (every event registration); keep its warnings.
    for name in ("ryu", "ryu.base.app_manager", "ryu.controller"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def _check_listen(addr: HostPort, what: str) -> None:
    """Fail early with one clear line if an address is taken: Ryu would only log it, and
    gRPC's C core prints lines of its own to stderr before the bind error surfaces."""
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


def _patch_eventlet() -> None:
    # Ryu 4.34 imports eventlet.wsgi.ALREADY_HANDLED, gone from newer eventlet.
    import warnings

    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        eventlet.wsgi.ALREADY_HANDLED = object()


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def run(cfg: FabricdConfig) -> int:
    from controller.api.server import ApiServerConfig, start_api_server
    from controller.app.runtime import Runtime
    from controller.observability.exporter import start_metrics_server

    _check_listen(cfg.of_listen, "OpenFlow")
    _check_listen(cfg.grpc_listen, "gRPC")
    _check_listen(cfg.metrics_listen, "metrics")
    _patch_eventlet()
    try:
        runtime = Runtime(cfg)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    api = metrics_server = app_mgr = None
    try:
        try:
            metrics_server = start_metrics_server(
                cfg.metrics_listen.host, cfg.metrics_listen.port, runtime.metrics.registry
            )
        except OSError as exc:  # its message already names the address
            raise ConfigError(str(exc.strerror or exc)) from None
        try:
            api = start_api_server(
                runtime,
                ApiServerConfig(
                    listen=str(cfg.grpc_listen),
                    tls_cert=cfg.grpc_tls_cert,
                    tls_key=cfg.grpc_tls_key,
                    token_file=cfg.grpc_token_file,
                ),
            )
        except (OSError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot serve gRPC on {cfg.grpc_listen}: {exc}") from None
        api.set_serving(False)  # health says SERVING once the OpenFlow side runs

        from ryu import cfg as ryu_cfg
        from ryu.base.app_manager import AppManager
        from ryu.controller import controller as _ryu_controller  # noqa: F401  (registers ofp opts)
        from ryu.lib import hub

        ryu_cfg.CONF(
            args=[
                "--ofp-listen-host",
                cfg.of_listen.host,
                "--ofp-tcp-listen-port",
                str(cfg.of_listen.port),
            ],
            project="ryu",
        )
        app_mgr = AppManager.get_instance()
        app_mgr.load_apps(["controller.southbound.ofapp", "ryu.controller.ofp_handler"])
        contexts = app_mgr.create_contexts()
        contexts["fabric_runtime"] = runtime
        services = app_mgr.instantiate_apps(**contexts)

        def announce() -> None:
            hub.sleep(0.1)
            api.set_serving(True)
            log.info(
                "fabricd ready: openflow=%s grpc=%s:%d metrics=%s:%d state=%s",
                cfg.of_listen,
                cfg.grpc_listen.host,
                api.port,
                cfg.metrics_listen.host,
                metrics_server.port,
                cfg.state_dir,
            )

        services.append(hub.spawn(announce))
        signal.signal(signal.SIGTERM, _raise_exit)
        signal.signal(signal.SIGINT, _raise_exit)
        try:
            hub.joinall(services)
        except (SystemExit, KeyboardInterrupt):
            log.info("fabricd stopping (switches keep their flows)")
        return 0
    finally:
        runtime.close()
        if api is not None:
            api.stop(grace=1.0)
        if metrics_server is not None:
            metrics_server.close()
        if app_mgr is not None:
            # Shutting down anyway: never mask the exit code.
            with contextlib.suppress(Exception):
                app_mgr.close()


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = load_config(argv)
    except ConfigError as exc:
        print(f"fabricd: error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(cfg.log_level)
    try:
        return run(cfg)
    except ConfigError as exc:
        print(f"fabricd: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
