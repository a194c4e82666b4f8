"""Policy limits: flow entries per policy and in total, number of policies."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import pytest

from controller.errors import InvalidArgument
from controller.flowprog.classmatch import of_matches
from controller.policy.limits import (
    MAX_POLICIES,
    MAX_RULES_PER_POLICY,
    MAX_RULES_TOTAL,
    check_rule_budget,
    rule_entries,
)
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.policy.overlap import check_conflicts
from controller.policy.parse import PolicyFileError, load_policy_dir
from controller.policy.validate import validate_policy


def ports(base: int, count: int) -> tuple[PortRange, ...]:
    """``count`` single ports that merge into nothing wider (every other port)."""
    return tuple(PortRange(base + 2 * i, base + 2 * i) for i in range(count))


def wide(name: str, alternatives: int, *, src: int = 64, dst: int = 64, prio: int = 100) -> Policy:
    """The shape from the report: alternatives x src ports x dst ports, each list legal."""
    match = tuple(
        FlowMatch(ip_proto=17, src_ports=ports(10000, src), dst_ports=ports(20000 + 200 * a, dst))
        for a in range(alternatives)
    )
    return Policy(name=name, priority=prio, match=match, strategy=Strategy.LEAST_UTILIZED)


def compiled(policy: Policy) -> int:
    return 0 if policy.is_catch_all else sum(len(of_matches(m)) for m in policy.match)


@pytest.mark.parametrize(
    "policy",
    [
        wide("a", 1),
        wide("b", 3, src=5, dst=7),
        Policy(name="all", priority=0),  # catch-all: per-destination, no traps
        Policy(
            name="mixed",
            priority=5,
            match=(
                FlowMatch(
                    ip_proto=6,
                    dst_ports=(PortRange(5001, 5010), PortRange(29500, 29599)),
                    dscp=(26, 46),
                    src_hosts=(
                        ipaddress.IPv4Network("10.0.1.0/24"),
                        ipaddress.IPv4Network("10.0.2.0/24"),
                    ),
                ),
                FlowMatch(ip_proto=17),
            ),
        ),
    ],
)
def test_rule_entries_is_what_the_compiler_produces(policy: Policy) -> None:
    assert rule_entries(policy) == compiled(policy)


def test_the_reported_74_kb_policy_is_refused_naming_the_limit() -> None:
    # 64 alternatives x 64 source x 64 destination ports: 262,144 entries per edge port.
    with pytest.raises(InvalidArgument) as info:
        validate_policy(wide("huge", 64))
    err = info.value
    assert err.field == "match[1]"
    assert "8192 flow entries per edge port" in err.reason
    assert f"max_rules_per_policy={MAX_RULES_PER_POLICY}" in err.reason


def test_a_policy_at_the_limit_is_accepted() -> None:
    policy = wide("edge", 1)
    assert rule_entries(policy) == MAX_RULES_PER_POLICY
    validate_policy(policy)


def test_total_budget_counts_every_policy() -> None:
    full = [wide(f"p{i}", 1, prio=100 + i) for i in range(MAX_RULES_TOTAL // MAX_RULES_PER_POLICY)]
    check_rule_budget(full)  # exactly at the limit
    with pytest.raises(InvalidArgument) as info:
        check_rule_budget([*full, wide("one-more", 1, src=1, dst=1, prio=1)])
    assert info.value.field == "match"
    assert f"{MAX_RULES_TOTAL + 1} flow entries" in info.value.reason
    assert f"max_rules_total={MAX_RULES_TOTAL}" in info.value.reason
    # Catch-all policies compile to no class traps and cost nothing.
    check_rule_budget([*full, Policy(name="default", priority=0)])


def test_number_of_policies_is_bounded() -> None:
    many = [Policy(name=f"p{i}", priority=i, match=(FlowMatch(dscp=(1,)),)) for i in range(257)]
    check_rule_budget(many[:MAX_POLICIES])
    with pytest.raises(InvalidArgument) as info:
        check_rule_budget(many)
    assert info.value.field == "name"
    assert f"257 policies would exist, over the limit max_policies={MAX_POLICIES}" in str(
        info.value
    )


def test_seed_directory_over_budget_is_refused(tmp_path: Path) -> None:
    dst = ", ".join(str(20000 + 2 * i) for i in range(64))
    src = ", ".join(str(10000 + 2 * i) for i in range(64))
    for i in range(5):
        (tmp_path / f"p{i}.yaml").write_text(
            f"name: p{i}\npriority: {10 + i}\n"
            f"match: {{ip_proto: udp, src_ports: [{src}], dst_ports: [{dst}]}}\n"
        )
    with pytest.raises(PolicyFileError) as info:
        load_policy_dir(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: all policies together would compile to 20480")


def test_conflict_check_of_two_largest_policies_is_quick() -> None:
    """Two same-priority policies of 64 alternatives x 64 ports and hosts that never overlap.

    Comparing every pair of ranges took about 10 s here, all of it on the
    controller's one thread; by intervals it takes milliseconds. The bound is
    generous (a loaded 2-core machine) and still far below the old cost.
    """

    def bulky(name: str, offset: int) -> Policy:
        def hosts(base: int) -> tuple[ipaddress.IPv4Network, ...]:
            return tuple(ipaddress.IPv4Network(base + offset + 2 * k) for k in range(64))

        alternative = FlowMatch(
            ip_proto=17,
            src_ports=ports(5000, 64),
            dst_ports=ports(6000, 64),
            src_hosts=hosts(0x0A010000),
            dst_hosts=hosts(0x0A020000),
        )
        return Policy(name=name, priority=7, match=(alternative,) * 64)

    a, b = bulky("a", 0), bulky("b", 1)  # the same ports, but even vs odd addresses
    started = time.perf_counter()
    check_conflicts(a, [b])
    assert time.perf_counter() - started < 2.0
    with pytest.raises(InvalidArgument):
        check_conflicts(a, [bulky("c", 0)])
