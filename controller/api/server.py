"""Bootstrap of the gRPC API server: listener, limits, health, reflection, TLS and token.

:func:`start_api_server` wires a :class:`FabricControllerServicer` over a
facade into a ``grpc.server`` on its own thread pool, adds the standard
``grpc.health.v1`` and reflection services, and optionally TLS and a bearer
token checked by an interceptor (health and reflection stay open so probes and
tools work without the secret). Another interceptor makes every method's
request parsing tolerant, so a request that is not a valid protobuf message
gets INVALID_ARGUMENT instead of gRPC's INTERNAL with a logged traceback;
when a token is configured, a caller without it gets UNAUTHENTICATED first,
whatever it sent. Configuration mistakes (including a TLS certificate and key
that do not make a pair) are raised as :class:`InvalidArgument` naming the
setting; a listen address that cannot be bound is an :class:`OSError` naming
the address. This module does not serve requests itself and never touches
controller state.
"""

from __future__ import annotations

import hmac
import logging
import ssl
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from fabric.v1 import fabric_pb2, fabric_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controller.api.facade import FabricFacade
from controller.api.service import FabricControllerServicer
from controller.errors import InvalidArgument

__all__ = [
    "ApiServerConfig",
    "ApiServer",
    "BearerTokenInterceptor",
    "MalformedRequestInterceptor",
    "SERVICE_NAME",
    "parse_listen",
    "start_api_server",
]

log = logging.getLogger(__name__)

SERVICE_NAME: str = fabric_pb2.DESCRIPTOR.services_by_name["FabricController"].full_name
# Probes and API browsers must work without the token.
_OPEN_METHOD_PREFIXES = (
    f"/{health.SERVICE_NAME}/",
    f"/{reflection.SERVICE_NAME}/",
    "/grpc.reflection.v1.ServerReflection/",
)


@dataclass(frozen=True)
class ApiServerConfig:
    """How the API listens. ``max_watchers`` None = half the worker threads."""

    listen: str = "127.0.0.1:50051"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token_file: Path | None = None
    max_message_bytes: int = 4 * 1024 * 1024
    max_workers: int = 32
    watch_queue: int = 1024
    max_watchers: int | None = None


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` or ``[v6addr]:port`` -> (host, port); port 0 picks a free port."""
    text = listen.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise InvalidArgument("grpc_listen", f"{listen!r} is not host:port")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise InvalidArgument("grpc_listen", f"{listen!r}: write IPv6 hosts as [addr]:port")
    elif ":" in host:
        raise InvalidArgument("grpc_listen", f"{listen!r}: write IPv6 hosts as [addr]:port")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise InvalidArgument("grpc_listen", f"{listen!r}: port must be 0..65535")
    return host, int(port_text)


def _read_file(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(setting, f"cannot read {path}: {exc.strerror or exc}") from None


def _read_token(path: Path) -> str:
    token = _read_file(path, "grpc_token_file").decode("utf-8", errors="replace").strip()
    if not token:
        raise InvalidArgument("grpc_token_file", f"{path} is empty")
    return token


def _denied(handler: Any, message: str) -> Any:
    """A handler of the same shape as ``handler`` that only rejects the call."""

    def reject(request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(reject, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(reject, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(reject, **kwargs)
    return grpc.stream_stream_rpc_method_handler(reject, **kwargs)


class BearerTokenInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Requires ``authorization: Bearer <token>`` on every call except health and reflection."""

    MESSAGE = "missing or invalid bearer token"

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def _authorized(self, metadata: Any) -> bool:
        for key, value in metadata or ():
            if key == "authorization":
                got = value.encode() if isinstance(value, str) else bytes(value)
                # Constant time: the comparison must not reveal how much matched.
                return hmac.compare_digest(got, self._expected)
        return False

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        method = handler_call_details.method or ""
        if method.startswith(_OPEN_METHOD_PREFIXES) or self._authorized(
            handler_call_details.invocation_metadata
        ):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        return None if handler is None else _denied(handler, self.MESSAGE)


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if parse is None:
        return None

    def tolerant(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # DecodeError, or whatever else bad bytes make it raise
            return _Malformed(" ".join(str(exc).split())[:200] or type(exc).__name__)

    return tolerant


class MalformedRequestInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Answers INVALID_ARGUMENT for request bytes that are not the method's message.

    gRPC's own handling is INTERNAL plus "Exception deserializing request!"
    and a traceback in the log, for every service on the server.
    """

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method or "?"

        def refuse(request: Any, context: Any) -> None:
            if isinstance(request, _Malformed):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"{method}: malformed request, not a valid protobuf message: {request.reason}",
                )

        def checked(requests: Iterator[Any], context: Any) -> Iterator[Any]:
            for request in requests:
                refuse(request, context)
                yield request

        kwargs = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary or handler.unary_stream:
            behavior = handler.unary_unary or handler.unary_stream

            def unary(request: Any, context: Any) -> Any:
                refuse(request, context)
                return behavior(request, context)

            make = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary
                else grpc.unary_stream_rpc_method_handler
            )
            return make(unary, **kwargs)
        behavior = handler.stream_unary or handler.stream_stream

        def streaming(requests: Iterator[Any], context: Any) -> Any:
            return behavior(checked(requests, context), context)

        make = (
            grpc.stream_unary_rpc_method_handler
            if handler.stream_unary
            else grpc.stream_stream_rpc_method_handler
        )
        return make(streaming, **kwargs)


class _EncryptedKey(Exception):
    pass


def _no_password() -> bytes:
    raise _EncryptedKey


def _check_tls_pair(cert: Path, key: Path) -> bytes:
    """Refuse files that are not a PEM certificate and its key; return the key's bytes.

    gRPC itself only fails later, in ``add_secure_port``, with nothing but
    "failed to bind", which reads like a busy address.
    """
    cert_pem = _read_file(cert, "grpc_tls_cert")
    key_pem = _read_file(key, "grpc_tls_key")
    cert_ok = b"-----BEGIN CERTIFICATE-----" in cert_pem
    key_ok = b"PRIVATE KEY-----" in key_pem
    if not cert_ok and b"PRIVATE KEY-----" in cert_pem and b"BEGIN CERTIFICATE" in key_pem:
        raise InvalidArgument(
            "grpc_tls_cert",
            f"{cert} holds a private key and {key} a certificate: the two files are swapped",
        )
    if not cert_ok:
        raise InvalidArgument("grpc_tls_cert", f"{cert} holds no PEM certificate")
    if not key_ok:
        raise InvalidArgument("grpc_tls_key", f"{key} holds no PEM private key")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=_no_password)
    except _EncryptedKey:
        raise InvalidArgument(
            "grpc_tls_key", f"{key} is encrypted; give the key without a passphrase"
        ) from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise InvalidArgument(
                "grpc_tls_key", f"{key} is not the private key of the certificate in {cert}"
            ) from None
        reason = exc.reason or str(exc)
        raise InvalidArgument(
            "grpc_tls_cert", f"{cert} and {key} are not a usable certificate and key ({reason})"
        ) from None
    return key_pem


class ApiServer:
    """A running API server; create with :func:`start_api_server`."""

    def __init__(
        self,
        *,
        server: Any,
        executor: ThreadPoolExecutor,
        health_servicer: Any,
        host: str,
        port: int,
    ) -> None:
        self._server = server
        self._executor = executor
        self._health = health_servicer
        self.host = host
        self.port = port

    @property
    def address(self) -> str:
        """Where clients connect, with the actual port (useful after port 0)."""
        return f"{self.host}:{self.port}"

    def set_serving(self, serving: bool) -> None:
        """Report SERVING / NOT_SERVING on the health service (overall and for the API)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            self._health.set(name, status)

    def stop(self, grace: float | None = 1.0) -> None:
        """Refuse new calls, give running ones ``grace`` seconds, then cancel them."""
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
        # Streams end within one watch poll after cancellation; do not wait on them.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return bool(self._server.wait_for_termination(timeout))


def _check_config(config: ApiServerConfig) -> None:
    if config.max_message_bytes < 1024:
        raise InvalidArgument("grpc_max_message_bytes", "must be at least 1024")
    if config.max_workers < 2:
        raise InvalidArgument("grpc_max_workers", "must be at least 2")
    if (config.tls_cert is None) != (config.tls_key is None):
        raise InvalidArgument(
            "grpc_tls_key" if config.tls_key is None else "grpc_tls_cert",
            "TLS needs both a certificate and a key",
        )


def _credentials(config: ApiServerConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    key = _check_tls_pair(config.tls_cert, config.tls_key)
    cert = _read_file(config.tls_cert, "grpc_tls_cert")
    return grpc.ssl_server_credentials([(key, cert)])


def _interceptors(
    config: ApiServerConfig, forwarder: grpc.ServerInterceptor | None
) -> list[grpc.ServerInterceptor]:
    """Token check first; then a standby's relay to the leader; then malformed requests
    (inside the token check, so a caller without the token learns nothing more)."""
    interceptors: list[grpc.ServerInterceptor] = []
    if config.token_file is not None:
        interceptors.append(BearerTokenInterceptor(_read_token(config.token_file)))
    if forwarder is not None:
        interceptors.append(forwarder)
    interceptors.append(MalformedRequestInterceptor())
    return interceptors


def _add_services(server: Any, facade: FabricFacade, config: ApiServerConfig) -> Any:
    """The fabric service, health and reflection; returns the health servicer."""
    servicer = FabricControllerServicer(
        facade,
        watch_queue=config.watch_queue,
        max_watchers=config.max_watchers or max(1, config.max_workers // 2),
        max_response_bytes=config.max_message_bytes,
    )
    fabric_pb2_grpc.add_FabricControllerServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return health_servicer


def _bind(server: Any, address: str, credentials: Any, executor: ThreadPoolExecutor) -> int:
    try:
        if credentials is not None:
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        executor.shutdown(wait=False)
        raise OSError(
            f"cannot listen on {address}: address in use or not available ({exc})"
        ) from None
    if not port:
        executor.shutdown(wait=False)
        raise OSError(f"cannot listen on {address}: address in use or not available")
    return int(port)


def start_api_server(
    facade: FabricFacade,
    config: ApiServerConfig,
    *,
    forwarder: grpc.ServerInterceptor | None = None,
) -> ApiServer:
    """Bind, start and return the API server; health reports SERVING once started.

    ``forwarder`` (a cluster standby's :class:`~controller.api.forward.LeaderForwarder`)
    relays writes to the leader, after the token check and before anything else.
    """
    host, _ = parse_listen(config.listen)
    _check_config(config)
    credentials = _credentials(config)
    executor = ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="grpc-api")
    server = grpc.server(
        executor,
        interceptors=_interceptors(config, forwarder),
        options=[
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.max_receive_message_length", config.max_message_bytes),
            # Without this a second server could silently share the port.
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = _add_services(server, facade, config)
    port = _bind(server, config.listen.strip(), credentials, executor)
    server.start()
    api = ApiServer(
        server=server, executor=executor, health_servicer=health_servicer, host=host, port=port
    )
    api.set_serving(True)
    log.info(
        "gRPC API listening on %s (tls=%s, token=%s)",
        api.address,
        credentials is not None,
        config.token_file is not None,
    )
    return api
