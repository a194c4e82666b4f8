"""The FabricController service over a real socket: every RPC, error mapping, limits."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from api_fakes import FakeFacade, pinned_policy, running_server, weighted_policy
from fabric.v1 import fabric_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from controller.api import convert
from controller.api.client import FabricClient
from controller.api.server import ApiServer
from controller.errors import FailedPrecondition, Unavailable
from controller.fabric.model import FiveTuple


@pytest.fixture
def client(server: ApiServer) -> Iterator[FabricClient]:
    with FabricClient(server.address, timeout=5.0) as c:
        yield c


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def bad_request_fields(err: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations carried in the status details."""
    status = rpc_status.from_call(err)
    assert status is not None, "INVALID_ARGUMENT must carry a google.rpc.Status"
    out = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        out += [(v.field, v.description) for v in bad.field_violations]
    return out


# --------------------------------------------------------------------------- reads


def test_get_topology(client: FabricClient) -> None:
    topo = client.get_topology()
    assert [s.name for s in topo.switches] == ["leaf1", "leaf2", "spine1", "spine2"]
    leaf1 = topo.switches[0]
    assert leaf1.dpid == "0000000000000001" and leaf1.connected
    assert [(p.port_no, p.fabric) for p in leaf1.ports] == [(1, False), (3, True), (4, True)]
    assert {h.ipv4: (h.switch, h.port) for h in topo.hosts} == {
        "10.0.1.1": ("leaf1", 1),
        "10.0.2.1": ("leaf2", 1),
    }
    assert len(topo.links) == 8


def test_list_links_per_direction(client: FabricClient) -> None:
    links = {lk.name: lk for lk in client.list_links()}
    assert len(links) == 8
    up = links["leaf2/4->spine2/2"]
    down = links["spine2/2->leaf2/4"]
    assert (up.src_switch, up.dst_switch, up.src_port, up.dst_port) == ("leaf2", "spine2", 4, 2)
    assert up.utilization == pytest.approx(0.2) and not up.congested
    assert down.utilization == pytest.approx(0.9) and down.congested
    assert down.state == pb.LINK_STATE_UP and not down.drained
    assert down.capacity_bps == 10e9 and down.rate_bps == 9e9


def test_list_flows_and_policy_filter(client: FabricClient, fake: FakeFacade) -> None:
    (flow,) = client.list_flows()
    assert flow.flow_id == 7
    assert (flow.five_tuple.ip_proto, flow.five_tuple.dst_port) == (17, 4791)
    assert flow.dscp == 26 and flow.policy == "roce"
    assert flow.strategy == pb.STRATEGY_LEAST_UTILIZED
    assert list(flow.path) == ["leaf1", "spine1", "leaf2"]
    assert list(flow.path_links) == ["leaf1/3->spine1/1", "spine1/2->leaf2/3"]
    assert flow.rate_bps == 4e9 and flow.moves == 1 and not flow.fell_back
    assert flow.last_move_reason == "congestion"
    assert flow.placed_time.seconds == int(fake.flows[0].placed_at)
    assert flow.last_move_time.ToMicroseconds() == round(fake.flows[0].last_move_at * 1e6)
    assert client.list_flows(policy="roce") != []
    assert client.list_flows(policy="other") == []


def test_explain_path_placed_and_unplaced(client: FabricClient) -> None:
    placed = client.explain_path(FiveTuple("10.0.1.1", "10.0.2.1", 17, 49152, 4791), dscp=26)
    assert placed.per_flow and placed.flow_id == 7 and placed.policy == "roce"
    assert placed.strategy == pb.STRATEGY_LEAST_UTILIZED
    assert "dscp 26" in placed.reason
    other = client.explain_path(FiveTuple("10.0.2.1", "10.0.1.1", 6, 5000, 80))
    assert not other.per_flow and other.flow_id == 0
    assert list(other.path) == ["leaf2", "spine1", "leaf1"]
    assert other.strategy == pb.STRATEGY_ECMP
    assert other.five_tuple.src_ip == "10.0.2.1"


def test_explain_path_errors(client: FabricClient) -> None:
    err = rpc_error(lambda: client.explain_path(pb.FiveTuple(src_ip="10.0.1", dst_ip="10.0.2.1")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err)[0][0] == "five_tuple.src_ip"
    ft = FiveTuple("10.0.1.1", "10.0.2.1", 17, 1, 2)
    err = rpc_error(lambda: client.explain_path(ft, dscp=64))
    assert bad_request_fields(err)[0][0] == "dscp"
    err = rpc_error(lambda: client.explain_path(FiveTuple("10.9.9.9", "10.0.2.1", 17)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "10.9.9.9" in err.details()


# --------------------------------------------------------------------------- policies


def test_apply_then_get_round_trips_every_field(client: FabricClient, fake: FakeFacade) -> None:
    for policy in (pinned_policy(), weighted_policy()):
        resp = client.apply_policy(policy)
        assert resp.created and not resp.dry_run
        assert resp.policy.version == 1
        got = convert.policy_from_proto(client.get_policy(policy.name))
        assert got == policy  # every field, as the model holds it
        assert client.get_policy(policy.name).version == 1
    assert [p.name for p in client.list_policies()] == ["nccl-pinned", "roce-weighted"]
    applied = fake.bus.recent(2)
    assert [(e.kind.value, e.subject) for e in applied] == [
        ("policy-applied", "nccl-pinned"),
        ("policy-applied", "roce-weighted"),
    ]


def test_dry_run_changes_nothing(client: FabricClient, fake: FakeFacade) -> None:
    resp = client.apply_policy(weighted_policy(), dry_run=True)
    assert resp.dry_run and resp.created and resp.policy.version == 1
    assert list(resp.changes) == ["create policy roce-weighted"]
    assert rpc_error(lambda: client.get_policy("roce-weighted")).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    assert fake.bus.last_seq == 0
    client.apply_policy(weighted_policy())
    changed = dataclasses.replace(weighted_policy(), priority=300)
    resp = client.apply_policy(changed, dry_run=True)
    assert not resp.created and resp.policy.version == 2 and resp.policy.priority == 300
    assert client.get_policy("roce-weighted").priority == 100
    assert client.get_policy("roce-weighted").version == 1


def test_expected_version_semantics(client: FabricClient) -> None:
    policy = weighted_policy()
    assert client.apply_policy(policy, expected_version=0).policy.version == 1
    err = rpc_error(lambda: client.apply_policy(policy, expected_version=0))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert client.apply_policy(policy, expected_version=1).policy.version == 2
    err = rpc_error(lambda: client.apply_policy(policy, expected_version=1))
    assert err.code() == grpc.StatusCode.ABORTED
    assert "version 2" in err.details() and "expected 1" in err.details()
    assert client.apply_policy(policy).policy.version == 3  # unset = upsert


def test_delete_policy(client: FabricClient) -> None:
    err = rpc_error(lambda: client.delete_policy("nope"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.details()
    client.apply_policy(weighted_policy())
    client.apply_policy(weighted_policy())
    err = rpc_error(lambda: client.delete_policy("roce-weighted", expected_version=1))
    assert err.code() == grpc.StatusCode.ABORTED
    assert client.delete_policy("roce-weighted", expected_version=2) == 2
    assert rpc_error(lambda: client.get_policy("roce-weighted")).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    err = rpc_error(lambda: client.delete_policy("roce-weighted", expected_version=0))
    assert bad_request_fields(err)[0][0] == "expected_version"


def test_malformed_policy_names_field_in_message_and_bad_request(client: FabricClient) -> None:
    msg = convert.policy_to_proto(pinned_policy())
    msg.match[1].dst_ports[0].lo = 70000
    err = rpc_error(lambda: client.apply_policy(msg))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "policy.match[1].dst_ports[0].lo" in err.details()
    (violation,) = bad_request_fields(err)
    assert violation == ("policy.match[1].dst_ports[0].lo", "must be 0..65535, got 70000")


def test_semantic_error_from_facade_is_named_from_the_request(client: FabricClient) -> None:
    bad = dataclasses.replace(
        weighted_policy(),
        params=dataclasses.replace(weighted_policy().params, clear_threshold=0.9),
    )
    err = rpc_error(lambda: client.apply_policy(bad))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err)[0][0] == "policy.params.clear_threshold"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: setattr(m, "name", "x" * 64), "policy.name"),
        (lambda m: setattr(m, "name", ""), "policy.name"),
        (lambda m: setattr(m, "description", "d" * 257), "policy.description"),
        (lambda m: m.match.extend([pb.FlowMatch()] * 65), "policy.match"),
        (lambda m: m.match[0].src_hosts.extend(["10.0.0.0/8"] * 65), "policy.match[0].src_hosts"),
        (lambda m: m.pinned_path.append("s" * 300), "policy.pinned_path[3]"),
        (lambda m: m.weights.update({f"s{i}": 1.0 for i in range(65)}), "policy.weights"),
        (lambda m: m.weights.update({"w" * 300: 1.0}), "policy.weights"),
    ],
)
def test_request_limits(client: FabricClient, fake: FakeFacade, mutate: Any, field: str) -> None:
    msg = convert.policy_to_proto(pinned_policy())
    mutate(msg)
    err = rpc_error(lambda: client.apply_policy(msg))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err)[0][0] == field
    assert "apply_policy" not in fake.calls  # rejected before reaching the facade


def test_name_limits_on_get_and_list_flows(client: FabricClient, fake: FakeFacade) -> None:
    err = rpc_error(lambda: client.get_policy(""))
    assert bad_request_fields(err) == [("name", "required")]
    err = rpc_error(lambda: client.list_flows(policy="p" * 64))
    assert bad_request_fields(err)[0][0] == "policy"
    assert fake.calls == []


# --------------------------------------------------------------------------- links


def test_drain_and_undrain(client: FabricClient) -> None:
    resp = client.drain_link("leaf1-spine1")
    assert sorted(resp.links) == ["leaf1/3->spine1/1", "spine1/1->leaf1/3"]
    assert resp.flows_moved == 1
    drained = {lk.name for lk in client.list_links() if lk.drained}
    assert drained == set(resp.links)
    err = rpc_error(lambda: client.drain_link("spine1-leaf1"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    resp = client.undrain_link("leaf1/3-spine1/1")
    assert len(resp.links) == 2
    assert not any(lk.drained for lk in client.list_links())


def test_drain_errors(client: FabricClient) -> None:
    err = rpc_error(lambda: client.drain_link("   "))
    assert bad_request_fields(err)[0][0] == "link"
    err = rpc_error(lambda: client.drain_link("leaf1"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err)[0][0] == "link"
    err = rpc_error(lambda: client.drain_link("leaf1-leaf2"))
    assert err.code() == grpc.StatusCode.NOT_FOUND


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (Unavailable("the hub did not answer within 2 s"), grpc.StatusCode.UNAVAILABLE),
        (FailedPrecondition("the fabric has no switches yet"), grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_domain_errors_map_to_status(
    client: FabricClient, fake: FakeFacade, exc: Exception, code: grpc.StatusCode
) -> None:
    fake.fail_next = exc
    err = rpc_error(client.list_links)
    assert err.code() == code
    assert err.details() == str(exc)


def test_bug_is_internal_with_logged_traceback_and_client_mistake_is_not(
    client: FabricClient, fake: FakeFacade, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controller.api")
    fake.fail_next = KeyError("secret internal detail")
    err = rpc_error(client.get_topology)
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in err.details() and "GetTopology" in err.details()
    assert any(r.exc_info for r in caplog.records)
    caplog.clear()
    rpc_error(lambda: client.get_policy("missing"))
    rpc_error(lambda: client.drain_link("x"))
    assert caplog.records and not any(r.exc_info for r in caplog.records)


def test_oversize_request_is_resource_exhausted(fake: FakeFacade) -> None:
    with running_server(fake, max_message_bytes=4096) as srv, FabricClient(srv.address) as c:
        err = rpc_error(lambda: c.drain_link("x" * 10_000))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert fake.calls == []
        assert c.drain_link("leaf1-spine2").links  # the server still serves


def test_expired_deadline(server: ApiServer, fake: FakeFacade) -> None:
    fake.gate.clear()  # the facade stalls, like a busy hub
    try:
        with FabricClient(server.address, timeout=0.2) as c:
            err = rpc_error(c.list_links)
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        fake.gate.set()
