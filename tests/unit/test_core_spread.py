"""Default traffic spreads by source-port bits in the spread table (issue 10, item 6).

Open vSwitch hashes OpenFlow 1.3 SELECT groups without L4 ports, so with
groups alone every UDP flow to one destination took one uplink. These tests
walk packets through the fake tables: each TCP/UDP packet must take exactly
one path, chosen by its source port, and the source ports must cover every
equal-cost path in proportion; a dead next hop must never blackhole a bucket.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import pytest
from enginelab import EngineLab, LabHost
from synthetic import Fabric, asymmetric, leaf_spine, three_tier

from controller.engine.engine import EngineConfig
from controller.fabric.model import Dpid
from controller.flowprog.entries import GotoTable, Output, WriteMetadata
from controller.flowprog.forwarding import PRIO_HOST
from controller.flowprog.plan import Program
from controller.flowprog.spread import (
    MAX_BUCKETS,
    MAX_OVERLOAD,
    SPREAD_TABLE,
    NextHopSet,
    bucket_count,
    bucket_ports,
    next_hop_set,
)
from controller.policy.model import Policy, Strategy

PORTS = range(256)  # source ports 0-255 cover every bucket window of up to 8 bits evenly


def spread_entries(lab: EngineLab, dpid: Dpid) -> int:
    return sum(1 for e in lab.fake.switches[dpid].flows.values() if e.table_id == SPREAD_TABLE)


def via(lab: EngineLab, src: LabHost, dst: LabHost, **fields: int) -> tuple[Dpid, ...]:
    """The one path a packet takes (asserting it is delivered exactly, on one path)."""
    res = lab.send(src, dst, **fields)
    assert res.only_to(dst.port), res.terminals
    (path,) = res.paths
    return path


def spread_of(lab: EngineLab, src: LabHost, dst: LabHost, proto: int = 17) -> Counter[tuple]:
    field = "udp_src" if proto == 17 else "tcp_src"
    extra = {} if proto == 17 else {"ip_proto": 6, "tcp_dst": 5201}
    return Counter(via(lab, src, dst, **extra, **{field: p}) for p in PORTS)


@pytest.mark.parametrize(
    ("fabric", "paths", "heaviest"),
    [
        (lambda: leaf_spine(2, 4), 2, 128),
        (lambda: leaf_spine(3, 6), 3, 96),  # 16 buckets over 3 spines: 6:5:5
        (lambda: leaf_spine(4, 8), 4, 64),
        (lambda: three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2), 8, 32),
    ],
)
@pytest.mark.parametrize("proto", [17, 6])
def test_each_flow_takes_one_path_and_source_ports_cover_every_path(
    fabric: Callable[[], Fabric], paths: int, heaviest: int, proto: int
) -> None:
    lab = EngineLab(fabric()).ready()
    src, dst = lab.hosts[0], lab.hosts[-1]
    used = spread_of(lab, src, dst, proto)
    assert len(used) == paths  # on 3-tier: leaf, aggregation and spine choose independently
    assert max(used.values()) == heaviest
    assert max(used.values()) <= MAX_OVERLOAD * len(PORTS) / paths


def test_flows_from_one_leaf_to_several_hosts_leave_by_several_spines() -> None:
    """The measured case: 4 UDP flows per leaf (random ephemeral source ports), each
    to a different host, 4 spines. With SELECT groups on Open vSwitch, one spine."""
    lab = EngineLab(leaf_spine(4, 4), hosts_per_leaf=4).ready()
    rng = random.Random(10)
    every: Counter[Dpid] = Counter()
    for leaf in lab.fabric.leaves:
        senders = [h for h in lab.hosts if lab.fabric.names[h.port.dpid] == leaf]
        others = [h for h in lab.hosts if h.port.dpid != senders[0].port.dpid]
        spines = Counter(
            via(lab, src, others[3 * i], udp_src=rng.randrange(32768, 61000))[1]
            for i, src in enumerate(senders)
        )
        assert len(spines) > 1, leaf
        every += spines
    assert len(every) == 4 and max(every.values()) <= 8


def test_other_traffic_keeps_the_select_group() -> None:
    lab = EngineLab(leaf_spine(3, 6)).ready()
    src, dst = lab.hosts[0], lab.hosts[-1]
    icmp = lab.send(src, dst, ip_proto=1)
    assert icmp.only_to(dst.port) and len(icmp.paths) == 3  # every bucket of the group


def test_a_dead_next_hop_moves_its_buckets_to_the_next_live_one() -> None:
    lab = EngineLab(leaf_spine(3, 6)).ready()
    dead = lab.cable("leaf1", "spine2")
    lab.fake.down |= {dead.src, dead.dst}  # the controller has not heard yet
    src = next(h for h in lab.hosts if h.port.dpid == dead.src.dpid)
    for dst in (h for h in lab.hosts if h.port.dpid != dead.src.dpid):
        used = spread_of(lab, src, dst)  # no live_select: failover chains, not the hash
        assert lab.dpid("spine2") not in {path[1] for path in used}
        assert len(used) == 2


def test_spread_table_size_depends_on_next_hop_sets_not_hosts() -> None:
    few = EngineLab(leaf_spine(4, 4), hosts_per_leaf=2).ready()
    many = EngineLab(leaf_spine(4, 4), hosts_per_leaf=8).ready()
    for lab in (few, many):
        for leaf in lab.fabric.leaves:
            assert spread_entries(lab, lab.dpid(leaf)) == 2 * 16 + 1  # UDP + TCP buckets, other
        for spine in lab.fabric.spines:
            assert spread_entries(lab, lab.dpid(spine)) == 0  # one next hop per leaf


def test_a_failed_link_changes_the_set_make_before_break() -> None:
    """Applied operation by operation, the change never leaves a packet without a way."""
    lab = EngineLab(leaf_spine(3, 3), hosts_per_leaf=1).ready()
    before = lab.fake.hashes()
    cut = lab.cable("leaf1", "spine2")
    lab.fake.down |= {cut.src, cut.dst}
    outs = [
        lab.engine.port_status(end.dpid, replace(port, up=False), deleted=False, now=lab.now)
        for end in (cut.src, cut.dst)
        for port in lab.ports[end.dpid]
        if port.port_no == end.port
    ]
    programs = [p for out in outs for p in out.programs]
    assert programs
    for program in programs:
        apply_stepwise(lab, program)
    leaf1 = cut.src.dpid
    for src in lab.hosts:
        for dst in lab.hosts:
            if src is not dst and leaf1 in (src.port.dpid, dst.port.dpid):
                assert all(
                    lab.dpid("spine2") not in via(lab, src, dst, udp_src=p) for p in range(8)
                )
    lab.fake.down -= {cut.src, cut.dst}
    lab.set_cable("leaf1", "spine2", up=True)
    lab.tick()
    lab.run_for(lab.net.config.warmup_s)
    assert lab.fake.hashes() == before  # sets and groups are named by their contents


def apply_stepwise(lab: EngineLab, program: Program) -> None:
    for phase in program.phases:
        for dpid, ops in phase.ops.items():
            for op in ops:
                lab.fake.apply_ops(dpid, [op])
                for src in lab.hosts:
                    for dst in lab.hosts:
                        for port in range(8):
                            res = lab.send(src, dst, udp_src=port, live_select=True)
                            assert src is dst or res.only_to(dst.port), (op, res.terminals)


def test_drained_uplinks_take_no_buckets_while_alternatives_exist() -> None:
    lab = EngineLab(leaf_spine(2, 4)).ready()
    up, down = lab.cable("leaf1", "spine1"), lab.cable("spine1", "leaf1")
    lab.fake.apply(lab.net.set_drained([up, down], True, now=lab.now))
    leaf1 = [h for h in lab.hosts if h.port.dpid == up.src.dpid]
    far = [h for h in lab.hosts if h.port.dpid != up.src.dpid]
    for src, dst in [(leaf1[0], far[-1]), (far[-1], leaf1[0])]:
        assert {path[1] for path in spread_of(lab, src, dst)} == {lab.dpid("spine2")}
    assert len(spread_of(lab, far[0], far[-1])) == 2  # others still use both spines
    lab.fake.apply(lab.net.set_drained([up, down], False, now=lab.now))
    assert len(spread_of(lab, leaf1[0], far[-1])) == 2


def test_weighted_catch_all_gives_buckets_in_proportion() -> None:
    lab = EngineLab(asymmetric()).ready()
    policy = Policy(
        name="default",
        priority=0,
        strategy=Strategy.WEIGHTED,
        weights=(("spine1", 3.0), ("spine2", 1.0)),
    )
    lab.fake.apply(lab.net.set_catch_all(policy, now=lab.now))
    src = next(h for h in lab.hosts if lab.fabric.names[h.port.dpid] == "leaf1")
    dst = next(h for h in lab.hosts if lab.fabric.names[h.port.dpid] == "leaf2")
    by_spine = {lab.fabric.names[path[1]]: n for path, n in spread_of(lab, src, dst).items()}
    assert by_spine == {"spine1": 192, "spine2": 64}
    assert lab.undelivered() == []


def test_shortest_uses_one_path_and_no_spread_table() -> None:
    lab = EngineLab(leaf_spine(3, 6)).ready()
    policy = Policy(name="default", priority=0, strategy=Strategy.SHORTEST)
    lab.fake.apply(lab.net.set_catch_all(policy, now=lab.now))
    lab.run_for(lab.net.config.warmup_s)
    assert all(spread_entries(lab, d) == 0 for d in lab.fake.switches)
    assert len(spread_of(lab, lab.hosts[0], lab.hosts[-1])) == 1


def test_spread_off_leaves_routes_on_select_groups() -> None:
    lab = EngineLab(leaf_spine(3, 6), config=EngineConfig(spread_l4=False)).ready()
    assert all(spread_entries(lab, d) == 0 for d in lab.fake.switches)
    for sw in lab.fake.switches.values():
        for entry in sw.flows.values():
            assert not any(isinstance(a, WriteMetadata | GotoTable) for a in entry.actions)
    assert len(lab.send(lab.hosts[0], lab.hosts[-1]).paths) == 3


# ------------------------------------------------------------- bucket arithmetic
@pytest.mark.parametrize("n", range(2, 65))
def test_equal_next_hops_get_buckets_within_the_overload_bound(n: int) -> None:
    buckets = bucket_count([1] * n)
    assert buckets >= n and buckets & (buckets - 1) == 0 and buckets <= MAX_BUCKETS
    hs = next_hop_set(range(1, n + 1), weights=None, distance=2, dpid=7)
    assert isinstance(hs, NextHopSet) and hs.buckets == buckets
    counts = Counter(bucket_ports(hs))
    assert set(counts) == set(hs.ports)
    if buckets < MAX_BUCKETS:
        assert max(counts.values()) * n <= MAX_OVERLOAD * buckets
    assert max(counts.values()) - min(counts.values()) <= 1


def test_the_extra_buckets_rotate_with_the_switch() -> None:
    heavy = set()
    for dpid in range(3):
        hs = next_hop_set((1, 2, 3), weights=None, distance=2, dpid=dpid)
        assert hs is not None
        counts = Counter(bucket_ports(hs))
        heavy |= {p for p, c in counts.items() if c == max(counts.values())}
    assert heavy == {1, 2, 3}


def test_consecutive_hops_read_different_source_port_bits() -> None:
    shifts = set()
    for distance in (2, 3, 4):
        hs = next_hop_set((1, 2), weights=None, distance=distance, dpid=1)
        assert hs is not None
        shifts.add(hs.shift)
    assert len(shifts) == 3


def test_a_single_or_zero_weight_set_is_not_spread() -> None:
    assert next_hop_set((1,), weights=None, distance=2, dpid=1) is None
    assert next_hop_set((1, 2), weights={1: 5, 2: 0}, distance=2, dpid=1) is None


def test_a_metadata_id_clash_leaves_the_second_set_on_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Leaves of a 3-tier fabric have two sets (own pod, other pod); with every set
    named alike, the first keeps the spread table and the other its SELECT group."""
    monkeypatch.setattr(NextHopSet, "set_id", property(lambda self: 0xFA00000000000001))
    lab = EngineLab(three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2)).ready()
    assert lab.undelivered() == []
    leaf = lab.dpid("leaf1-1")
    assert spread_entries(lab, leaf) == 2 * 8 + 1  # 2 ports: 8 buckets
    kinds = {
        type(e.actions[0]).__name__
        for e in lab.fake.switches[leaf].flows.values()
        if e.priority == PRIO_HOST and e.actions and not isinstance(e.actions[0], Output)
    }
    assert kinds == {"WriteMetadata", "GroupAction"}
