"""The goodput bound behind every README ratio, on fabrics solved by hand.

:func:`benchmarks.bounds.job_bound` is the denominator of each "share of the
bound" the benchmarks and the demo report; if it were too low, every ratio
would look better than it is. Each case below states the answer worked out
on paper (Mbit/s), and why, for the emulated fabrics the benchmarks build.
The second half checks :func:`controller.te.bound.max_concurrent_throughput`
itself where its two relaxations disagree.
"""

from __future__ import annotations

import pytest
from synthetic import leaf_spine, three_tier

from benchmarks.bounds import fabric_graph, job_bound, leaf_dpid
from benchmarks.lab import Flow
from controller.errors import InvalidArgument
from controller.te.bound import HostDemand, max_concurrent_throughput

MBIT = 1e6


def tcp(src: tuple[int, int], dst: tuple[int, int]) -> Flow:
    return Flow(src, dst, "tcp", 29500, 40000)


def udp(src: tuple[int, int], dst: tuple[int, int], mbps: float) -> Flow:
    return Flow(src, dst, "udp", 4791, 40000, mbps)


def ring(hosts: list[tuple[int, int]], make=tcp) -> list[Flow]:  # type: ignore[no-untyped-def]
    return [make(hosts[k], hosts[(k + 1) % len(hosts)]) for k in range(len(hosts))]


def bound(flows: list[Flow], **kw: float | object) -> float:
    kw.setdefault("spines", 2)
    kw.setdefault("link_bps", 20 * MBIT)
    kw.setdefault("nic_bps", 20 * MBIT)
    return job_bound(flows, **kw) / MBIT  # type: ignore[arg-type]


# ------------------------------------------------------------------ job_bound
def test_ring_over_two_spines_is_limited_by_each_leafs_uplinks() -> None:
    # 4 leaves x 2 hosts, consecutive ring members on different leaves: every
    # leaf sends two flows and has 2 x 10 Mbit/s of uplinks -> 4 x 20 = 80.
    hosts = [(leaf, h) for h in (1, 2) for leaf in (1, 2, 3, 4)]
    flows = ring(hosts)
    assert bound(flows, leaves=4, hosts_per_leaf=2, link_bps=10 * MBIT) == pytest.approx(80)
    # With 5 Mbit/s NICs the hosts are the limit: 8 flows x 5.
    assert bound(
        flows, leaves=4, hosts_per_leaf=2, link_bps=10 * MBIT, nic_bps=5 * MBIT
    ) == pytest.approx(40)


def test_a_ring_of_one_host_per_leaf_runs_at_nic_speed() -> None:
    flows = ring([(1, 1), (2, 1), (3, 1), (4, 1)])
    assert bound(flows, leaves=4, hosts_per_leaf=1) == pytest.approx(80)


def test_all_to_all_is_limited_by_uplinks_or_by_nics() -> None:
    hosts = [(1, 1), (2, 1), (3, 1)]
    flows = [tcp(a, b) for a in hosts for b in hosts if a != b]
    # Each leaf sends two flows over 2 x 20 Mbit/s of uplinks: 3 x 40.
    assert bound(flows, leaves=3, hosts_per_leaf=1, nic_bps=100 * MBIT) == pytest.approx(120)
    # 20 Mbit/s NICs: each host sends at most 20: 3 x 20.
    assert bound(flows, leaves=3, hosts_per_leaf=1) == pytest.approx(60)


def test_incast_is_limited_by_the_receivers_nic() -> None:
    flows = [tcp((1, 1), (4, 1)), tcp((2, 1), (4, 1)), tcp((3, 1), (4, 1))]
    assert bound(flows, leaves=4, hosts_per_leaf=1) == pytest.approx(20)
    # One sender to three leaves: its NIC.
    fanout = [tcp((4, 1), (1, 1)), tcp((4, 1), (2, 1)), tcp((4, 1), (3, 1))]
    assert bound(fanout, leaves=4, hosts_per_leaf=1) == pytest.approx(20)


def test_paced_flows_cap_their_hosts_at_their_demand() -> None:
    flows = ring([(1, 1), (2, 1), (3, 1), (4, 1)], make=lambda a, b: udp(a, b, 5))
    assert bound(flows, leaves=4, hosts_per_leaf=1) == pytest.approx(20)
    # A host that also runs an unpaced flow keeps its whole NIC.
    mixed = [udp((1, 1), (2, 1), 5), tcp((1, 1), (2, 2))]
    assert bound(mixed, leaves=2, hosts_per_leaf=2) == pytest.approx(20)
    # A paced host gets the larger of what it sends and what it receives.
    relay = [udp((1, 1), (2, 1), 4), udp((2, 1), (1, 2), 6)]
    assert bound(relay, leaves=2, hosts_per_leaf=2) == pytest.approx(10)


def test_a_failed_cable_or_spine_takes_its_capacity_away() -> None:
    flows = [tcp((1, 1), (2, 1)), tcp((1, 2), (2, 2))]
    assert bound(flows, leaves=2, hosts_per_leaf=2) == pytest.approx(40)
    assert bound(flows, leaves=2, hosts_per_leaf=2, down=[(1, 1)]) == pytest.approx(20)
    spine2_gone = [(1, 2), (2, 2)]
    assert bound(flows, leaves=2, hosts_per_leaf=2, down=spine2_gone) == pytest.approx(20)
    # leaf1 reaches only spine2, leaf2 only spine1: no path at all.
    assert bound(flows, leaves=2, hosts_per_leaf=2, down=[(1, 1), (2, 2)]) == 0.0


def test_asymmetric_demand_uses_each_direction_separately() -> None:
    forward = [tcp((1, h), (2, h)) for h in (1, 2, 3, 4)]
    back = [tcp((2, 1), (1, 1))]
    # leaf1 -> leaf2: 2 x 20 of spine capacity for 4 x 20 of NICs; back: one NIC.
    assert bound(forward + back, leaves=2, hosts_per_leaf=4) == pytest.approx(60)
    # Background on leaf1 -> spine1 (15 of 20) leaves 5 there for the forward flows...
    used = {("leaf1", "spine1"): 15 * MBIT}
    assert bound(forward + back, leaves=2, hosts_per_leaf=4, used_bps=used) == pytest.approx(45)
    # ...while background towards leaf1 only touches the way back, which has room.
    used = {("spine1", "leaf1"): 15 * MBIT}
    assert bound(forward + back, leaves=2, hosts_per_leaf=4, used_bps=used) == pytest.approx(60)


def test_a_link_filled_by_background_still_counts_barely() -> None:
    flows = [tcp((1, 1), (2, 1)), tcp((1, 2), (2, 2))]
    full = {("leaf1", "spine1"): 25 * MBIT}  # more than the link: nothing left
    assert job_bound(
        flows,
        spines=2,
        leaves=2,
        hosts_per_leaf=2,
        link_bps=20 * MBIT,
        nic_bps=20 * MBIT,
        used_bps=full,
    ) == pytest.approx(20 * MBIT + 1e3)


def test_background_on_a_link_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(ValueError) as err:
        fabric_graph(
            spines=2,
            leaves=2,
            hosts_per_leaf=1,
            link_bps=1.0,
            used_bps={("leaf9", "spine1"): 1.0, ("leaf1", "spine1"): 0.5},
        )
    assert (
        str(err.value) == "used_bps names links that are not in the fabric: [('leaf9', 'spine1')]"
    )


def test_the_graph_numbers_ports_like_the_mininet_topology() -> None:
    graph, capacity = fabric_graph(
        spines=2, leaves=3, hosts_per_leaf=2, link_bps=10.0, down=[(3, 2)]
    )
    lid = graph.adj[leaf_dpid(2)][0x10000 + 1]["link"]
    # leaf 2: host ports 1-2, then spine1 on port 3; spine 1's port 2 faces leaf 2.
    assert (lid.src.port, lid.dst.port) == (3, 2)
    assert graph.number_of_edges() == 2 * (2 * 3 - 1) and len(capacity) == 10
    assert not graph.has_edge(leaf_dpid(3), 0x10000 + 2)


# ------------------------------------------------------- max_concurrent_throughput
def test_flows_inside_a_leaf_count_beside_flows_across() -> None:
    fab = leaf_spine(2, 2, capacity_bps=20 * MBIT)
    l1, l2 = fab.dpid("leaf1"), fab.dpid("leaf2")
    across = [HostDemand(f"a{i}", f"b{i}", l1, l2) for i in range(4)]  # 2 spines x 20
    local_first = [HostDemand("x", "y", l1, l1), *across]  # (leaf1, leaf1) sorts first
    local_last = [*across, HostDemand("x", "y", l2, l2)]  # (leaf2, leaf2) sorts last
    for demands in (local_first, local_last):
        bound = max_concurrent_throughput(fab.graph, fab.capacity, demands, nic_bps=100 * MBIT)
        assert bound == pytest.approx(140 * MBIT)


def test_error_reasons_name_what_is_missing() -> None:
    fab = leaf_spine(2, 2, capacity_bps=20 * MBIT)
    l1, l2 = fab.dpid("leaf1"), fab.dpid("leaf2")
    one = [HostDemand("a", "b", l1, l2)]
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, {}, one, nic_bps=1.0)
    assert err.value.reason == "unknown or zero capacity of a fabric link"
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, fab.capacity, one, nic_bps={"a": 1.0})
    assert (err.value.field, err.value.reason) == ("nic_bps[b]", "no NIC speed for this host")
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, fab.capacity, one, nic_bps=float("inf"))
    assert (err.value.field, err.value.reason) == (
        "nic_bps[a]",
        "must be a positive finite rate, got inf",
    )
    ghost = [HostDemand("a", "b", l1, 0xDEAD)]
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, fab.capacity, ghost, nic_bps=1.0)
    assert (err.value.field, err.value.reason) == ("demands[0].dst_leaf", "dead not in graph")
    moved = [HostDemand("a", "b", l1, l2), HostDemand("c", "b", l1, l1)]
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, fab.capacity, moved, nic_bps=1.0)
    assert (err.value.field, err.value.reason) == (
        "demands[1].dst_leaf",
        "host 'b' is attached to two leaves",
    )


def test_tiny_but_positive_rates_are_rates() -> None:
    fab = leaf_spine(1, 2, capacity_bps=0.5)
    demands = [HostDemand("a", "b", fab.dpid("leaf1"), fab.dpid("leaf2"))]
    assert max_concurrent_throughput(
        fab.graph, fab.capacity, demands, nic_bps=0.25
    ) == pytest.approx(0.25)


def test_traffic_into_one_leaf_is_held_by_its_downlinks() -> None:
    # leaf1 and leaf2 both send to leaf3 (2 x 20 Mbit/s of downlinks between
    # them), leaf3 sends to leaf1: 40 + 40, whatever the (fast) NICs.
    flows = [tcp((1, 1), (3, 1)), tcp((2, 1), (3, 2)), tcp((3, 1), (1, 1))]
    assert bound(flows, leaves=3, hosts_per_leaf=2, nic_bps=100 * MBIT) == pytest.approx(80)


def test_traffic_out_of_one_leaf_is_held_by_its_uplinks() -> None:
    # The mirror image: leaf3 sends to leaf1 and leaf2 (2 x 20 Mbit/s of uplinks
    # between them), leaf1 sends to leaf3: 40 + 40.
    flows = [tcp((3, 1), (1, 1)), tcp((3, 2), (2, 1)), tcp((1, 1), (3, 1))]
    assert bound(flows, leaves=3, hosts_per_leaf=2, nic_bps=100 * MBIT) == pytest.approx(80)


def test_the_bound_stays_an_upper_bound_where_no_relaxation_is_tight() -> None:
    # leaf1 sends two flows out and receives two: 40 out + 40 in = 80 at best.
    # No max-flow relaxation sees both of leaf1's cuts at once (that needs a
    # linear program); the bound must still not fall below the truth.
    flows = [tcp((1, 1), (2, 1)), tcp((1, 2), (3, 1)), tcp((2, 1), (1, 1)), tcp((3, 1), (1, 2))]
    assert 80 <= bound(flows, leaves=3, hosts_per_leaf=2, nic_bps=100 * MBIT) <= 120


def test_traffic_sharing_a_link_between_tiers_gets_that_link_once() -> None:
    # Two pods of two leaves, one aggregation switch each, one spine: both flows
    # cross agg1-1 -> spine1 -> agg2-1, 10 Mbit/s, whichever leaves they join.
    fab = three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=1, spines=1, capacity_bps=10 * MBIT)
    demands = [
        HostDemand("a", "b", fab.dpid("leaf1-1"), fab.dpid("leaf2-1")),
        HostDemand("c", "d", fab.dpid("leaf1-2"), fab.dpid("leaf2-2")),
    ]
    bound = max_concurrent_throughput(fab.graph, fab.capacity, demands, nic_bps=100 * MBIT)
    assert bound == pytest.approx(10 * MBIT)


def test_slow_nics_hold_their_own_flows_whatever_else_could_be_matched() -> None:
    # Each flow has one 1 Mbit/s end: 3 in all, although fast senders and fast
    # receivers sit on the same leaves (a relaxation that pairs them wrongly
    # would find ~40).
    fab = leaf_spine(2, 4, capacity_bps=20 * MBIT)
    l1, l2, l3, l4 = (fab.dpid(f"leaf{i}") for i in (1, 2, 3, 4))
    demands = [
        HostDemand("a", "b", l1, l3),  # a fast, b slow
        HostDemand("c", "d", l1, l2),  # c slow, d fast
        HostDemand("e", "f", l4, l2),  # e fast, f slow
    ]
    nics = {"a": 100 * MBIT, "b": MBIT, "c": MBIT, "d": 100 * MBIT, "e": 100 * MBIT, "f": MBIT}
    bound = max_concurrent_throughput(fab.graph, fab.capacity, demands, nic_bps=nics)
    assert bound == pytest.approx(3 * MBIT)
