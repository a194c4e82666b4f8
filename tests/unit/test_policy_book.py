"""PolicyBook: precedence, the governing policy of a flow, immutable updates."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import replace

import pytest

from controller.errors import InvalidArgument
from controller.fabric.model import FiveTuple
from controller.policy.book import PolicyBook, flow_match_contains
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy

ROCE = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
NCCL = FlowMatch(ip_proto=6, dst_ports=(PortRange(29500, 29599),))

DEFAULT = Policy(name="default", priority=0)
AI = Policy(name="ai-training", priority=100, match=(ROCE, NCCL), strategy=Strategy.LEAST_UTILIZED)
PINNED = Policy(
    name="pinned",
    priority=200,
    match=(
        FlowMatch(
            ip_proto=17,
            dst_ports=(PortRange(4791, 4791), PortRange(5001, 5010)),
            src_hosts=(ipaddress.IPv4Network("10.0.1.0/24"),),
            dst_hosts=(ipaddress.IPv4Network("10.0.2.0/24"),),
        ),
    ),
    strategy=Strategy.PINNED,
    pinned_path=("leaf1", "spine2", "leaf2"),
)
EXPRESS = Policy(name="express", priority=150, match=(FlowMatch(dscp=(46,)),))


def udp(src: str, dst: str, dport: int, sport: int = 40000) -> FiveTuple:
    return FiveTuple(src, dst, 17, sport, dport)


def test_all_is_sorted_by_priority_then_name() -> None:
    twin = replace(EXPRESS, name="alpha", match=(FlowMatch(dscp=(10,)),))
    book = PolicyBook([DEFAULT, EXPRESS, AI, twin, PINNED])
    assert [p.name for p in book.all()] == ["pinned", "alpha", "express", "ai-training", "default"]
    assert list(book) == list(book.all())
    assert len(book) == 5


@pytest.mark.parametrize(
    ("ft", "dscp", "expected"),
    [
        (udp("10.0.1.1", "10.0.2.1", 4791), 0, "pinned"),  # highest priority wins
        (udp("10.0.1.1", "10.0.3.1", 4791), 0, "ai-training"),  # not to leaf2: AI
        (udp("10.0.1.1", "10.0.2.1", 5005), 0, "pinned"),
        (udp("10.0.1.1", "10.0.3.1", 5005), 0, "default"),
        (udp("10.0.1.1", "10.0.3.1", 5005), 46, "express"),
        (udp("10.0.1.1", "10.0.3.1", 4791), 46, "express"),  # express (150) beats ai (100)
        (udp("10.0.1.1", "10.0.2.1", 4791), 46, "pinned"),
        (FiveTuple("10.0.1.1", "10.0.3.1", 6, 1, 29599), 0, "ai-training"),
        (FiveTuple("10.0.1.1", "10.0.3.1", 6, 1, 29600), 0, "default"),
        (FiveTuple("10.0.1.1", "10.0.3.1", 6, 1, 4791), 0, "default"),  # TCP 4791 is not RoCE
        (FiveTuple("10.0.1.1", "10.0.2.1", 1), 0, "default"),  # ICMP
    ],
)
def test_governing_follows_priority(ft: FiveTuple, dscp: int, expected: str) -> None:
    book = PolicyBook([DEFAULT, AI, PINNED, EXPRESS])
    governing = book.governing(ft, dscp=dscp)
    assert governing is not None
    assert governing.name == expected


def test_governing_without_a_catch_all_can_be_none() -> None:
    book = PolicyBook([AI])
    assert book.governing(udp("10.0.1.1", "10.0.2.1", 80)) is None
    assert book.catch_all() is None
    assert PolicyBook().governing(udp("10.0.1.1", "10.0.2.1", 4791)) is None


def test_catch_all_is_the_highest_priority_catch_all() -> None:
    other = Policy(name="zz-wide", priority=5, match=(ROCE, FlowMatch()))
    book = PolicyBook([DEFAULT, AI, other])
    assert book.catch_all() == other
    assert PolicyBook([DEFAULT, AI]).catch_all() == DEFAULT


def test_with_policy_replaces_by_name_and_leaves_the_original_unchanged() -> None:
    book = PolicyBook([DEFAULT, AI])
    lowered = replace(AI, priority=1, version=9)
    newer = book.with_policy(lowered)
    assert newer.get("ai-training") == lowered
    assert book.get("ai-training") == AI
    assert [p.name for p in newer.all()] == ["ai-training", "default"]
    assert len(newer) == 2
    added = newer.with_policy(PINNED)
    assert added.names() == {"default", "ai-training", "pinned"}
    assert "pinned" not in newer


def test_without() -> None:
    book = PolicyBook([DEFAULT, AI])
    smaller = book.without("ai-training")
    assert smaller.names() == {"default"}
    assert book.names() == {"default", "ai-training"}
    assert book.without("missing") == book
    assert book.get("missing") is None


def test_duplicate_names_are_refused_and_equality_ignores_order() -> None:
    with pytest.raises(InvalidArgument, match="'default' given twice"):
        PolicyBook([DEFAULT, DEFAULT])
    assert PolicyBook([DEFAULT, AI]) == PolicyBook([AI, DEFAULT])
    assert hash(PolicyBook([DEFAULT, AI])) == hash(PolicyBook([AI, DEFAULT]))
    assert PolicyBook([DEFAULT]) != PolicyBook([AI])


@pytest.mark.parametrize(
    ("m", "ft", "dscp", "expected"),
    [
        (FlowMatch(), FiveTuple("1.2.3.4", "5.6.7.8", 1), 63, True),
        (ROCE, udp("1.1.1.1", "2.2.2.2", 4791), 0, True),
        (ROCE, udp("1.1.1.1", "2.2.2.2", 4792), 0, False),
        (ROCE, FiveTuple("1.1.1.1", "2.2.2.2", 6, 1, 4791), 0, False),
        (
            FlowMatch(ip_proto=6, src_ports=(PortRange(1, 2),)),
            FiveTuple("1.1.1.1", "2.2.2.2", 6, 2, 9),
            0,
            True,
        ),
        (
            FlowMatch(ip_proto=6, src_ports=(PortRange(1, 2),)),
            FiveTuple("1.1.1.1", "2.2.2.2", 6, 3, 1),
            0,
            False,
        ),
        (FlowMatch(dscp=(26, 46)), udp("1.1.1.1", "2.2.2.2", 1), 26, True),
        (FlowMatch(dscp=(26, 46)), udp("1.1.1.1", "2.2.2.2", 1), 0, False),
        (PINNED.match[0], udp("10.0.1.255", "10.0.2.0", 5010), 0, True),
        (PINNED.match[0], udp("10.0.0.255", "10.0.2.0", 5010), 0, False),
        (PINNED.match[0], udp("10.0.1.1", "10.0.22.1", 5010), 0, False),
    ],
)
def test_flow_match_contains(m: FlowMatch, ft: FiveTuple, dscp: int, expected: bool) -> None:
    assert flow_match_contains(m, ft, dscp) is expected


SPORT = Policy(
    name="sport",
    priority=120,
    match=(FlowMatch(ip_proto=17, src_ports=(PortRange(50000, 50010),)),),
)


@pytest.mark.parametrize(
    "policies",
    [
        [DEFAULT, AI],  # ports only: the source port is not part of the answer's key
        [DEFAULT, AI, EXPRESS],
        [DEFAULT, AI, PINNED, EXPRESS, SPORT],
        [AI, SPORT],
    ],
)
def test_remembered_answers_agree_with_a_scan_of_every_policy(policies: list[Policy]) -> None:
    book = PolicyBook(policies)
    rng = random.Random(len(policies))

    def scan(ft: FiveTuple, dscp: int) -> Policy | None:
        return next(
            (p for p in book.all() if any(flow_match_contains(m, ft, dscp) for m in p.match)),
            None,
        )

    for _ in range(3000):  # a few values per field: answers are looked up again often
        ft = FiveTuple(
            f"10.0.{rng.choice((1, 3))}.1",
            f"10.0.{rng.choice((2, 3))}.1",
            rng.choice((1, 6, 17)),
            rng.choice((40000, 50005, 50011)),
            rng.choice((4791, 5005, 29500, 80)),
        )
        dscp = rng.choice((0, 46))
        assert book.governing(ft, dscp=dscp) == scan(ft, dscp), (ft, dscp)
