"""Hostile or careless API use: huge lists, malformed messages, long names, bad TLS files."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from apilab import ApiLab, running_server
from fabric.v1 import fabric_pb2 as pb
from grpc_health.v1 import health_pb2
from tlsfiles import self_signed

from controller.api.client import FabricClient
from controller.api.convert import policy_to_proto
from controller.api.paging import decode_token, encode_token, paginate
from controller.api.server import SERVICE_NAME, ApiServer, ApiServerConfig, start_api_server
from controller.errors import InvalidArgument
from controller.policy.limits import MAX_RULES_PER_POLICY, MAX_RULES_TOTAL
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.policy.validate import validate_policy


@pytest.fixture
def client(server: ApiServer) -> Iterator[FabricClient]:
    with FabricClient(server.address, timeout=10.0) as c:
        yield c


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


# --------------------------------------------------------------------------- paging


def bulky_policy(i: int) -> Policy:
    """A valid policy of about 150 KB on the wire: collapsible lists, one entry each."""

    def hosts(base: str) -> tuple[ipaddress.IPv4Network, ...]:
        start = ipaddress.IPv4Address(base)
        return tuple(ipaddress.IPv4Network(f"{start + k}/32") for k in range(64))

    alternative = FlowMatch(
        ip_proto=17,
        dst_ports=tuple(PortRange(4000 + k, 4000 + k) for k in range(64)),
        src_hosts=hosts("10.1.0.0"),
        dst_hosts=hosts("10.2.0.0"),
    )
    return Policy(
        name=f"bulk-{i:03d}",
        priority=1000 + i,
        match=(alternative,) * 64,  # identical alternatives: legal, one entry per port prefix
        strategy=Strategy.WIDEST,
        version=1,
    )


def test_a_list_larger_than_the_message_limit_comes_in_pages() -> None:
    policy = bulky_policy(0)
    validate_policy(policy)
    api = ApiLab(policies=tuple(bulky_policy(i) for i in range(30)))  # a store that grew
    with running_server(api.facade) as srv, FabricClient(srv.address, timeout=120) as client:
        # One request for everything used to be RESOURCE_EXHAUSTED (more than 4 MiB).
        first, token = client.list_policies_page()
        assert token and 10 < len(first) < 30
        assert sum(p.ByteSize() for p in first) < 4 * 1024 * 1024
        everything = client.list_policies()
    assert [p.name for p in everything] == sorted(api.policies)


def test_page_size_and_tokens(api: ApiLab, client: FabricClient) -> None:
    for i, name in enumerate(["e", "a", "d", "b", "c"]):
        api.real.apply_policy(Policy(name=name, priority=i, match=(FlowMatch(dscp=(i,)),)))
    page, token = client.list_policies_page(page_size=2)
    assert [p.name for p in page] == ["a", "b"]
    api.real.delete_policy("c")  # removed between pages: the rest is neither repeated nor skipped
    page, token = client.list_policies_page(page_size=2, page_token=token)
    assert ([p.name for p in page], token) == (["d", "e"], "")  # nothing after e: complete
    assert [p.name for p in client.list_policies(page_size=1)] == ["a", "b", "d", "e"]

    err = rpc_error(lambda: client.list_policies_page(page_token="garbage"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("page_token: not a page token from this server")
    err = rpc_error(lambda: client.list_policies_page(page_size=-1))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "page_size: must be >= 0, got -1"


def test_paginate_is_pure_and_bounded() -> None:
    items = [f"k{i:02d}" for i in range(10)]

    def page_of(page_size: int, page_token: str, max_bytes: int) -> tuple[list[str], str]:
        return paginate(
            items,
            key=str,
            encode=str.upper,
            size=len,
            page_size=page_size,
            page_token=page_token,
            max_page=4,
            max_bytes=max_bytes,
        )

    page, token = page_of(0, "", 1000)
    assert page == ["K00", "K01", "K02", "K03"] and decode_token(token) == "k03"
    # A byte budget below one item still returns one, so a listing always progresses.
    page, token = page_of(0, token, 1)
    assert page == ["K04"] and decode_token(token) == "k04"
    assert page_of(99, encode_token("k08"), 1000) == (["K09"], "")
    with pytest.raises(InvalidArgument):
        decode_token(encode_token("x")[:-2] + "!!")


# --------------------------------------------------------------------------- names


def test_a_megabyte_name_is_told_the_real_limit(client: FabricClient, api: ApiLab) -> None:
    policy = pb.Policy(name="a" * 1024 * 1024, priority=1, match=[pb.FlowMatch()])
    err = rpc_error(lambda: client.apply_policy(policy))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == f"policy.name: must be at most 63 characters, got {1024 * 1024}"
    assert api.calls == []


def test_the_total_rule_budget_is_checked_on_apply(server: ApiServer, api: ApiLab) -> None:
    """Four policies at the per-policy limit fill the budget; a fifth is refused, nothing stored."""
    # Each apply compiles up to 16k entries per switch: about a second here, many
    # more on a loaded machine or under mutation testing, hence the long deadline.
    with FabricClient(server.address, timeout=120.0) as client:
        _fill_the_rule_budget(client)


def _fill_the_rule_budget(client: FabricClient) -> None:

    def spread(name: str, prio: int, dst_base: int, dst: int) -> Policy:
        src = tuple(PortRange(10000 + 2 * i, 10000 + 2 * i) for i in range(64))
        dsts = tuple(PortRange(dst_base + 2 * i, dst_base + 2 * i) for i in range(dst))
        return Policy(
            name=name, priority=prio, match=(FlowMatch(ip_proto=17, src_ports=src, dst_ports=dsts),)
        )

    for i in range(MAX_RULES_TOTAL // MAX_RULES_PER_POLICY):
        client.apply_policy(policy_to_proto(spread(f"full-{i}", 100 + i, 20000 + 200 * i, 64)))
    before = [p.name for p in client.list_policies()]
    err = rpc_error(lambda: client.apply_policy(policy_to_proto(spread("one-more", 1, 30000, 1))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("policy.match: all policies together would compile to ")
    assert f"{MAX_RULES_TOTAL + 64} flow entries" in err.details()
    assert [p.name for p in client.list_policies()] == before
    # Replacing a stored policy counts the replacement, not both versions.
    client.apply_policy(policy_to_proto(spread("full-0", 100, 20000, 32)))


# --------------------------------------------------------------------------- malformed protobuf

GARBAGE = b"\x0a\xff\xff\xff\xff\x0f"  # field 1, length 4 GiB: no message parses this


def raw_call(channel: grpc.Channel, method: str, payload: bytes, **kw: Any) -> Any:
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    return call(payload, timeout=5, **kw)


@pytest.mark.parametrize("method", ["ApplyPolicy", "GetTopology", "ListPolicies"])
def test_malformed_protobuf_is_invalid_argument_without_a_traceback(
    server: ApiServer, api: ApiLab, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    caplog.set_level(logging.DEBUG)
    with grpc.insecure_channel(server.address) as channel:
        err = rpc_error(lambda: raw_call(channel, f"/{SERVICE_NAME}/{method}", GARBAGE))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details().startswith(f"/{SERVICE_NAME}/{method}: malformed request")
        # Health is guarded too, and the server keeps serving.
        err = rpc_error(lambda: raw_call(channel, "/grpc.health.v1.Health/Check", GARBAGE))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        ok = raw_call(channel, "/grpc.health.v1.Health/Check", b"")
        assert health_pb2.HealthCheckResponse.FromString(ok).status == 1
    assert api.calls == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_malformed_protobuf_without_token_is_unauthenticated(
    api: ApiLab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret")
    caplog.set_level(logging.DEBUG)
    with (
        running_server(api.facade, token_file=token) as srv,
        grpc.insecure_channel(srv.address) as ch,
    ):
        method = f"/{SERVICE_NAME}/ApplyPolicy"
        err = rpc_error(lambda: raw_call(ch, method, GARBAGE))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        authorized = (("authorization", "Bearer s3cret"),)
        err = rpc_error(lambda: raw_call(ch, method, GARBAGE, metadata=authorized))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# --------------------------------------------------------------------------- TLS files


@pytest.fixture(scope="module")
def pem_pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two self-signed certificates with their keys, an encrypted key and an empty file."""
    directory = tmp_path_factory.mktemp("pem")
    out: dict[str, Path] = {}
    for label in ("a", "b"):
        out[f"cert_{label}"], out[f"key_{label}"] = self_signed(directory, label)
    _, out["key_encrypted"] = self_signed(directory, "c", passphrase=b"pw")
    out["empty"] = directory / "empty.pem"
    out["empty"].write_bytes(b"")
    return out


@pytest.mark.parametrize(
    ("cert", "key", "field", "fragment"),
    [
        ("key_a", "cert_a", "grpc_tls_cert", "swapped"),
        ("cert_a", "key_b", "grpc_tls_key", "is not the private key of the certificate"),
        ("empty", "key_a", "grpc_tls_cert", "holds no PEM certificate"),
        ("cert_a", "cert_b", "grpc_tls_key", "holds no PEM private key"),
        ("cert_a", "key_encrypted", "grpc_tls_key", "encrypted"),
    ],
)
def test_bad_tls_files_are_named_not_reported_as_address_in_use(
    api: ApiLab, pem_pairs: dict[str, Path], cert: str, key: str, field: str, fragment: str
) -> None:
    config = ApiServerConfig(listen="127.0.0.1:0", tls_cert=pem_pairs[cert], tls_key=pem_pairs[key])
    with pytest.raises(InvalidArgument) as info:
        start_api_server(api, config).stop(grace=0)
    err = info.value
    assert err.field == field and fragment in err.reason, str(err)
    assert "address" not in str(err) and "\n" not in str(err)
    # The matching pair works.
    good = ApiServerConfig(
        listen="127.0.0.1:0", tls_cert=pem_pairs["cert_a"], tls_key=pem_pairs["key_a"]
    )
    start_api_server(api, good).stop(grace=0)
