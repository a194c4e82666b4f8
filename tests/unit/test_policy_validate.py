"""Every rule of validate_policy, each with the field path it must name."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from controller.errors import InvalidArgument
from controller.policy.model import FlowMatch, Policy, PolicyParams, PortRange, Strategy
from controller.policy.validate import validate_policy

UDP_4791 = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def policy(**changes: object) -> Policy:
    base = Policy(name="ai", priority=100, match=(UDP_4791,), strategy=Strategy.LEAST_UTILIZED)
    return replace(base, **changes)  # type: ignore[arg-type]


def params(**changes: object) -> PolicyParams:
    return replace(PolicyParams(), **changes)  # type: ignore[arg-type]


def alt(**changes: object) -> tuple[FlowMatch, ...]:
    return (replace(UDP_4791, **changes),)  # type: ignore[arg-type]


def error_of(p: Policy, **kwargs: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        validate_policy(p, **kwargs)  # type: ignore[arg-type]
    return info.value


class Fabric:
    """leaf1, leaf2 each linked both ways to spine1 and spine2; no leaf-leaf links."""

    def __init__(self) -> None:
        self.switches = {"leaf1", "leaf2", "spine1", "spine2", "0000000000000001"}
        self.links = {
            (leaf, spine) for leaf in ("leaf1", "leaf2") for spine in ("spine1", "spine2")
        }
        self.links |= {(b, a) for a, b in self.links}

    def has_switch(self, name: str) -> bool:
        return name in self.switches

    def linked(self, a: str, b: str) -> bool:
        return (a, b) in self.links


def test_a_valid_policy_passes() -> None:
    validate_policy(policy())
    validate_policy(Policy(name="default", priority=0))  # catch-all ecmp


@pytest.mark.parametrize("name", ["a", "ai-training", "x.y_z-1", "a" * 63, "0day"])
def test_valid_names(name: str) -> None:
    validate_policy(policy(name=name))


@pytest.mark.parametrize("name", ["", "AI", "-ai", "ai-", "ai training", "ai/x", "é", "ai\n"])
def test_invalid_names(name: str) -> None:
    err = error_of(policy(name=name))
    assert err.field == "name"
    assert repr(name) in err.reason


@pytest.mark.parametrize("length", [64, 1024 * 1024])
def test_long_names_are_told_the_real_limit_in_a_short_message(length: int) -> None:
    err = error_of(policy(name="a" * length))
    assert (err.field, err.reason) == ("name", f"must be at most 63 characters, got {length}")


@pytest.mark.parametrize("priority", [-1, 65536, True, 1.5])
def test_priority_range_and_type(priority: object) -> None:
    assert error_of(policy(priority=priority)).field == "priority"


@pytest.mark.parametrize("priority", [0, 65535])
def test_priority_bounds_are_inclusive(priority: int) -> None:
    validate_policy(policy(priority=priority))


def test_empty_match_tuple_is_refused() -> None:
    assert error_of(policy(match=())).field == "match"


def test_at_most_64_alternatives() -> None:
    many = tuple(FlowMatch(ip_proto=17, dst_ports=(PortRange(p, p),)) for p in range(65))
    err = error_of(policy(match=many))
    assert err.field == "match"
    assert err.reason.startswith("65 entries; at most 64")
    validate_policy(policy(match=many[:64]))


@pytest.mark.parametrize(
    ("match", "field", "fragment"),
    [
        (alt(dst_ports=(PortRange(70000, 70000),)), "match[0].dst_ports[0]", "port 70000 outside"),
        (alt(dst_ports=(PortRange(5, 4),)), "match[0].dst_ports[0]", "reversed"),
        (alt(src_ports=(PortRange(-1, 5),)), "match[0].src_ports[0]", "port -1 outside"),
        (alt(dst_ports=(PortRange(1, 1), PortRange(1, 1))), "match[0].dst_ports[1]", "repeats"),
        (alt(ip_proto=256), "match[0].ip_proto", "outside 0-255"),
        (alt(ip_proto=1), "match[0].dst_ports", "tcp or udp"),
        (alt(ip_proto=None), "match[0].dst_ports", "not set"),
        (alt(dscp=(64,)), "match[0].dscp[0]", "DSCP 64 outside 0-63"),
        (alt(dscp=(10, -1)), "match[0].dscp[1]", "outside 0-63"),
        (alt(dscp=(10, 10)), "match[0].dscp[1]", "repeats match[0].dscp[0]"),
        (alt(src_hosts=("10.0.0.1",)), "match[0].src_hosts[0]", "IPv4 prefix"),
        (alt(dst_hosts=(net("10.0.0.0/8"),) * 2), "match[0].dst_hosts[1]", "repeats"),
        (alt(dscp=(*range(64), 1)), "match[0].dscp", "65 entries"),
    ],
)
def test_match_rules(match: tuple[FlowMatch, ...], field: str, fragment: str) -> None:
    err = error_of(policy(match=match))
    assert err.field == field
    assert fragment in err.reason


def test_match_field_path_names_the_alternative() -> None:
    bad = FlowMatch(ip_proto=6, dst_ports=(PortRange(9, 8),))
    err = error_of(policy(match=(UDP_4791, UDP_4791, bad)))
    assert err.field == "match[2].dst_ports[0]"


def test_port_bounds_are_inclusive() -> None:
    validate_policy(policy(match=alt(dst_ports=(PortRange(0, 65535),), dscp=(0, 63))))


def test_tcp_ports_are_fine_and_proto_without_ports_too() -> None:
    validate_policy(policy(match=(FlowMatch(ip_proto=6, src_ports=(PortRange(1, 2),)),)))
    validate_policy(policy(match=(FlowMatch(ip_proto=1),)))


def test_expansion_beyond_4096_entries_is_refused() -> None:
    # 64 separate ports x 64 DSCP values is exactly the limit; two source ports double it.
    ports = tuple(PortRange(2 * i + 1, 2 * i + 1) for i in range(64))
    at_limit = alt(dst_ports=ports, dscp=tuple(range(64)))
    validate_policy(policy(match=at_limit))
    over = (replace(at_limit[0], src_ports=(PortRange(1, 1), PortRange(3, 3))),)
    err = error_of(policy(match=over))
    assert err.field == "match[0]"
    assert "needs 8192 flow entries" in err.reason
    # Adjacent ports merge into prefixes, so a wide contiguous range stays small.
    validate_policy(policy(match=(replace(over[0], src_ports=(PortRange(0, 1023),)),)))


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"congestion_threshold": 0.0}, "params.congestion_threshold", "outside (0, 1]"),
        ({"congestion_threshold": 1.5}, "params.congestion_threshold", "outside (0, 1]"),
        ({"congestion_threshold": float("nan")}, "params.congestion_threshold", "finite"),
        ({"clear_threshold": 0.0}, "params.clear_threshold", "above 0"),
        ({"clear_threshold": 0.8}, "params.clear_threshold", "below congestion_threshold"),
        ({"clear_threshold": 0.9}, "params.clear_threshold", "below congestion_threshold"),
        ({"clear_threshold": "0.5"}, "params.clear_threshold", "finite number"),
        ({"rebalance_period_s": 0.05}, "params.rebalance_period_s", "outside 0.1-3600"),
        ({"rebalance_period_s": 3601}, "params.rebalance_period_s", "outside 0.1-3600"),
        ({"rebalance_period_s": float("inf")}, "params.rebalance_period_s", "finite"),
        ({"min_move_interval_s": -0.1}, "params.min_move_interval_s", "outside 0-3600"),
        ({"min_move_interval_s": 3600.5}, "params.min_move_interval_s", "outside 0-3600"),
        ({"idle_timeout_s": 0}, "params.idle_timeout_s", "outside 1-3600"),
        ({"idle_timeout_s": 3601}, "params.idle_timeout_s", "outside 1-3600"),
        ({"idle_timeout_s": 1.5}, "params.idle_timeout_s", "integer"),
        ({"idle_timeout_s": True}, "params.idle_timeout_s", "integer"),
    ],
)
def test_param_rules(changes: dict[str, object], field: str, fragment: str) -> None:
    err = error_of(policy(params=params(**changes)))
    assert err.field == field
    assert fragment in err.reason


def test_param_bounds_are_inclusive() -> None:
    edge = params(
        congestion_threshold=1.0,
        clear_threshold=0.01,
        rebalance_period_s=0.1,
        min_move_interval_s=0,
        idle_timeout_s=3600,
    )
    validate_policy(policy(params=edge))
    validate_policy(policy(params=params(rebalance_period_s=3600, idle_timeout_s=1)))


def weighted(weights: tuple[tuple[str, float], ...]) -> Policy:
    return policy(strategy=Strategy.WEIGHTED, weights=weights)


@pytest.mark.parametrize(
    ("p", "field", "fragment"),
    [
        (policy(weights=(("spine1", 1.0),)), "weights", "only used by strategy weighted"),
        (weighted(()), "weights", "at least one"),
        (weighted((("spine1", -1.0),)), "weights.spine1", ">= 0"),
        (weighted((("spine1", float("inf")),)), "weights.spine1", "finite"),
        (weighted((("spine1", float("nan")),)), "weights.spine1", "finite"),
        (weighted((("spine1", True),)), "weights.spine1", "finite number"),
        (weighted((("spine1", 0.0), ("spine2", 0.0))), "weights", "all weights are 0"),
        (weighted((("spine1", 1.0), ("spine1", 2.0))), "weights.spine1", "twice"),
        (weighted((("spine 1", 1.0),)), "weights.spine 1", "not a switch name"),
        (weighted(tuple((f"s{i}", 1.0) for i in range(65))), "weights", "65 entries"),
    ],
)
def test_weight_rules(p: Policy, field: str, fragment: str) -> None:
    err = error_of(p)
    assert err.field == field
    assert fragment in err.reason


def test_weights_may_include_zero_when_one_is_positive() -> None:
    validate_policy(weighted((("spine1", 0.0), ("spine2", 2.5))))


def pinned(path: tuple[str, ...], **changes: object) -> Policy:
    return policy(strategy=Strategy.PINNED, pinned_path=path, **changes)


@pytest.mark.parametrize(
    ("p", "field", "fragment"),
    [
        (policy(pinned_path=("leaf1",)), "pinned_path", "only used by strategy pinned"),
        (pinned(()), "pinned_path", "1-16 switches, got 0"),
        (pinned(tuple(f"s{i}" for i in range(17))), "pinned_path", "got 17"),
        (pinned(("leaf1", "spine1", "leaf1")), "pinned_path[2]", "repeats pinned_path[0]"),
        (pinned(("leaf1", "")), "pinned_path[1]", "not a switch name"),
        (pinned(("leaf1",), fallback=Strategy.PINNED), "fallback", "must not be pinned"),
        (policy(fallback=Strategy.ECMP), "fallback", "only used by strategy pinned"),
    ],
)
def test_pinned_rules(p: Policy, field: str, fragment: str) -> None:
    err = error_of(p)
    assert err.field == field
    assert fragment in err.reason


def test_pinned_with_16_hops_and_another_fallback_is_valid() -> None:
    validate_policy(pinned(tuple(f"s{i}" for i in range(16)), fallback=Strategy.WIDEST))


@pytest.mark.parametrize("strategy", list(Strategy))
def test_catch_all_needs_a_per_destination_strategy(strategy: Strategy) -> None:
    extra: dict[str, object] = {}
    if strategy is Strategy.WEIGHTED:
        extra["weights"] = (("spine1", 1.0),)
    if strategy is Strategy.PINNED:
        extra["pinned_path"] = ("leaf1",)
    catch_all = Policy(name="default", priority=0, strategy=strategy)
    catch_all = replace(catch_all, **extra)  # type: ignore[arg-type]
    specific = replace(catch_all, match=(UDP_4791,))
    validate_policy(specific)  # a specific policy may use any strategy
    if strategy in (Strategy.ECMP, Strategy.SHORTEST, Strategy.WEIGHTED):
        validate_policy(catch_all)
    else:
        err = error_of(catch_all)
        assert err.field == "strategy"
        assert strategy.value in err.reason


def test_one_empty_alternative_makes_a_policy_catch_all() -> None:
    err = error_of(policy(match=(UDP_4791, FlowMatch())))
    assert err.field == "strategy"


def test_fabric_checks_only_run_with_a_fabric() -> None:
    p = pinned(("leaf1", "leaf2"))
    validate_policy(p)  # no fabric: shape only
    err = error_of(p, fabric=Fabric())
    assert err.field == "pinned_path[1]"
    assert "no link from leaf1" in err.reason


@pytest.mark.parametrize(
    ("p", "field", "fragment"),
    [
        (pinned(("leaf1", "spine9", "leaf2")), "pinned_path[1]", "unknown switch 'spine9'"),
        (pinned(("leaf1", "spine1", "spine2")), "pinned_path[2]", "no link from spine1"),
        (weighted((("spine1", 1.0), ("spine3", 1.0))), "weights.spine3", "unknown switch"),
    ],
)
def test_fabric_rules(p: Policy, field: str, fragment: str) -> None:
    err = error_of(p, fabric=Fabric())
    assert err.field == field
    assert fragment in err.reason


def test_fabric_accepts_a_real_path_and_dpids() -> None:
    validate_policy(pinned(("leaf1", "spine2", "leaf2")), fabric=Fabric())
    validate_policy(weighted((("spine1", 3.0), ("0000000000000001", 1.0))), fabric=Fabric())
