"""Overlap of matches, priority conflicts, and the port/prefix normal forms."""

from __future__ import annotations

import functools
import ipaddress
import itertools
import random
from typing import Any

import pytest

from controller.errors import InvalidArgument
from controller.fabric.model import FiveTuple
from controller.policy.book import flow_match_contains
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.policy.overlap import (
    check_conflicts,
    host_terms,
    match_term_count,
    matches_overlap,
    merged_ranges,
    policies_overlap,
    port_terms,
    range_prefixes,
)


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def udp(*ports: tuple[int, int], **more: object) -> FlowMatch:
    return FlowMatch(ip_proto=17, dst_ports=tuple(PortRange(*p) for p in ports), **more)  # type: ignore[arg-type]


ANY = FlowMatch()


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (ANY, ANY, True),
        (ANY, udp((4791, 4791)), True),
        (udp((4791, 4791)), FlowMatch(ip_proto=6, dst_ports=(PortRange(4791, 4791),)), False),
        (udp((1, 10)), udp((10, 20)), True),
        (udp((1, 10)), udp((11, 20)), False),
        (udp((1, 10), (30, 40)), udp((11, 20), (35, 35)), True),
        (udp((1, 10)), FlowMatch(ip_proto=17, src_ports=(PortRange(50, 60),)), True),
        (udp((1, 1), dscp=(26,)), udp((1, 1), dscp=(46,)), False),
        (udp((1, 1), dscp=(26, 46)), udp((1, 1), dscp=(46,)), True),
        (udp((1, 1), dscp=(26,)), udp((1, 1)), True),
        (
            FlowMatch(src_hosts=(net("10.0.1.0/24"),)),
            FlowMatch(src_hosts=(net("10.0.0.0/16"),)),
            True,
        ),
        (
            FlowMatch(src_hosts=(net("10.0.1.0/24"),)),
            FlowMatch(src_hosts=(net("10.0.2.0/24"),)),
            False,
        ),
        (
            FlowMatch(src_hosts=(net("10.0.1.0/24"),)),
            FlowMatch(dst_hosts=(net("10.0.2.0/24"),)),
            True,
        ),
        (
            FlowMatch(dst_hosts=(net("10.0.1.5/32"), net("10.0.3.0/24"))),
            FlowMatch(dst_hosts=(net("10.0.3.7/32"),)),
            True,
        ),
        (FlowMatch(ip_proto=1), FlowMatch(ip_proto=17), False),
    ],
)
def test_matches_overlap(a: FlowMatch, b: FlowMatch, expected: bool) -> None:
    assert matches_overlap(a, b) is expected
    assert matches_overlap(b, a) is expected


def test_overlap_is_exact_on_random_packets() -> None:
    """When matches_overlap says False no sampled packet matches both; when True one exists."""
    rng = random.Random(7)

    def rand_match() -> FlowMatch:
        proto = rng.choice([None, 6, 17])
        ports = (
            ()
            if proto is None
            else tuple(
                PortRange(lo, lo + rng.randrange(4))
                for lo in rng.sample(range(8), rng.randrange(3))
            )
        )
        dscp = tuple(rng.sample(range(3), rng.randrange(3)))
        return FlowMatch(ip_proto=proto, dst_ports=ports, dscp=dscp)

    for _ in range(300):
        a, b = rand_match(), rand_match()
        both = [
            (proto, port, dscp)
            for proto in (6, 17)
            for port in range(12)
            for dscp in range(3)
            if all(
                flow_match_contains(m, FiveTuple("1.1.1.1", "2.2.2.2", proto, 0, port), dscp)
                for m in (a, b)
            )
        ]
        assert matches_overlap(a, b) is bool(both), (a, b)


def pol(name: str, priority: int, *match: FlowMatch) -> Policy:
    return Policy(name=name, priority=priority, match=match or (ANY,), strategy=Strategy.ECMP)


def test_policies_overlap_checks_every_pair_of_alternatives() -> None:
    a = pol("a", 1, udp((4791, 4791)), FlowMatch(ip_proto=6, dst_ports=(PortRange(80, 80),)))
    b = pol("b", 1, FlowMatch(ip_proto=1), FlowMatch(ip_proto=6))
    c = pol("c", 1, FlowMatch(ip_proto=1))
    assert policies_overlap(a, b)
    assert not policies_overlap(a, c)


def test_conflict_same_priority_and_overlap_names_the_other_policy() -> None:
    new = pol("new", 10, udp((4791, 4791)))
    existing = [pol("zeta", 10, FlowMatch(ip_proto=17)), pol("alpha", 10, FlowMatch(ip_proto=17))]
    with pytest.raises(InvalidArgument) as info:
        check_conflicts(new, existing)
    assert info.value.field == "priority"
    assert "policy 'alpha'" in info.value.reason  # deterministic: first by name
    assert "priority 10" in info.value.reason


@pytest.mark.parametrize(
    "other",
    [
        pol("other", 11, FlowMatch(ip_proto=17)),  # other priority
        pol("other", 10, FlowMatch(ip_proto=6)),  # disjoint
        pol("new", 10, FlowMatch(ip_proto=17)),  # same name: a replacement
    ],
    ids=["priority", "disjoint", "same-name"],
)
def test_no_conflict(other: Policy) -> None:
    check_conflicts(pol("new", 10, udp((4791, 4791))), [other])


def test_two_catch_alls_at_one_priority_conflict() -> None:
    with pytest.raises(InvalidArgument, match="'default'"):
        check_conflicts(pol("second", 0), [pol("default", 0)])
    check_conflicts(pol("second", 1), [pol("default", 0)])


def test_merged_ranges() -> None:
    ranges = [
        PortRange(10, 20),
        PortRange(1, 5),
        PortRange(6, 8),
        PortRange(15, 30),
        PortRange(40, 40),
    ]
    assert merged_ranges(ranges) == [PortRange(1, 8), PortRange(10, 30), PortRange(40, 40)]
    assert merged_ranges([]) == []


def intervals(prefixes: list[tuple[int, int]], width: int = 16) -> list[tuple[int, int]]:
    full = (1 << width) - 1
    return [(value, value + (~mask & full)) for value, mask in prefixes]


def test_range_prefixes_tile_the_range_exactly() -> None:
    rng = random.Random(1)
    cases = [(0, 65535), (0, 0), (65535, 65535), (1, 65534), (4791, 4791), (29500, 29599)]
    cases += [tuple(sorted(rng.sample(range(65536), 2))) for _ in range(200)]  # type: ignore[misc]
    for lo, hi in cases:
        prefixes = range_prefixes(lo, hi)
        for value, mask in prefixes:
            assert value & ~mask & 0xFFFF == 0, "value is aligned to its mask"
        spans = intervals(prefixes)
        assert spans[0][0] == lo
        assert spans[-1][1] == hi
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(spans))
        assert len(prefixes) <= 30  # the classic bound, 2 * (16 - 1)
    assert range_prefixes(0, 65535) == [(0, 0)]
    assert len(range_prefixes(1, 65534)) == 30
    assert range_prefixes(29500, 29599) == [(29500, 0xFFFC), (29504, 0xFFC0), (29568, 0xFFE0)]


def test_range_prefixes_are_minimal() -> None:
    """Against a brute-force optimum over every range of a 6-bit field."""
    width = 6

    @functools.cache
    def fewest(lo: int, hi: int) -> int:
        if lo > hi:
            return 0
        sizes = [1 << k for k in range(width + 1) if lo % (1 << k) == 0 and lo + (1 << k) - 1 <= hi]
        return 1 + min(fewest(lo + size, hi) for size in sizes)

    for lo in range(64):
        for hi in range(lo, 64):
            prefixes = range_prefixes(lo, hi, width=width)
            assert len(prefixes) == fewest(lo, hi), (lo, hi)
            spans = intervals(prefixes, width)
            assert (spans[0][0], spans[-1][1]) == (lo, hi)


@pytest.mark.parametrize(("lo", "hi"), [(-1, 3), (3, 2), (0, 65536)])
def test_range_prefixes_rejects_bad_ranges(lo: int, hi: int) -> None:
    with pytest.raises(ValueError, match=f"{lo}-{hi}"):
        range_prefixes(lo, hi)


def test_port_and_host_terms_treat_everything_as_no_constraint() -> None:
    assert port_terms(()) is None
    assert port_terms((PortRange(0, 30000), PortRange(30001, 65535))) is None
    assert port_terms((PortRange(2, 3), PortRange(0, 1))) == [(0, 0xFFFC)]
    assert host_terms(()) is None
    assert host_terms((net("0.0.0.0/1"), net("128.0.0.0/1"))) is None
    assert host_terms((net("10.0.1.0/24"), net("10.0.0.0/24"), net("10.0.1.3/32"))) == [
        net("10.0.0.0/23")
    ]


def test_match_term_count_is_the_product_of_fields() -> None:
    m = FlowMatch(
        ip_proto=6,
        src_ports=(PortRange(5001, 5010),),  # 5 prefixes
        dst_ports=(PortRange(0, 65535),),  # no constraint
        dscp=(1, 2, 2),  # 2 values
        dst_hosts=(net("10.0.1.0/24"), net("10.0.3.0/24")),  # 2 prefixes
    )
    assert match_term_count(m) == 5 * 2 * 2
    assert match_term_count(ANY) == 1


def _naive_overlap(a: FlowMatch, b: FlowMatch) -> bool:
    """The definition, pair by pair: what the interval algorithm must agree with."""

    def meet(x: tuple[Any, ...], y: tuple[Any, ...]) -> bool:
        return not x or not y or any(p.overlaps(q) for p in x for q in y)

    if a.ip_proto is not None and b.ip_proto is not None and a.ip_proto != b.ip_proto:
        return False
    if a.dscp and b.dscp and not set(a.dscp) & set(b.dscp):
        return False
    return all(
        meet(getattr(a, f), getattr(b, f))
        for f in ("src_ports", "dst_ports", "src_hosts", "dst_hosts")
    )


def test_interval_overlap_agrees_with_the_pairwise_definition() -> None:
    rng = random.Random(11)

    def ranges() -> tuple[PortRange, ...]:
        los = rng.sample(range(40), rng.randrange(5))
        return tuple(PortRange(lo, lo + rng.randrange(6)) for lo in los)

    def nets() -> tuple[ipaddress.IPv4Network, ...]:
        out = set()
        for _ in range(rng.randrange(4)):
            length = rng.randrange(26, 33)
            address = ipaddress.IPv4Address(0x0A000000 + rng.randrange(256))
            out.add(ipaddress.IPv4Network(f"{address}/{length}", strict=False))
        return tuple(out)

    def rand_match() -> FlowMatch:
        return FlowMatch(
            ip_proto=6, src_ports=ranges(), dst_ports=ranges(), src_hosts=nets(), dst_hosts=nets()
        )

    seen = set()
    for _ in range(2000):
        a, b = rand_match(), rand_match()
        expected = _naive_overlap(a, b)
        seen.add(expected)
        assert matches_overlap(a, b) is expected, (a, b)
    assert seen == {True, False}
