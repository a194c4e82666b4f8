"""The FabricController service over a real socket: every RPC, error mapping, limits."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from apilab import T0, ApiLab, pinned_policy, roce_policy, running_server, weighted_policy
from fabric.v1 import fabric_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from controller.api import convert
from controller.api.client import FabricClient
from controller.api.server import ApiServer
from controller.errors import FailedPrecondition, Unavailable
from controller.fabric.model import FiveTuple


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


def test_get_topology(client: FabricClient, api: ApiLab) -> None:
    topo = client.get_topology()
    assert [s.name for s in topo.switches] == ["leaf1", "leaf2", "spine1", "spine2"]
    leaf1 = topo.switches[0]
    assert leaf1.dpid == f"{api.lab.dpid('leaf1'):016x}" and leaf1.connected
    assert [(p.port_no, p.fabric) for p in leaf1.ports] == [
        (1, True),
        (2, True),
        (3, False),
        (4, False),
    ]
    assert {h.ipv4: (h.switch, h.port) for h in topo.hosts} == {
        "10.0.0.1": ("leaf1", 3),
        "10.0.0.2": ("leaf1", 4),
        "10.0.0.3": ("leaf2", 3),
        "10.0.0.4": ("leaf2", 4),
    }
    assert len(topo.links) == 8


def test_list_links_per_direction(client: FabricClient, api: ApiLab) -> None:
    api.set_rate(api.link("spine2", "leaf2"), 9e9)
    links = {lk.name: lk for lk in client.list_links()}
    assert len(links) == 8
    up = links["leaf2/2->spine2/2"]
    down = links["spine2/2->leaf2/2"]
    assert (up.src_switch, up.dst_switch, up.src_port, up.dst_port) == ("leaf2", "spine2", 2, 2)
    assert up.utilization == pytest.approx(0.0) and not up.congested
    # Counters grow in 0.25 s steps and polls are jittered: rates are exact to a few percent.
    assert 0.8 < down.utilization < 1.0 and down.congested
    assert down.state == pb.LINK_STATE_UP and not down.drained
    assert down.capacity_bps == 10e9
    assert down.rate_bps == pytest.approx(down.utilization * down.capacity_bps)


def test_list_flows_and_policy_filter(client: FabricClient, api: ApiLab) -> None:
    client.apply_policy(roce_policy())
    flow_id = api.place_flow(api.hosts[0], api.hosts[2], sport=49152, dscp=26)
    client.drain_link("leaf1-spine1")  # the flow moves off it: one move, reason drain
    (flow,) = client.list_flows()
    assert flow.flow_id == flow_id
    assert (flow.five_tuple.ip_proto, flow.five_tuple.dst_port) == (17, 4791)
    assert flow.dscp == 26 and flow.policy == "roce"
    assert flow.strategy == pb.STRATEGY_LEAST_UTILIZED
    assert list(flow.path) == ["leaf1", "spine2", "leaf2"]
    assert list(flow.path_links) == ["leaf1/2->spine2/1", "spine2/2->leaf2/2"]
    assert flow.moves == 1 and not flow.fell_back
    assert flow.last_move_reason == "drain"
    published = api.flows[0]
    assert flow.placed_time.seconds == int(published.placed_at)
    assert flow.last_move_time.ToMicroseconds() == round(published.last_move_at * 1e6)
    assert published.placed_at > T0 and published.last_move_at >= published.placed_at
    assert client.list_flows(policy="roce") != []
    assert client.list_flows(policy="other") == []


def test_explain_path_placed_and_unplaced(client: FabricClient, api: ApiLab) -> None:
    client.apply_policy(roce_policy())
    flow_id = api.place_flow(api.hosts[0], api.hosts[2])
    placed = client.explain_path(FiveTuple("10.0.0.1", "10.0.0.3", 17, 49152, 4791), dscp=26)
    assert placed.per_flow and placed.flow_id == flow_id and placed.policy == "roce"
    assert placed.strategy == pb.STRATEGY_LEAST_UTILIZED
    assert "placed per flow by least-utilized" in placed.reason
    other = client.explain_path(FiveTuple("10.0.0.3", "10.0.0.1", 6, 5000, 80))
    assert not other.per_flow and other.flow_id == 0
    assert list(other.path) == ["leaf2", "spine1|spine2", "leaf1"]
    assert other.strategy == pb.STRATEGY_ECMP
    assert other.five_tuple.src_ip == "10.0.0.3"
    unplaced = client.explain_path(FiveTuple("10.0.0.2", "10.0.0.4", 17, 50000, 4791))
    assert unplaced.per_flow and unplaced.flow_id == 0 and "not placed yet" in unplaced.reason


def test_explain_path_errors(client: FabricClient) -> None:
    err = rpc_error(lambda: client.explain_path(pb.FiveTuple(src_ip="10.0.1", dst_ip="10.0.2.1")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err)[0][0] == "five_tuple.src_ip"
    ft = FiveTuple("10.0.0.1", "10.0.0.3", 17, 1, 2)
    err = rpc_error(lambda: client.explain_path(ft, dscp=64))
    assert bad_request_fields(err)[0][0] == "dscp"
    err = rpc_error(lambda: client.explain_path(FiveTuple("10.9.9.9", "10.0.0.3", 17)))
    # The controller has not learned the host: the request is fine, the fabric state is not.
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "10.9.9.9" in err.details()


# --------------------------------------------------------------------------- policies


def test_apply_then_get_round_trips_every_field(client: FabricClient, api: ApiLab) -> None:
    versions = []
    for policy in (pinned_policy(), weighted_policy()):
        resp = client.apply_policy(policy)
        assert resp.created and not resp.dry_run
        versions.append(resp.policy.version)
        got = convert.policy_from_proto(client.get_policy(policy.name))
        assert got == policy  # every field, as the model holds it (versions are the store's)
        assert client.get_policy(policy.name).version == resp.policy.version
    assert versions[0] >= 1 and versions[1] > versions[0]  # store-wide revisions
    assert [p.name for p in client.list_policies()] == ["nccl-pinned", "roce-weighted"]
    applied = [e for e in api.bus.recent(64) if e.kind.value.startswith("policy-")]
    assert [(e.kind.value, e.subject) for e in applied] == [
        ("policy-applied", "nccl-pinned"),
        ("policy-applied", "roce-weighted"),
    ]


def test_dry_run_changes_nothing(client: FabricClient, api: ApiLab) -> None:
    seq = api.bus.last_seq
    hashes = api.lab.fake.hashes()
    resp = client.apply_policy(weighted_policy(), dry_run=True)
    # A dry run stores nothing: the version shown is 0 ("not stored").
    assert resp.dry_run and resp.created and resp.policy.version == 0
    assert list(resp.changes) == ["create policy 'roce-weighted' (priority 100, strategy weighted)"]
    assert rpc_error(lambda: client.get_policy("roce-weighted")).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    assert api.bus.last_seq == seq and api.lab.fake.hashes() == hashes
    stored = client.apply_policy(weighted_policy()).policy.version
    changed = dataclasses.replace(weighted_policy(), priority=300)
    resp = client.apply_policy(changed, dry_run=True)
    assert not resp.created and resp.policy.priority == 300
    assert list(resp.changes) == ["priority: 100 -> 300"]
    assert client.get_policy("roce-weighted").priority == 100
    assert client.get_policy("roce-weighted").version == stored


def test_expected_version_semantics(client: FabricClient) -> None:
    policy = weighted_policy()
    first = client.apply_policy(policy, expected_version=0).policy.version
    err = rpc_error(lambda: client.apply_policy(policy, expected_version=0))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    second = client.apply_policy(policy, expected_version=first).policy.version
    assert second > first
    err = rpc_error(lambda: client.apply_policy(policy, expected_version=first))
    assert err.code() == grpc.StatusCode.ABORTED
    assert f"version {second}" in err.details() and f"expected {first}" in err.details()
    assert client.apply_policy(policy).policy.version > second  # unset = upsert


def test_delete_policy(client: FabricClient) -> None:
    err = rpc_error(lambda: client.delete_policy("nope"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.details()
    first = client.apply_policy(weighted_policy()).policy.version
    second = client.apply_policy(weighted_policy()).policy.version
    err = rpc_error(lambda: client.delete_policy("roce-weighted", expected_version=first))
    assert err.code() == grpc.StatusCode.ABORTED
    assert client.delete_policy("roce-weighted", expected_version=second) == second
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
def test_request_limits(client: FabricClient, api: ApiLab, mutate: Any, field: str) -> None:
    msg = convert.policy_to_proto(pinned_policy())
    mutate(msg)
    err = rpc_error(lambda: client.apply_policy(msg))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err)[0][0] == field
    assert "apply_policy" not in api.calls  # rejected before reaching the facade


def test_name_limits_on_get_and_list_flows(client: FabricClient, api: ApiLab) -> None:
    err = rpc_error(lambda: client.get_policy(""))
    assert bad_request_fields(err) == [("name", "required")]
    err = rpc_error(lambda: client.list_flows(policy="p" * 64))
    assert bad_request_fields(err)[0][0] == "policy"
    assert api.calls == []


# --------------------------------------------------------------------------- links


def test_drain_and_undrain(client: FabricClient, api: ApiLab) -> None:
    client.apply_policy(roce_policy())
    api.place_flow(api.hosts[0], api.hosts[2])  # least-utilized: spine1 on an idle fabric
    resp = client.drain_link("leaf1-spine1")
    assert sorted(resp.links) == ["leaf1/1->spine1/1", "spine1/1->leaf1/1"]
    assert resp.flows_moved == 1
    drained = {lk.name for lk in client.list_links() if lk.drained}
    assert drained == set(resp.links)
    # Draining again is idempotent: nothing left on the links, nothing moves.
    again = client.drain_link("spine1-leaf1")
    assert sorted(again.links) == sorted(resp.links) and again.flows_moved == 0
    resp = client.undrain_link("leaf1/1-spine1/1")
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
    client: FabricClient, api: ApiLab, exc: Exception, code: grpc.StatusCode
) -> None:
    api.fail_next(exc)
    err = rpc_error(client.list_links)
    assert err.code() == code
    assert err.details() == str(exc)


def test_bug_is_internal_with_logged_traceback_and_client_mistake_is_not(
    client: FabricClient, api: ApiLab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controller.api")
    api.fail_next(KeyError("secret internal detail"))
    err = rpc_error(client.get_topology)
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in err.details() and "GetTopology" in err.details()
    assert any(r.exc_info for r in caplog.records)
    caplog.clear()
    rpc_error(lambda: client.get_policy("missing"))
    rpc_error(lambda: client.drain_link("x"))
    assert caplog.records and not any(r.exc_info for r in caplog.records)


def test_oversize_request_is_resource_exhausted(api: ApiLab) -> None:
    with (
        running_server(api.facade, max_message_bytes=4096) as srv,
        FabricClient(srv.address) as c,
    ):
        err = rpc_error(lambda: c.drain_link("x" * 10_000))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert api.calls == []
        assert c.drain_link("leaf1-spine2").links  # the server still serves


def test_a_write_past_its_deadline_is_not_done(server: ApiServer, api: ApiLab) -> None:
    """A busy hub: the client gives up, and the write must not happen later."""
    api.hub.gate.clear()
    try:
        with FabricClient(server.address, timeout=0.3) as c:
            err = rpc_error(lambda: c.apply_policy(weighted_policy()))
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        api.hub.gate.set()
    assert "roce-weighted" not in api.policies
    with FabricClient(server.address, timeout=5.0) as c:
        assert c.apply_policy(weighted_policy()).created  # and the next one works
