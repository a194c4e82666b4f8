"""Server bootstrap: bearer token, TLS, health, reflection, listen errors."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest
from apilab import ApiLab, running_server
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tlsfiles import self_signed

from controller.api.client import FabricClient
from controller.api.server import ApiServerConfig, parse_listen, start_api_server
from controller.errors import InvalidArgument

TOKEN = "s3cret-token-of-the-fabric"


@pytest.fixture
def api() -> ApiLab:
    return ApiLab()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")  # surrounding whitespace is not part of the token
    return path


def health_status(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)


# --------------------------------------------------------------------------- token


def test_token_required_but_health_and_reflection_stay_open(api: ApiLab, token_file: Path) -> None:
    with running_server(api.facade, token_file=token_file) as srv:
        for token in (None, "wrong", TOKEN + "x"):
            with FabricClient(srv.address, token=token) as c:
                with pytest.raises(grpc.RpcError) as err:
                    c.list_links()
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert err.value.details() == "missing or invalid bearer token"
                with pytest.raises(grpc.RpcError) as err:
                    next(iter(c.watch_events()))
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert api.calls == []
        with FabricClient(srv.address, token=TOKEN) as c:
            assert len(c.list_links()) == 8
        with grpc.insecure_channel(srv.address) as channel:
            assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
            assert "fabric.v1.FabricController" in list_services(channel)


def test_empty_token_file_is_rejected(api: ApiLab, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(InvalidArgument) as err:
        start_api_server(api, ApiServerConfig(listen="127.0.0.1:0", token_file=empty))
    assert err.value.field == "grpc_token_file"
    with pytest.raises(InvalidArgument) as err:
        start_api_server(
            api, ApiServerConfig(listen="127.0.0.1:0", token_file=tmp_path / "missing")
        )
    assert err.value.field == "grpc_token_file" and "cannot read" in err.value.reason


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    return self_signed(tmp_path_factory.mktemp("tls"), "test")


def test_tls_with_token(api: ApiLab, tls_files: tuple[Path, Path], token_file: Path) -> None:
    cert, key = tls_files
    with running_server(api.facade, tls_cert=cert, tls_key=key, token_file=token_file) as srv:
        with FabricClient(srv.address, tls_ca=cert, token=TOKEN, timeout=5) as c:
            assert c.get_topology().switches
        with FabricClient(srv.address, tls_ca=cert, timeout=5) as c:
            with pytest.raises(grpc.RpcError) as err:
                c.list_links()
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A plaintext client cannot talk to a TLS server.
        with FabricClient(srv.address, token=TOKEN, timeout=2) as c:
            with pytest.raises(grpc.RpcError) as err:
                c.list_links()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_needs_cert_and_key(api: ApiLab, tls_files: tuple[Path, Path]) -> None:
    cert, _ = tls_files
    with pytest.raises(InvalidArgument) as err:
        start_api_server(api, ApiServerConfig(listen="127.0.0.1:0", tls_cert=cert))
    assert err.value.field == "grpc_tls_key"


# --------------------------------------------------------------------------- health, reflection


def list_services(channel: grpc.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    return [s.name for s in response.list_services_response.service]


def test_health_follows_set_serving(api: ApiLab) -> None:
    with running_server(api.facade) as srv, grpc.insecure_channel(srv.address) as channel:
        serving = health_pb2.HealthCheckResponse.SERVING
        assert health_status(channel) == serving
        assert health_status(channel, "fabric.v1.FabricController") == serving
        srv.set_serving(False)
        assert health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        srv.set_serving(True)
        assert health_status(channel, "fabric.v1.FabricController") == serving


def test_reflection_lists_services_and_describes_the_api(api: ApiLab) -> None:
    with running_server(api.facade) as srv, grpc.insecure_channel(srv.address) as channel:
        names = list_services(channel)
        assert {
            "fabric.v1.FabricController",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= set(names)
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="fabric.v1.FabricController"
        )
        (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        protos = response.file_descriptor_response.file_descriptor_proto
        assert protos and b"ApplyPolicyRequest" in b"".join(protos)
        # The raw stub works too: the service is what reflection advertises.
        assert (
            fabric_pb2_grpc.FabricControllerStub(channel)
            .ListLinks(pb.ListLinksRequest(), timeout=5)
            .links
        )


# --------------------------------------------------------------------------- listen


def test_port_zero_binds_a_free_port_and_port_in_use_names_the_address(
    api: ApiLab,
) -> None:
    with running_server(api.facade) as srv:
        assert srv.port > 0 and srv.address == f"127.0.0.1:{srv.port}"
        listen = f"127.0.0.1:{srv.port}"
        with pytest.raises(OSError, match=listen):
            start_api_server(api, ApiServerConfig(listen=listen))


def test_port_held_by_another_program_names_the_address(api: ApiLab) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        listen = f"127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(OSError, match=listen):
            start_api_server(api, ApiServerConfig(listen=listen))


@pytest.mark.parametrize(
    "listen", ["nonsense", ":50051", "127.0.0.1:99999", "127.0.0.1:http", "::1:50051", "[::1:5"]
)
def test_bad_listen_string(listen: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_listen(listen)
    assert err.value.field == "grpc_listen"
    assert listen in str(err.value)


def test_listen_forms() -> None:
    assert parse_listen("127.0.0.1:50051") == ("127.0.0.1", 50051)
    assert parse_listen("[::1]:0") == ("[::1]", 0)
    assert parse_listen("localhost:7") == ("localhost", 7)
