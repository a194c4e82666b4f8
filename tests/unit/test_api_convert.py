"""Model <-> fabric.v1 conversions: round trips and precise errors for what proto cannot express."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from apilab import T0, ApiLab, pinned_policy, roce_policy
from fabric.v1 import fabric_pb2 as pb

from controller.api import convert
from controller.concurrency.eventbus import EventRecord
from controller.engine.outputs import EventKind
from controller.errors import InvalidArgument
from controller.fabric.model import FiveTuple
from controller.policy.model import FlowMatch, Policy, PolicyParams, PortRange, Strategy


def full_policy() -> Policy:
    """A policy with every field away from its default (weights too, which only the
    wire format carries alongside a pinned path: conversion does not validate)."""
    base = pinned_policy()
    tcp = dataclasses.replace(base.match[1], src_ports=(PortRange(1024, 65535),))
    return dataclasses.replace(
        base,
        name="nccl-and-roce",
        match=(base.match[0], tcp),
        weights=(("spine1", 2.0), ("spine2", 1.0)),
        description="RoCEv2 and NCCL between racks",
        version=4,
    )


def test_policy_round_trip_keeps_every_field_but_version() -> None:
    policy = full_policy()
    msg = convert.policy_to_proto(policy)
    assert msg.version == 4
    assert msg.strategy == pb.STRATEGY_PINNED and msg.fallback == pb.STRATEGY_WIDEST
    back = convert.policy_from_proto(pb.Policy.FromString(msg.SerializeToString()))
    # version is output only: the store assigns it.
    assert back == dataclasses.replace(policy, version=0)


def test_unset_proto_fields_take_model_defaults() -> None:
    msg = pb.Policy(name="p", priority=1, match=[pb.FlowMatch()])
    msg.params.congestion_threshold = 0.9
    policy = convert.policy_from_proto(msg)
    defaults = PolicyParams()
    assert policy.match == (FlowMatch(),)
    assert policy.strategy is Strategy.ECMP
    assert policy.fallback is Strategy.LEAST_UTILIZED
    assert policy.params.congestion_threshold == 0.9
    assert policy.params.clear_threshold == defaults.clear_threshold
    assert policy.params.idle_timeout_s == defaults.idle_timeout_s
    # ip_proto 0 is a real protocol number when set, distinct from "any".
    msg.match[0].ip_proto = 0
    assert convert.policy_from_proto(msg).match[0].ip_proto == 0


def _policy_msg() -> pb.Policy:
    return convert.policy_to_proto(full_policy())


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (
            lambda m: setattr(m.match[1].dst_ports[1], "lo", 70000),
            "policy.match[1].dst_ports[1].lo",
            "0..65535",
        ),
        (
            lambda m: setattr(m.match[0].src_ports.add(), "hi", 65536),
            "policy.match[0].src_ports[0].hi",
            "0..65535",
        ),
        (lambda m: m.match[0].dscp.append(64), "policy.match[0].dscp[2]", "0..63"),
        (lambda m: setattr(m.match[0], "ip_proto", 256), "policy.match[0].ip_proto", "0..255"),
        (
            lambda m: m.match[1].dst_hosts.append("10.0.9.0/33"),
            "policy.match[1].dst_hosts[2]",
            "not an IPv4 network",
        ),
        (
            lambda m: m.match[0].src_hosts.append("10.0.1.5/24"),
            "policy.match[0].src_hosts[1]",
            "host bits set",
        ),
        (
            lambda m: m.match[0].src_hosts.append("fd00::/64"),
            "policy.match[0].src_hosts[1]",
            "IPv6",
        ),
        (lambda m: setattr(m, "strategy", 99), "policy.strategy", "unknown strategy number 99"),
        (lambda m: setattr(m, "fallback", 42), "policy.fallback", "unknown strategy number 42"),
        (lambda m: m.ClearField("match"), "policy.match", "at least one alternative"),
    ],
)
def test_what_proto_cannot_express_is_rejected_with_the_field(
    mutate: Callable[[Any], object], field: str, reason: str
) -> None:
    msg = _policy_msg()
    mutate(msg)
    with pytest.raises(InvalidArgument) as err:
        convert.policy_from_proto(msg)
    assert err.value.field == field
    assert reason in err.value.reason


def test_five_tuple_checks_addresses_and_ranges() -> None:
    ok = pb.FiveTuple(src_ip="10.0.1.1", dst_ip="10.0.2.1", ip_proto=17, src_port=5, dst_port=4791)
    assert convert.five_tuple_from_proto(ok, field="five_tuple") == FiveTuple(
        "10.0.1.1", "10.0.2.1", 17, 5, 4791
    )
    bad_ip = pb.FiveTuple(src_ip="10.0.1", dst_ip="10.0.2.1")
    with pytest.raises(InvalidArgument) as err:
        convert.five_tuple_from_proto(bad_ip, field="five_tuple")
    assert err.value.field == "five_tuple.src_ip"
    bad_port = pb.FiveTuple(src_ip="10.0.1.1", dst_ip="10.0.2.1", dst_port=65536)
    with pytest.raises(InvalidArgument) as err:
        convert.five_tuple_from_proto(bad_port, field="five_tuple")
    assert err.value.field == "five_tuple.dst_port"


def test_event_kinds_map_both_ways_and_reject_unknown() -> None:
    numbers = {convert.event_kind_to_proto(k) for k in EventKind}
    assert len(numbers) == len(EventKind) and pb.EVENT_KIND_UNSPECIFIED not in numbers
    for kind in EventKind:
        assert convert.event_kind_from_proto(convert.event_kind_to_proto(kind), field="k") is kind
    with pytest.raises(InvalidArgument, match=r"kinds\[1\]: unknown event kind number 77"):
        convert.event_kind_from_proto(77, field="kinds[1]")
    with pytest.raises(InvalidArgument, match="UNSPECIFIED"):
        convert.event_kind_from_proto(0, field="kinds[0]")


def test_event_record_to_proto() -> None:
    record = EventRecord(
        seq=41,
        time=1_700_000_000.25,
        kind=EventKind.LINK_CONGESTED,
        subject="leaf1/3->spine1/1",
        reason="threshold",
        attributes=(("utilization", "0.93"),),
    )
    msg = convert.event_to_proto(record)
    assert msg.seq == 41
    assert msg.kind == pb.EVENT_KIND_LINK_CONGESTED
    assert msg.time.seconds == 1_700_000_000 and msg.time.nanos == 250_000_000
    assert dict(msg.attributes) == {"utilization": "0.93"}


def test_views_to_proto() -> None:
    api = ApiLab()
    api.real.apply_policy(roce_policy())
    api.place_flow(api.hosts[0], api.hosts[2])
    api.lab.advance(2.5)
    api.real.drain_link("leaf1-spine1")
    topo = convert.topology_to_proto(api.real.get_topology())
    assert [s.name for s in topo.switches] == ["leaf1", "leaf2", "spine1", "spine2"]
    leaf1 = f"{api.lab.dpid('leaf1'):016x}"
    assert topo.switches[0].dpid == leaf1
    assert len(topo.links) == 8 and len(topo.hosts) == 4
    link = topo.links[0]
    assert link.name == "leaf1/1->spine1/1"
    assert (link.src_dpid, link.src_port, link.dst_port) == (leaf1, 1, 1)
    assert link.state == pb.LINK_STATE_UP and link.drained
    flow = convert.flow_to_proto(api.flows[0])
    assert flow.strategy == pb.STRATEGY_LEAST_UTILIZED
    assert flow.last_move_time.ToMicroseconds() == round((T0 + api.lab.now) * 1e6)
    assert flow.placed_time.ToMicroseconds() == round((T0 + api.lab.now - 2.5) * 1e6)
    unmoved = convert.flow_to_proto(dataclasses.replace(api.flows[0], moves=0))
    assert not unmoved.HasField("last_move_time")
    # A strategy name a newer core might report must not break listing.
    assert convert.strategy_to_proto("something-new") == pb.STRATEGY_UNSPECIFIED
