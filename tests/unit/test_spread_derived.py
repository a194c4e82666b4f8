"""Derived next-hop sets: a leaf's route towards the leaf behind a lost link uses its
full set less one spine, expressed as a handful of entries over the full set's.

Before, each such route got a fresh set (up to 256 buckets x 2 protocols, plus a
failover chain per port) on every leaf of the fabric: 298,392 operations at
64 x 512 for one lost uplink, and every default flow towards that leaf rehashed.
"""

from __future__ import annotations

from collections import Counter

import pytest
from enginelab import EngineLab, LabHost
from synthetic import leaf_spine

from controller.flowprog.entries import GroupType
from controller.flowprog.spread import (
    MAX_DERIVED_OVERLOAD,
    SPREAD_TABLE,
    bucket_ports,
    compile_set,
    degraded_set,
    derived_set,
    next_hop_set,
)


def full_set(n: int, dpid: int = 7):  # type: ignore[no-untyped-def]
    hs = next_hop_set(range(1, n + 1), weights=None, distance=2, dpid=dpid)
    assert hs is not None
    return hs


@pytest.mark.parametrize("n", [3, 4, 8, 16, 31, 48, 64])
def test_a_derived_set_moves_only_the_buckets_of_the_lost_port(n: int) -> None:
    parent = full_set(n)
    lost = 2
    child = derived_set(parent, [p for p in parent.ports if p != lost])
    assert child is not None and child.parent is parent
    before, after = bucket_ports(parent), bucket_ports(child)
    moved = [b for b, (x, y) in enumerate(zip(before, after, strict=True)) if x != y]
    assert moved == [b for b, p in enumerate(before) if p == lost]  # no other bucket moves
    assert lost not in after
    counts = Counter(after)
    assert max(counts.values()) * len(child.ports) <= MAX_DERIVED_OVERLOAD * child.buckets
    if len(moved) <= len(child.ports):  # spread over as many ports as there are buckets
        assert len({after[b] for b in moved}) == len(moved)
    entries, groups = compile_set(child, cookie=1)
    assert len(entries) == 2 * len(moved) + 1  # UDP and TCP per moved bucket, other traffic
    assert len(groups) == len({after[b] for b in moved}) + 1  # their chains, one SELECT
    parent_entries, _ = compile_set(parent, cookie=1)
    assert child.set_id != parent.set_id
    for entry in parent_entries:  # the parent's entries serve the derived set's metadata
        value, mask = entry.match.as_dict()["metadata"]  # type: ignore[misc]
        assert child.set_id & mask == value & mask


def test_sets_that_are_not_a_few_ports_less_are_not_derived() -> None:
    parent = full_set(8)
    assert derived_set(parent, parent.ports) is None  # not a strict subset
    assert derived_set(parent, [1, 2, 3, 4, 5, 9]) is None  # a port the parent lacks
    assert derived_set(parent, [1, 2, 3, 4, 5]) is None  # more than a quarter gone
    assert derived_set(parent, [1, 2, 3, 4, 5, 6]) is not None  # two of eight: a quarter
    assert derived_set(full_set(2), [1]) is None  # one port is a plain output


def leaf_hosts(lab: EngineLab, leaf: str) -> list[LabHost]:
    return [h for h in lab.hosts if h.port.dpid == lab.dpid(leaf)]


def spread_entries(lab: EngineLab, leaf: str) -> int:
    flows = lab.fake.switches[lab.dpid(leaf)].flows.values()
    return sum(1 for e in flows if e.table_id == SPREAD_TABLE)


def test_a_lost_uplink_costs_other_leaves_a_few_entries_and_keeps_their_flows() -> None:
    lab = EngineLab(leaf_spine(8, 5)).ready()
    src, (dst, *_) = leaf_hosts(lab, "leaf3")[0], leaf_hosts(lab, "leaf1")
    ports = range(256)
    path_before = {p: lab.send(src, dst, udp_src=p).paths for p in ports}
    entries_before = spread_entries(lab, "leaf3")
    spine1 = lab.dpid("spine1")

    lab.set_cable("leaf1", "spine1", up=False)

    # 32 buckets over 8 spines: spine1's 4 go to 4 other spines, for UDP and TCP.
    assert spread_entries(lab, "leaf3") == entries_before + 2 * 4 + 1
    for p in ports:
        res = lab.send(src, dst, udp_src=p)
        assert res.only_to(dst.port), res.terminals
        (path,) = res.paths
        assert spine1 not in path
        (was,) = path_before[p]
        if spine1 not in was:
            assert path == was  # a flow that did not use the lost spine keeps its path
    assert lab.undelivered() == []

    lab.set_cable("leaf1", "spine1", up=True)
    lab.tick()
    assert spread_entries(lab, "leaf3") == entries_before  # the derived set is gone
    assert {p: lab.send(src, dst, udp_src=p).paths for p in ports} == path_before


def test_ports_lacking_everywhere_do_not_name_a_derived_set() -> None:
    """A derived set is named by its ports and those its switch lacks towards every
    destination: losing such a port besides (a spine, after a cable further on was
    cut) keeps the name, the content follows the ports it has."""
    parent = full_set(8)
    cut = derived_set(parent, [p for p in parent.ports if p != 3])
    both = derived_set(parent, [p for p in parent.ports if p not in (3, 5)], lacking=[5])
    assert cut is not None and both is not None
    assert both.set_id == cut.set_id and both.ports == (1, 2, 4, 6, 7, 8)
    assert 5 not in bucket_ports(both) and 3 not in bucket_ports(both)
    assert both.route_actions() is cut.route_actions()  # routes keep their entries
    unnamed = derived_set(parent, both.ports)  # the same ports, none lacking everywhere
    assert unnamed is not None and unnamed.set_id != cut.set_id
    other = derived_set(parent, [p for p in parent.ports if p not in (4, 5)], lacking=[5])
    assert other is not None and other.set_id not in (cut.set_id, parent.set_id)
    # A bucket moved off port 3 stays where it went unless that was port 5; the
    # chains go round the same ports as before (5 is passed by while down): every
    # entry of the cut set's stays but those to port 5 and the other traffic's.
    was, now = bucket_ports(cut), bucket_ports(both)
    assert all(now[b] == port for b, port in enumerate(was) if port != 5)
    cut_entries, cut_groups = compile_set(cut, cookie=1)
    both_entries, both_groups = compile_set(both, cookie=1)
    to_five = sum(1 for b, port in enumerate(was) if port == 5 and bucket_ports(parent)[b] == 3)
    assert len(set(cut_entries) - set(both_entries)) == 2 * to_five + 1
    ff = [g for g in both_groups if g.type is GroupType.FAST_FAILOVER]
    assert ff and all(len(g.buckets) == 7 for g in ff)  # round 1-8 less the cut port 3
    first = {g.buckets[0].watch_port: g for g in cut_groups if g.type is GroupType.FAST_FAILOVER}
    assert all(first.get(g.buckets[0].watch_port, g) == g for g in ff)  # the same chains
    assert any(g.buckets[0].watch_port in first for g in ff)


def test_a_degraded_set_fails_over_by_its_parents_chains() -> None:
    parent = full_set(8)
    degraded = degraded_set(parent, [p for p in parent.ports if p != 5])
    assert degraded is not None
    _, groups = compile_set(degraded, cookie=1)
    _, parent_groups = compile_set(parent, cookie=1)
    chains = {g for g in groups if g.type is GroupType.FAST_FAILOVER}
    assert chains and chains <= set(parent_groups)  # no new chain for a lost spine
