"""Writes sent to a standby controller go to the leader, byte for byte.

In a cluster any node answers the API: reads from its own views, writes from
the leader (the only node that programs switches and decides). A standby's
server passes each write request on to the leader's API unchanged and hands
back the leader's answer unchanged, status, details and trailing metadata
(the BadRequest detail) included, so a client never needs to know who leads.
After a relayed write succeeds, ``after_write`` brings this node's views up
to the shared store before the answer goes back, so a client reads its own
write from the node it wrote to.
This module only relays: it never decodes the requests it forwards.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import grpc

__all__ = ["WRITE_METHODS", "LeaderForwarder"]

WRITE_METHODS = frozenset(
    {"ApplyPolicy", "DeletePolicy", "DrainLink", "UndrainLink", "ApplyJob", "DeleteJob"}
)
_FORWARD_TIMEOUT_S = 10.0
_CATCH_UP_S = 2.0

log = logging.getLogger(__name__)


class LeaderForwarder(grpc.ServerInterceptor):  # type: ignore[misc]
    """Relays writes of ``service`` to ``leader_address()`` while ``is_leader()`` is false."""

    def __init__(
        self,
        *,
        service: str,
        is_leader: Callable[[], bool],
        leader_address: Callable[[], str | None],
        credentials: grpc.ChannelCredentials | None = None,
        after_write: Callable[[float], None] | None = None,
    ) -> None:
        self._prefix = f"/{service}/"
        self._is_leader = is_leader
        self._leader_address = leader_address
        self._credentials = credentials
        self._after_write = after_write
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def _channel(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = (
                    grpc.secure_channel(address, self._credentials)
                    if self._credentials is not None
                    else grpc.insecure_channel(address)
                )
                self._channels[address] = channel
            return channel

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        method = handler_call_details.method or ""
        name = method.removeprefix(self._prefix)
        if name == method or name not in WRITE_METHODS or self._is_leader():
            return continuation(handler_call_details)
        incoming = handler_call_details.invocation_metadata or ()
        metadata = tuple((k, v) for k, v in incoming if k == "authorization")

        def forward(raw: bytes, context: Any) -> bytes:
            address = self._leader_address()
            if address is None:
                context.abort(grpc.StatusCode.UNAVAILABLE, "no leader is elected yet; retry soon")
                raise AssertionError("unreachable: abort raises")
            remaining = context.time_remaining()
            relay = self._channel(address).unary_unary(method)  # bytes in, bytes out
            try:
                answer: bytes = relay(
                    raw,
                    timeout=min(remaining, _FORWARD_TIMEOUT_S) if remaining else _FORWARD_TIMEOUT_S,
                    metadata=metadata,
                )
            except grpc.RpcError as exc:
                context.set_trailing_metadata(exc.trailing_metadata() or ())
                context.abort(exc.code(), exc.details() or "")
            if self._after_write is not None:
                left = context.time_remaining()
                try:  # the leader committed: this node's views show it before the answer
                    self._after_write(min(left, _CATCH_UP_S) if left else _CATCH_UP_S)
                except Exception as exc:  # the write stands; only this node lags
                    log.warning("after a relayed %s: views not refreshed: %s", name, exc)
            return answer

        return grpc.unary_unary_rpc_method_handler(forward)

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
