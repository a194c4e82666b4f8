"""The throughput bound on hand-made fabrics whose answer is known."""

from __future__ import annotations

import pytest
from synthetic import Fabric, leaf_spine

from controller.errors import InvalidArgument
from controller.te.bound import HostDemand, max_concurrent_throughput

MBIT = 1e6


def flows(fab: Fabric, src: str, dst: str, n: int, *, tag: str = "") -> list[HostDemand]:
    return [
        HostDemand(f"{tag}{src}-h{i}", f"{tag}{dst}-h{i}", fab.dpid(src), fab.dpid(dst))
        for i in range(n)
    ]


def test_two_spines_of_20_mbit_carry_40_for_four_fat_flows() -> None:
    fab = leaf_spine(2, 2, capacity_bps=20 * MBIT)
    demands = flows(fab, "leaf1", "leaf2", 4)
    bound = max_concurrent_throughput(fab.graph, fab.capacity, demands, nic_bps=100 * MBIT)
    assert bound == pytest.approx(40 * MBIT)


def test_nic_limited_flows_get_their_nic_rate() -> None:
    fab = leaf_spine(2, 2, capacity_bps=20 * MBIT)
    demands = flows(fab, "leaf1", "leaf2", 4)
    bound = max_concurrent_throughput(fab.graph, fab.capacity, demands, nic_bps=5 * MBIT)
    assert bound == pytest.approx(20 * MBIT)
    nics = {d.src: 1 * MBIT for d in demands} | {d.dst: 100 * MBIT for d in demands}
    assert max_concurrent_throughput(
        fab.graph, fab.capacity, demands, nic_bps=nics
    ) == pytest.approx(4 * MBIT)


def test_a_failed_spine_halves_it() -> None:
    fab = leaf_spine(2, 2, capacity_bps=20 * MBIT)
    demands = flows(fab, "leaf1", "leaf2", 4)
    survivors = fab.graph_without(switches=["spine2"])
    bound = max_concurrent_throughput(survivors, fab.capacity, demands, nic_bps=100 * MBIT)
    assert bound == pytest.approx(20 * MBIT)


def test_shared_sender_nic_and_opposite_directions() -> None:
    fab = leaf_spine(2, 2, capacity_bps=20 * MBIT)
    one_sender = [
        HostDemand("a", "b", fab.dpid("leaf1"), fab.dpid("leaf2")),
        HostDemand("a", "c", fab.dpid("leaf1"), fab.dpid("leaf2")),
    ]
    bound = max_concurrent_throughput(fab.graph, fab.capacity, one_sender, nic_bps=10 * MBIT)
    assert bound == pytest.approx(10 * MBIT)  # one NIC feeds both flows
    # Links are directed: each direction has its own 40 Mbit/s; the pooled
    # relaxation alone would let traffic end on its own leaf (400 Mbit/s).
    both_ways = flows(fab, "leaf1", "leaf2", 2) + flows(fab, "leaf2", "leaf1", 2, tag="r")
    bound = max_concurrent_throughput(fab.graph, fab.capacity, both_ways, nic_bps=100 * MBIT)
    assert bound == pytest.approx(80 * MBIT)


def test_flows_within_a_leaf_only_meet_their_nics() -> None:
    fab = leaf_spine(2, 2, capacity_bps=20 * MBIT)
    local = flows(fab, "leaf1", "leaf1", 3)
    bound = max_concurrent_throughput(fab.graph, fab.capacity, local, nic_bps=100 * MBIT)
    assert bound == pytest.approx(300 * MBIT)


def test_bad_inputs_name_the_field() -> None:
    fab = leaf_spine(2, 2, capacity_bps=20 * MBIT)
    demands = flows(fab, "leaf1", "leaf2", 1)
    assert max_concurrent_throughput(fab.graph, fab.capacity, [], nic_bps=1.0) == 0.0
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, {}, demands, nic_bps=1.0)
    assert err.value.field.startswith("capacity[")
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, fab.capacity, demands, nic_bps={})
    assert err.value.field == f"nic_bps[{demands[0].src}]"
    moved = [demands[0], HostDemand(demands[0].src, "x", fab.dpid("leaf2"), fab.dpid("leaf1"))]
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, fab.capacity, moved, nic_bps=1.0)
    assert err.value.field == "demands[1].src_leaf"
    with pytest.raises(InvalidArgument) as err:
        max_concurrent_throughput(fab.graph, fab.capacity, demands, nic_bps=0.0)
    assert "positive" in err.value.reason
