"""Property-based tests of every RPC's request handling, over a real loopback server.

For each method of ``fabric.v1.FabricController`` (read from the service
descriptor, so a new RPC is covered without touching this file), requests are
drawn from the method's message type - every field set to any value its wire
type allows, lists past the size limits, strings with control characters -
and, separately, as arbitrary bytes. Every answer must be OK or a precise
status a client can act on; INTERNAL, UNKNOWN or a traceback in the log is a
failure. The example budget is fixed and derandomized so ``make test`` stays
fast and repeatable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from apilab import ApiLab, running_server
from fabric.v1 import fabric_pb2 as pb
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api.server import SERVICE_NAME, ApiServer

BUDGET = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
METHODS = list(pb.DESCRIPTOR.services_by_name["FabricController"].methods)
PRECISE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
# A watch that starts streaming is ended by the client's short deadline or by cancelling.
STREAM_ENDS = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
_MAX_DEPTH = 4

strings = st.one_of(
    st.sampled_from(
        [
            *("", "ai", "default", "roce", "leaf1", "spine2", "leaf1-spine2", "leaf1/3-spine1/1"),
            *("10.0.1.1", "10.0.2.1", "10.0.0.0/8", "::1", "x" * 64, "\x1b]0;t\x07", "a-", "-"),
        ]
    ),
    st.text(max_size=20),
    st.text(min_size=250, max_size=300),
)
_INTS = {
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
}


def small_or_any(wide: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    """Ports, DSCP and enum numbers are small; also anything the wire type holds."""
    return st.one_of(st.integers(0, 70), st.integers(65530, 65540), wide)


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INTS:
        return small_or_any(_INTS[kind])
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return strings
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.integers(-2, 20)  # proto3 enums are open: unknown numbers arrive too
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    raise AssertionError(f"no strategy for field type {kind} of {field.full_name}")


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if not field.is_repeated:
        return _value(field, depth)
    # Lists reach past the 64-entry limit near the top; deeper ones stay short.
    longest = 66 if depth <= 1 else 3
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return st.dictionaries(_value(key, depth), _value(value, depth), max_size=longest)
    return st.lists(_value(field, depth), max_size=longest)


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of ``descriptor`` with any subset of fields set to any value."""
    cls = message_factory.GetMessageClass(descriptor)
    if depth >= _MAX_DEPTH:
        return st.just(cls())
    fields = {f.name: _field(f, depth) for f in descriptor.fields}
    return st.fixed_dictionaries({}, optional=fields).map(lambda kw: cls(**kw))


class _Problems(logging.Handler):
    """Collects log records that mean a bug: errors and anything with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    with running_server(ApiLab().facade) as srv:
        yield srv


@pytest.fixture(scope="module")
def channel(server: ApiServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture
def problems() -> Iterator[_Problems]:
    handler = _Problems()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def answer(channel: grpc.Channel, method: Any, payload: bytes) -> grpc.StatusCode:
    """The status of one call with raw request bytes."""
    path = f"/{SERVICE_NAME}/{method.name}"
    try:
        if method.server_streaming:
            call = channel.unary_stream(path)(payload, timeout=0.05)
            try:
                for _ in call:
                    break  # one event is enough: request handling is what is tested
            finally:
                call.cancel()
            return grpc.StatusCode.OK
        channel.unary_unary(path)(payload, timeout=10)
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        code: grpc.StatusCode = err.code()
        return code


def allowed(method: Any) -> set[grpc.StatusCode]:
    return PRECISE | (STREAM_ENDS if method.server_streaming else set())


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_any_request_message_gets_a_precise_status(
    channel: grpc.Channel, problems: _Problems, method: Any
) -> None:
    @BUDGET
    @given(messages(method.input_type))
    def check(request: Any) -> None:
        code = answer(channel, method, request.SerializeToString())
        assert code in allowed(method), f"{method.name}: {code} for {request}"[:2000]

    check()
    assert not problems.records, [r.getMessage()[:300] for r in problems.records]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_any_request_bytes_get_a_precise_status(
    channel: grpc.Channel, problems: _Problems, method: Any
) -> None:
    @BUDGET
    @given(st.binary(max_size=200))
    def check(payload: bytes) -> None:
        code = answer(channel, method, payload)
        assert code in allowed(method), f"{method.name}: {code} for {payload!r}"

    check()
    assert not problems.records, [r.getMessage()[:300] for r in problems.records]
