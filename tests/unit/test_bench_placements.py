"""The benchmarks' reference placements and job declarations, checked without a fabric.

The emulator-ceiling rows are only a ceiling if the static placement behind
them is optimal: collision-free whenever the traffic allows it, and
avoiding failed links and background. The job a benchmark declares must name
exactly the flows it then starts. Both are pure functions, checked here on
cases worked out by hand.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from benchmarks.ceiling import CEILING_COOKIE, CEILING_PRIORITY, optimal_spines
from benchmarks.declare import job_of
from benchmarks.lab import Flow, ring_order
from controller.flowprog.entries import COOKIE_TAG, Cookie
from controller.flowprog.forwarding import PRIO_ARP, PRIO_FLOW, PRIO_JOB, PRIO_LLDP
from controller.flowprog.repair import PRIO_TAGGED
from controller.jobs.model import Pattern

MBIT = 1e6


def _ring(hosts: list[tuple[int, int]], proto: str = "udp", rate: float = 9.0) -> list[Flow]:
    return [
        Flow(hosts[k], hosts[(k + 1) % len(hosts)], proto, 4791, 40000 + k, rate)
        for k in range(len(hosts))
    ]


def _links(flows: list[Flow], spines: list[int | None]) -> Counter[tuple[str, int, int]]:
    used: Counter[tuple[str, int, int]] = Counter()
    for f, k in zip(flows, spines, strict=True):
        if k is not None:
            used[("up", f.src[0], k)] += 1
            used[("down", f.dst[0], k)] += 1
    return used


def test_a_ring_whose_leaves_send_as_many_flows_as_there_are_spines_gets_links_of_its_own() -> None:
    flows = _ring(ring_order(4, 2))  # every leaf sends 2 and receives 2; 2 spines
    spines = optimal_spines(flows, spines=2, leaves=4, link_bps=10 * MBIT)
    assert all(k in (1, 2) for k in spines)
    assert max(_links(flows, spines).values()) == 1


def test_all_to_all_above_the_spine_count_shares_links_as_evenly_as_possible() -> None:
    members = [(j, 1) for j in range(1, 5)]
    flows = [
        Flow(a, b, "tcp", 29500, 40000 + n)
        for n, (a, b) in enumerate(itertools.permutations(members, 2))
    ]
    spines = optimal_spines(flows, spines=2, leaves=4, link_bps=10 * MBIT)
    # Each leaf sends 3 flows over 2 uplinks: ceil(3 / 2) = 2 per link is optimal.
    assert max(_links(flows, spines).values()) == 2


def test_a_failed_cable_and_a_full_link_are_avoided() -> None:
    flows = _ring([(1, 1), (2, 1)])
    spines = optimal_spines(flows, spines=2, leaves=2, link_bps=10 * MBIT, down=[(1, 1)])
    assert spines == [2, 2]
    busy = {("leaf1", "spine2"): 10 * MBIT, ("spine2", "leaf2"): 10 * MBIT}
    flows = [Flow((1, 1), (2, 1), "udp", 4791, 40000, 9.0)]
    assert optimal_spines(flows, spines=2, leaves=2, link_bps=10 * MBIT, used_bps=busy) == [1]


def test_flows_inside_one_leaf_get_no_spine_and_a_leaf_cut_off_is_an_error() -> None:
    flows = [Flow((1, 1), (1, 2), "udp", 4791, 40000, 1.0)]
    assert optimal_spines(flows, spines=2, leaves=2, link_bps=10 * MBIT) == [None]
    cross = [Flow((1, 1), (2, 1), "udp", 4791, 40000, 1.0)]
    with pytest.raises(RuntimeError, match="no static path"):
        optimal_spines(cross, spines=2, leaves=2, link_bps=10 * MBIT, down=[(1, 1), (1, 2)])


def test_the_ceiling_entries_are_outside_everything_the_controller_owns() -> None:
    assert CEILING_COOKIE >> 56 != COOKIE_TAG
    assert Cookie.decode(CEILING_COOKIE) is None
    assert PRIO_JOB < PRIO_FLOW < CEILING_PRIORITY < PRIO_TAGGED < PRIO_ARP < PRIO_LLDP


def test_a_ring_of_flows_is_declared_as_a_ring_over_its_hosts_in_rank_order() -> None:
    flows = _ring(ring_order(2, 2))
    job = job_of("r", flows, demand_mbps=9.0)
    assert job.pattern is Pattern.RING
    assert job.hosts == ("10.0.1.1", "10.0.2.1", "10.0.1.2", "10.0.2.2")
    assert [(f.src, f.dst) for f in flows] == [
        (tuple(map(int, s.split(".")[2:])), tuple(map(int, d.split(".")[2:])))
        for s, d in job.flow_pairs()
    ]
    assert job.match.ip_proto == 17 and job.demand_mbps == 9.0


def test_all_to_all_and_other_shapes_are_declared_exactly() -> None:
    members = [(1, 1), (2, 1), (3, 1)]
    flows = [
        Flow(a, b, "tcp", 29500 + members.index(a), 40000)
        for a, b in itertools.permutations(members, 2)
    ]
    job = job_of("a2a", flows, demand_mbps=None)
    assert job.pattern is Pattern.ALL_TO_ALL and job.pair_count == 6
    assert job.match.ip_proto == 6
    (ports,) = job.match.dst_ports
    assert (ports.lo, ports.hi) == (29500, 29502)
    some = flows[:2]
    pairs = job_of("p", some, demand_mbps=1.0)
    assert pairs.pattern is Pattern.PAIRS and len(pairs.pairs) == 2


def test_flows_of_two_protocols_cannot_be_one_job() -> None:
    flows = [Flow((1, 1), (2, 1), "udp", 4791, 1), Flow((2, 1), (1, 1), "tcp", 29500, 2)]
    with pytest.raises(ValueError, match="one transport"):
        job_of("mixed", flows, demand_mbps=None)
