"""What a user is told when a policy is refused: the field, and the reason, verbatim.

``fabricctl policy apply`` and the gRPC API return these as INVALID_ARGUMENT
(``field: reason``); a message that names the wrong field or says something
vague sends the operator looking in the wrong place. Each case breaks one
rule of an otherwise valid policy, built the way the API builds it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

import pytest

from controller.errors import InvalidArgument
from controller.policy.model import FlowMatch, Policy, PolicyParams, PortRange, Strategy
from controller.policy.validate import validate_policy

UDP = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
GOOD = Policy(name="ai", priority=100, match=(UDP,), strategy=Strategy.LEAST_UTILIZED)
NET = ipaddress.IPv4Network


def bad(**changes: Any) -> Policy:
    return replace(GOOD, **changes)


def with_match(**fields: Any) -> Policy:
    return replace(GOOD, match=(FlowMatch(**fields),))


def with_params(**fields: Any) -> Policy:
    return replace(GOOD, params=replace(PolicyParams(), **fields))


CASES: list[tuple[str, Policy, str, str]] = [
    (
        "name",
        bad(name="AI Training"),
        "name",
        "'AI Training' is not a valid policy name: 1-63 lower-case letters, digits, '.', "
        "'_' or '-', starting and ending with a letter or digit",
    ),
    ("priority", bad(priority=70000), "priority", "70000 outside 0-65535"),
    ("description", bad(description=7), "description", "must be a string, got int"),
    ("version", bad(version=-1), "version", "must be an integer 0..9223372036854775807, got -1"),
    (
        "version type",
        bad(version="1"),
        "version",
        "must be an integer 0..9223372036854775807, got '1'",
    ),
    (
        "no match",
        bad(match=()),
        "match",
        "needs at least one alternative (an empty mapping matches all traffic)",
    ),
    ("match type", bad(match=("udp",)), "match[0]", "must be a FlowMatch, got str"),
    ("protocol", with_match(ip_proto=256), "match[0].ip_proto", "protocol 256 outside 0-255"),
    (
        "port type",
        with_match(ip_proto=17, dst_ports=(PortRange(1, "2"),)),
        "match[0].dst_ports[0]",
        "must be a port range of integers, got PortRange(lo=1, hi='2')",
    ),
    (
        "port type lo",
        with_match(ip_proto=17, src_ports=(PortRange("1", 2),)),
        "match[0].src_ports[0]",
        "must be a port range of integers, got PortRange(lo='1', hi=2)",
    ),
    (
        "port repeats",
        with_match(ip_proto=17, dst_ports=(PortRange(80, 80), PortRange(80, 80))),
        "match[0].dst_ports[1]",
        "port range 80 repeats match[0].dst_ports[0]",
    ),
    (
        "too many ports",
        with_match(ip_proto=6, src_ports=tuple(PortRange(p, p) for p in range(65))),
        "match[0].src_ports",
        "65 entries; at most 64 are allowed",
    ),
    (
        "ports without protocol",
        with_match(dst_ports=(PortRange(80, 80),)),
        "match[0].dst_ports",
        "ports need ip_proto tcp or udp in the same alternative (it is not set)",
    ),
    (
        "ports with icmp",
        with_match(ip_proto=1, dst_ports=(PortRange(80, 80),)),
        "match[0].dst_ports",
        "ports need ip_proto tcp or udp in the same alternative (it is 1)",
    ),
    (
        "dscp repeats",
        with_match(dscp=(26, 26)),
        "match[0].dscp[1]",
        "DSCP 26 repeats match[0].dscp[0]",
    ),
    (
        "prefix type",
        with_match(src_hosts=("10.0.0.0/8",)),
        "match[0].src_hosts[0]",
        "must be an IPv4 prefix, got '10.0.0.0/8'",
    ),
    (
        "prefix repeats",
        with_match(dst_hosts=(NET("10.0.0.0/8"), NET("10.0.0.0/8"))),
        "match[0].dst_hosts[1]",
        "prefix 10.0.0.0/8 repeats match[0].dst_hosts[0]",
    ),
    (
        "too many prefixes",
        with_match(dst_hosts=tuple(NET(f"10.0.{i}.0/24") for i in range(65))),
        "match[0].dst_hosts",
        "65 entries; at most 64 are allowed",
    ),
    (
        "too many entries",
        with_match(
            ip_proto=17,
            src_ports=tuple(PortRange(2 * i + 1, 2 * i + 1) for i in range(64)),
            dst_ports=tuple(PortRange(2 * i + 1, 2 * i + 1) for i in range(64)),
            dscp=(1, 2),
        ),
        "match[0]",
        "needs 8192 flow entries per switch (more than 4096); "
        "use fewer or wider port ranges and prefixes, or split it into alternatives",
    ),
    ("strategy", bad(strategy="fastest"), "strategy", "must be a Strategy, got 'fastest'"),
    (
        "catch-all strategy",
        bad(match=(FlowMatch(),), strategy=Strategy.WIDEST),
        "strategy",
        "a catch-all policy (a match alternative that is empty) is forwarded per "
        "destination, so it can use only ecmp, shortest, weighted; got widest",
    ),
    (
        "weighted without weights",
        bad(strategy=Strategy.WEIGHTED),
        "weights",
        "strategy weighted needs at least one switch weight",
    ),
    (
        "weight twice",
        bad(strategy=Strategy.WEIGHTED, weights=(("spine1", 1.0), ("spine1", 2.0))),
        "weights.spine1",
        "switch given twice",
    ),
    (
        "all weights zero",
        bad(
            strategy=Strategy.WEIGHTED,
            weights=(("spine1", 0.0), ("spine2", 0)),
        ),
        "weights",
        "all weights are 0; at least one must be positive",
    ),
    ("fallback type", bad(fallback="ecmp"), "fallback", "must be a Strategy, got 'ecmp'"),
    (
        "pinned fallback",
        bad(strategy=Strategy.PINNED, pinned_path=("spine1",), fallback=Strategy.PINNED),
        "fallback",
        "must not be pinned: it is what runs when the pinned path cannot",
    ),
    (
        "params type",
        bad(params={"congestion_threshold": 0.8}),
        "params",
        "must be PolicyParams, got dict",
    ),
    (
        "move interval type",
        with_params(min_move_interval_s="2"),
        "params.min_move_interval_s",
        "must be a finite number, got '2'",
    ),
    (
        "move interval infinite",
        with_params(min_move_interval_s=float("inf")),
        "params.min_move_interval_s",
        "must be a finite number, got inf",
    ),
    (
        "move interval too long",
        with_params(min_move_interval_s=3601),
        "params.min_move_interval_s",
        "3601 outside 0-3600 s",
    ),
]


@pytest.mark.parametrize(("case", "policy", "field", "reason"), CASES, ids=[c[0] for c in CASES])
def test_a_refused_policy_names_the_field_and_why(
    case: str, policy: Policy, field: str, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_policy(policy)
    assert (err.value.field, err.value.reason) == (field, reason), case


@pytest.mark.parametrize(
    "policy",
    [
        with_match(ip_proto=0),
        with_match(ip_proto=255),
        with_params(min_move_interval_s=3600),
        with_params(min_move_interval_s=0),
    ],
)
def test_values_at_the_edges_of_their_range_are_accepted(policy: Policy) -> None:
    validate_policy(policy)


class Fabric:
    """spine1 and spine2 each cabled to leaf1 and leaf2."""

    cables = {("leaf1", "spine1"), ("leaf1", "spine2"), ("leaf2", "spine1"), ("leaf2", "spine2")}

    def has_switch(self, name: str) -> bool:
        return name in {"leaf1", "leaf2", "spine1", "spine2"}

    def linked(self, a: str, b: str) -> bool:
        return (a, b) in self.cables or (b, a) in self.cables


def test_a_pinned_hop_without_a_cable_names_both_ends() -> None:
    pinned = bad(strategy=Strategy.PINNED, pinned_path=("leaf1", "spine1", "spine2", "leaf2"))
    with pytest.raises(InvalidArgument) as err:
        validate_policy(pinned, fabric=Fabric())
    assert (err.value.field, err.value.reason) == (
        "pinned_path[2]",
        "no link from spine1 (pinned_path[1]) to spine2",
    )
    validate_policy(replace(pinned, pinned_path=("leaf1", "spine1", "leaf2")), fabric=Fabric())
