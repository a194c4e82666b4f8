"""Local repair's bounce: which hops bounce, and the always-live group they watch.

Guards :data:`controller.flowprog.repair.ALWAYS_LIVE` (built the same every
time, an INDIRECT group of one unwatched, empty bucket, named by its content,
so a bucket watching it is live whatever port fails) and the bounce decision
of :func:`controller.flowprog.flowrules.compile_path`: a switch without edge
ports (a spine) bounces its hop into the egress switch, installed after the
always-live group; a switch with hosts on it never bounces.
"""

from __future__ import annotations

from collections.abc import Sequence

from synthetic import leaf_spine

from controller.devtools.fakeoftable import FakeFabric, WalkResult
from controller.fabric.model import Dpid, LinkId, Path, PortNo, PortRef
from controller.flowprog import repair
from controller.flowprog.entries import (
    Bucket,
    FlowEntry,
    GroupAction,
    GroupEntry,
    GroupType,
    Match,
    Output,
)
from controller.flowprog.flowrules import compile_path
from controller.flowprog.groups import group_id_for
from controller.flowprog.plan import FlowAdd, GroupAdd
from controller.flowprog.tables import OwnerNeeds

MATCH = Match.of(eth_type=0x0800, ipv4_dst="10.0.9.1")
PACKET: dict[str, int | str] = {"eth_type": 0x0800, "ipv4_src": "10.0.1.1", "ipv4_dst": "10.0.9.1"}
HOST_PORT = 9


def install(fake: FakeFabric, needs: OwnerNeeds, order: Sequence[Dpid]) -> None:
    """Each switch's groups (in the order given), then its flows."""
    for dpid in order:
        ops = [GroupAdd(g) for g in needs.groups.get(dpid, ())]
        fake.apply_ops(dpid, [*ops, *(FlowAdd(e) for e in needs.flows.get(dpid, ()))])


def hosts_on(*switches: Dpid) -> dict[Dpid, tuple[PortNo, ...]]:
    return {d: (HOST_PORT,) for d in switches}


def test_the_always_live_group_is_one_unwatched_empty_bucket_named_by_its_content() -> None:
    for group in (repair.ALWAYS_LIVE, repair._always_live()):
        assert group == repair.ALWAYS_LIVE  # every build, owner and restart agree
        assert group.type is GroupType.INDIRECT
        assert group.buckets == (Bucket(actions=()),)
        assert group.group_id == group_id_for(GroupType.INDIRECT, group.buckets)


def test_a_bucket_watching_the_always_live_group_stays_live_whatever_port_fails() -> None:
    a = 1
    fake = FakeFabric(switches=[a])
    live = repair.ALWAYS_LIVE
    bounce = GroupEntry(
        7,
        GroupType.FAST_FAILOVER,
        (
            Bucket(actions=(Output(1),), watch_port=1),
            Bucket(actions=(Output(2),), watch_group=live.group_id),
        ),
    )
    entry = FlowEntry(1, Match.of(eth_type=0x0800), (GroupAction(7),), cookie=0)
    fake.apply_ops(a, [GroupAdd(live), GroupAdd(bounce), FlowAdd(entry)])
    assert fake.walk(a, 5, PACKET).delivered == {PortRef(a, 1)}
    fake.down.update({PortRef(a, 1), PortRef(a, 3), PortRef(a, 5)})
    assert fake.walk(a, 5, PACKET).delivered == {PortRef(a, 2)}


def test_a_spine_bounces_its_last_hop_back_when_that_link_fails() -> None:
    fab = leaf_spine(2, 2)
    names = ("leaf1", "spine1", "leaf2")
    hops = tuple(fab.dpid(n) for n in names)
    path = Path(hops, (fab.link("leaf1", "spine1"), fab.link("spine1", "leaf2")))
    leaves = hosts_on(fab.dpid("leaf1"), fab.dpid("leaf2"))
    rules = compile_path(
        [MATCH],
        cookie=1,
        path=path,
        egress_port=HOST_PORT,
        idle_timeout=0,
        host_facing=lambda d: bool(leaves.get(d, ())),
    )
    spine = fab.dpid("spine1")
    assert rules.needs.groups[spine][0] == repair.ALWAYS_LIVE  # watched, so installed first
    links = [lid for _, _, lid in fab.graph.edges(data="link")]
    fake = FakeFabric(switches=fab.names, links=links)
    install(fake, rules.needs, rules.egress_first)
    leaf1 = fab.dpid("leaf1")
    assert fake.walk(leaf1, HOST_PORT, PACKET).only_to(PortRef(fab.dpid("leaf2"), HOST_PORT))
    # A bounced packet comes back tagged; here leaf1 hands tagged packets to a port we watch.
    watch = FlowEntry(repair.PRIO_TAGGED, Match.of(vlan_vid=repair.TAG), (Output(77),), cookie=0)
    fake.apply_ops(leaf1, [FlowAdd(watch)])
    fake.down.add(fab.link("spine1", "leaf2").src)
    res: WalkResult = fake.walk(leaf1, HOST_PORT, PACKET)
    assert res.delivered == {PortRef(leaf1, 77)}
    (back,) = res.terminals
    assert back.switches == (leaf1, spine, leaf1) and back.tagged and res.max_bounces == 1


def test_a_switch_with_hosts_never_bounces() -> None:
    a, b, c = 1, 2, 3  # a chain of three leaves: b is a transit switch with hosts
    ab, bc = LinkId(PortRef(a, 1), PortRef(b, 1)), LinkId(PortRef(b, 2), PortRef(c, 1))
    links = [ab, bc, LinkId(ab.dst, ab.src), LinkId(bc.dst, bc.src)]
    edge = hosts_on(a, b, c)
    rules = compile_path(
        [MATCH],
        cookie=1,
        path=Path((a, b, c), (ab, bc)),
        egress_port=HOST_PORT,
        idle_timeout=0,
        host_facing=lambda d: bool(edge.get(d, ())),
    )
    assert not any(rules.needs.groups.values())
    fake = FakeFabric(switches=[a, b, c], links=links)
    install(fake, rules.needs, rules.egress_first)
    assert fake.walk(a, HOST_PORT, PACKET).only_to(PortRef(c, HOST_PORT))
    fake.down.add(bc.src)
    res = fake.walk(a, HOST_PORT, PACKET)
    assert res.dropped and res.max_bounces == 0
    assert not any(t.tagged for t in res.terminals)
    assert all(t.switches == (a, b) for t in res.terminals)  # dropped at b, never sent back
