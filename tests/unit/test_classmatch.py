"""FlowMatch -> OpenFlow matches: exact agreement with flow_match_contains.

A tiny OXM evaluator below decides whether a packet hits a (value, mask)
match, so the property test checks forwarding behaviour, not message shapes.
"""

from __future__ import annotations

import ipaddress
import random

import pytest

from controller.errors import InvalidArgument
from controller.fabric.model import FiveTuple
from controller.flowprog.classmatch import of_matches
from controller.flowprog.entries import Match, MatchValue
from controller.policy.book import flow_match_contains
from controller.policy.model import FlowMatch, PortRange

Packet = dict[str, int]


def packet(ft: FiveTuple, dscp: int, in_port: int = 1) -> Packet:
    """The OXM fields a switch could match on this packet (L4 fields only if present)."""
    fields = {
        "in_port": in_port,
        "eth_type": 0x0800,
        "ip_proto": ft.ip_proto,
        "ip_dscp": dscp,
        "ipv4_src": int(ipaddress.IPv4Address(ft.src_ip)),
        "ipv4_dst": int(ipaddress.IPv4Address(ft.dst_ip)),
    }
    l4 = {6: "tcp", 17: "udp"}.get(ft.ip_proto)
    if l4:
        fields[f"{l4}_src"] = ft.src_port
        fields[f"{l4}_dst"] = ft.dst_port
    return fields


def as_int(value: int | str) -> int:
    return value if isinstance(value, int) else int(ipaddress.IPv4Address(value))


def field_hits(value: MatchValue, actual: int) -> bool:
    if isinstance(value, tuple):
        want, mask = as_int(value[0]), as_int(value[1])
        return actual & mask == want & mask
    return actual == as_int(value)


def hits(match: Match, pkt: Packet) -> bool:
    # A field the packet lacks (e.g. tcp_dst on UDP) cannot match: OpenFlow prerequisites.
    return all(name in pkt and field_hits(value, pkt[name]) for name, value in match.fields)


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_roce_is_one_exact_match() -> None:
    m = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
    assert of_matches(m) == [Match.of(eth_type=0x0800, ip_proto=17, udp_dst=4791)]


def test_catch_all_matches_all_ipv4_and_in_port_is_added() -> None:
    assert of_matches(FlowMatch()) == [Match.of(eth_type=0x0800)]
    assert of_matches(FlowMatch(), in_port=3) == [Match.of(eth_type=0x0800, in_port=3)]


def test_tcp_range_becomes_prefixes_and_full_range_is_omitted() -> None:
    m = FlowMatch(
        ip_proto=6,
        src_ports=(PortRange(0, 65535),),
        dst_ports=(PortRange(29500, 29599),),
    )
    assert of_matches(m) == [
        Match.of(eth_type=0x0800, ip_proto=6, tcp_dst=(29500, 0xFFFC)),
        Match.of(eth_type=0x0800, ip_proto=6, tcp_dst=(29504, 0xFFC0)),
        Match.of(eth_type=0x0800, ip_proto=6, tcp_dst=(29568, 0xFFE0)),
    ]


def test_hosts_dscp_and_cross_product_order() -> None:
    m = FlowMatch(
        ip_proto=17,
        src_ports=(PortRange(7, 7),),
        dscp=(46, 26),
        src_hosts=(net("10.0.1.0/24"),),
        dst_hosts=(net("10.0.2.7/32"), net("10.0.3.0/24")),
    )
    got = of_matches(m)
    base: dict[str, MatchValue] = {
        "eth_type": 0x0800,
        "ip_proto": 17,
        "udp_src": 7,
        "ipv4_src": ("10.0.1.0", "255.255.255.0"),
    }
    assert got == [
        Match.of(**base, ip_dscp=26, ipv4_dst="10.0.2.7"),
        Match.of(**base, ip_dscp=26, ipv4_dst=("10.0.3.0", "255.255.255.0")),
        Match.of(**base, ip_dscp=46, ipv4_dst="10.0.2.7"),
        Match.of(**base, ip_dscp=46, ipv4_dst=("10.0.3.0", "255.255.255.0")),
    ]
    assert of_matches(m) == got  # deterministic


def test_overlapping_lists_are_merged_not_duplicated() -> None:
    m = FlowMatch(
        ip_proto=17,
        dst_ports=(PortRange(10, 11), PortRange(8, 9), PortRange(9, 10)),
        dst_hosts=(net("10.0.0.0/16"), net("10.0.3.0/24")),
    )
    assert of_matches(m) == [
        Match.of(
            eth_type=0x0800, ip_proto=17, udp_dst=(8, 0xFFFC), ipv4_dst=("10.0.0.0", "255.255.0.0")
        )
    ]


def test_ports_need_tcp_or_udp() -> None:
    with pytest.raises(InvalidArgument) as info:
        of_matches(FlowMatch(dst_ports=(PortRange(80, 80),)))
    assert info.value.field == "ip_proto"
    with pytest.raises(InvalidArgument):
        of_matches(FlowMatch(ip_proto=1, src_ports=(PortRange(80, 80),)))


def test_more_than_4096_matches_is_refused() -> None:
    ports = tuple(PortRange(2 * i, 2 * i) for i in range(64))
    at_limit = FlowMatch(ip_proto=6, dst_ports=ports, dscp=tuple(range(64)))
    assert len(of_matches(at_limit)) == 4096
    over = FlowMatch(ip_proto=6, dst_ports=ports, dscp=tuple(range(64)), src_ports=ports[:2])
    with pytest.raises(InvalidArgument, match="8192 OpenFlow matches, more than 4096") as info:
        of_matches(over)
    assert info.value.field == "match"


# --------------------------------------------------------------------------- property

HOST_POOL = [
    "10.0.0.0/14", "10.0.0.0/16", "10.0.1.0/24", "10.0.1.0/25", "10.0.1.128/25",
    "10.0.2.0/23", "10.0.2.7/32", "10.0.3.0/24", "10.1.0.0/16", "0.0.0.0/0",
]  # fmt: skip


def random_ports(rng: random.Random) -> tuple[PortRange, ...]:
    ranges = []
    for _ in range(rng.randrange(4)):
        kind = rng.random()
        if kind < 0.1:
            ranges.append(PortRange(0, 65535))
        elif kind < 0.2:
            lo = rng.randrange(65536)
            ranges.append(PortRange(lo, 65535))
        else:
            lo = rng.randrange(300)
            ranges.append(PortRange(lo, min(65535, lo + rng.choice([0, 1, 3, 17, 100]))))
    return tuple(ranges)


def random_match(rng: random.Random) -> FlowMatch:
    proto = rng.choice([None, 1, 6, 17, 17])
    with_ports = proto in (6, 17)
    return FlowMatch(
        ip_proto=proto,
        src_ports=random_ports(rng) if with_ports and rng.random() < 0.4 else (),
        dst_ports=random_ports(rng) if with_ports else (),
        dscp=tuple(rng.sample(range(64), rng.randrange(3))),
        src_hosts=tuple(net(h) for h in rng.sample(HOST_POOL, rng.randrange(3))),
        dst_hosts=tuple(net(h) for h in rng.sample(HOST_POOL, rng.randrange(3))),
    )


def random_packet(rng: random.Random, m: FlowMatch) -> tuple[FiveTuple, int]:
    def addr(nets: tuple[ipaddress.IPv4Network, ...]) -> str:
        if nets and rng.random() < 0.7:
            n = rng.choice(nets)
            offset = rng.choice([0, n.num_addresses - 1, rng.randrange(n.num_addresses)])
            return str(n.network_address + offset)
        base = rng.choice([0x0A000000, 0x0A000100, 0x0A000200, 0x0A000300, 0x0A010000])
        return str(ipaddress.IPv4Address(base + rng.choice([0, 1, 7, 127, 128, 255, 256, 511])))

    def port(ranges: tuple[PortRange, ...]) -> int:
        # Hit the edges of the listed ranges often: that is where prefix errors show.
        if ranges and rng.random() < 0.6:
            r = rng.choice(ranges)
            return max(0, min(65535, rng.choice([r.lo, r.hi, r.lo - 1, r.hi + 1])))
        return rng.choice([0, 65535, rng.randrange(400), rng.randrange(65536)])

    proto = m.ip_proto if m.ip_proto is not None and rng.random() < 0.8 else rng.choice([1, 6, 17])
    has_ports = proto in (6, 17)
    ft = FiveTuple(
        addr(m.src_hosts),
        addr(m.dst_hosts),
        proto,
        port(m.src_ports) if has_ports else 0,
        port(m.dst_ports) if has_ports else 0,
    )
    dscp = rng.choice([*m.dscp, 0, 63, rng.randrange(64)]) if m.dscp else rng.randrange(64)
    return ft, dscp


def test_a_packet_hits_a_compiled_match_iff_the_flow_match_contains_it() -> None:
    rng = random.Random(20240611)
    positives = negatives = 0
    for _ in range(150):
        m = random_match(rng)
        matches = of_matches(m, in_port=1)
        assert matches == sorted(set(matches), key=matches.index), "no duplicates"
        for _ in range(30):
            ft, dscp = random_packet(rng, m)
            expected = flow_match_contains(m, ft, dscp)
            got = any(hits(x, packet(ft, dscp)) for x in matches)
            assert got is expected, (m, ft, dscp)
            positives += expected
            negatives += not expected
        assert not any(hits(x, packet(FiveTuple("10.0.1.1", "10.0.2.1", 6), 0, 2)) for x in matches)
    # The generator must exercise both outcomes, or the test proves nothing.
    assert positives > 700
    assert negatives > 700
