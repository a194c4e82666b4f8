"""Sets degraded in place: a leaf that lost uplinks (a spine gone, a cable cut, an
uplink drained) keeps every route and moves only the lost ports' buckets.

Before, the leaf's next hops towards every destination made a new set under a
new name: every host route of the leaf rewritten (1,022 at 64 x 512) and a
new set of up to 513 spread entries beside the old one, on every leaf when a
spine went: about a million operations for one spine.
"""

from __future__ import annotations

from collections import Counter

import pytest
from enginelab import EngineLab, LabHost
from synthetic import leaf_spine

from controller.fabric.model import LinkId, Port, PortRef
from controller.fabric.topology import Topology
from controller.flowprog import forwarding
from controller.flowprog.entries import FlowEntry
from controller.flowprog.forwarding import PRIO_HOST
from controller.flowprog.spread import (
    PRIO_SPREAD,
    PRIO_SPREAD_MOVED,
    SPREAD_TABLE,
    bucket_ports,
    compile_set,
    degraded_set,
    derived_set,
    next_hop_set,
)


@pytest.mark.parametrize("n", [3, 4, 8, 64])
def test_a_degraded_set_is_named_as_its_parent_and_moves_only_the_lost_buckets(n: int) -> None:
    parent = next_hop_set(range(1, n + 1), weights=None, distance=2, dpid=7)
    assert parent is not None
    kept = [p for p in parent.ports if p != 2]
    child = degraded_set(parent, kept)
    assert child is not None and child.parent is parent and child.in_place
    assert child.set_id == parent.set_id
    # The very tuple: a route by it is the route by the parent (its entries are kept).
    assert child.route_actions() is parent.route_actions()
    variant = derived_set(parent, kept)  # the same buckets under a name of its own
    assert variant is not None and variant.set_id != parent.set_id
    assert bucket_ports(child) == bucket_ports(variant)
    moved = [b for b, p in enumerate(bucket_ports(parent)) if p == 2]
    entries, _ = compile_set(child, cookie=1)
    assert len(entries) == 2 * len(moved) + 1  # UDP and TCP per moved bucket, other traffic
    parent_entries, _ = compile_set(parent, cookie=1)
    for entry in entries:  # exactly the parent's name, above the parent's own entries
        assert entry.match.as_dict()["metadata"] == parent.set_id
        assert entry.priority > min(e.priority for e in parent_entries)
    assert {e.priority for e in entries if e.match.as_dict().get("udp_src")} == {PRIO_SPREAD_MOVED}
    assert {e.priority for e in parent_entries if e.match.as_dict().get("udp_src")} == {PRIO_SPREAD}


def host_routes(lab: EngineLab, leaf: str) -> dict[object, FlowEntry]:
    flows = lab.fake.switches[lab.dpid(leaf)].flows
    return {k: e for k, e in flows.items() if e.table_id == 0 and e.priority == PRIO_HOST}


def spread_entries(lab: EngineLab, leaf: str) -> int:
    flows = lab.fake.switches[lab.dpid(leaf)].flows.values()
    return sum(1 for e in flows if e.table_id == SPREAD_TABLE)


def pairs(lab: EngineLab) -> list[tuple[LabHost, LabHost]]:
    hosts = lab.hosts
    return [(a, b) for a in hosts for b in hosts if a.port.dpid != b.port.dpid][::7]


def spine_back(lab: EngineLab, spine: int) -> None:
    """``spine`` connects again and its cables are discovered."""
    lab.connect(spine)
    for cable in lab.fake.links:
        if spine in (cable.src.dpid, cable.dst.dpid):
            lab.lldp(cable)
    lab.tick()


def test_a_lost_spine_rewrites_no_route_and_moves_only_its_buckets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = EngineLab(leaf_spine(8, 5)).ready()
    leaves = [f"leaf{i}" for i in range(1, 6)]
    routes = {leaf: host_routes(lab, leaf) for leaf in leaves}
    entries = {leaf: spread_entries(lab, leaf) for leaf in leaves}
    ports = range(0, 65536, 997)
    before = {
        (a.ip, b.ip, p): lab.send(a, b, udp_src=p).paths for a, b in pairs(lab) for p in ports
    }
    spine1 = lab.dpid("spine1")
    mods = lab.fake.mods()
    built = lab.engine.net._forwarding._built
    segments = {leaf: dict(built[lab.dpid(leaf)].segments) for leaf in leaves}

    made: list[object] = []  # entries towards a destination made again (not kept)
    route_entries = forwarding.route_entries
    monkeypatch.setattr(forwarding, "route_entries", lambda *a: made.append(a) or route_entries(*a))

    lab.disconnect(spine1)

    assert made == []  # every leaf's entries were kept as they were
    monkeypatch.undo()
    done = lab.fake.mods() - mods
    for leaf in leaves:
        assert host_routes(lab, leaf) == routes[leaf]  # no route rewritten
        # ... nor made again: the leaf's entries towards each other leaf are kept.
        now, me = built[lab.dpid(leaf)].segments, lab.dpid(leaf)
        kept = [now[d] is entries_to for d, entries_to in segments[leaf].items() if d != me]
        assert len(kept) == len(leaves) - 1 and all(kept)
        # 32 buckets over 8 spines: spine1's 4 go to 4 other spines, for UDP and TCP.
        assert spread_entries(lab, leaf) == entries[leaf] + 2 * 4 + 1
    # Nothing else on a leaf: local repair's return entries keep the lost port in
    # their failover chains (skipped while it is down). The lab applies every program
    # twice. Renamed, the set cost each leaf its 8 host routes, a new set's 65 spread
    # entries and its 7 return entries, and the old set's 65 deleted (800 flow adds
    # and 660 deletes here).
    assert done["FlowAdd"] == 2 * 5 * (2 * 4 + 1)
    assert done.get("FlowDelete", 0) == 0
    for a, b in pairs(lab):
        for p in ports:
            res = lab.send(a, b, udp_src=p)
            assert res.only_to(b.port), res.terminals
            ((path,),) = [res.paths]
            assert spine1 not in path
            (was,) = before[(a.ip, b.ip, p)]
            if spine1 not in was:
                assert path == was  # a flow that did not use the lost spine keeps its path
    assert lab.undelivered() == []

    spine_back(lab, spine1)
    for leaf in leaves:
        assert spread_entries(lab, leaf) == entries[leaf]  # the moved buckets are gone
        assert host_routes(lab, leaf) == routes[leaf]
    after = {(a.ip, b.ip, p): lab.send(a, b, udp_src=p).paths for a, b in pairs(lab) for p in ports}
    assert after == before


def test_a_leaf_that_loses_an_uplink_keeps_its_routes() -> None:
    lab = EngineLab(leaf_spine(4, 4)).ready()
    routes = host_routes(lab, "leaf2")
    lab.set_cable("leaf2", "spine3", up=False)
    assert host_routes(lab, "leaf2") == routes
    assert lab.undelivered() == []


def test_the_topology_remembers_lost_uplinks_while_their_ports_exist() -> None:
    topo = Topology()
    leaf, spine, other = 1, 2, 3

    def ports(*numbers: int) -> list[Port]:
        return [Port(n, f"p{n}", "02:00:00:00:00:01", up=True) for n in numbers]

    topo.switch_up(leaf, name="leaf", ports=ports(1, 2, 9), now=0)
    topo.switch_up(spine, name="spine", ports=ports(1, 2), now=0)
    topo.switch_up(other, name="leaf2", ports=ports(1, 9), now=0)
    for a, b in ((PortRef(leaf, 1), PortRef(spine, 1)), (PortRef(other, 1), PortRef(spine, 2))):
        topo.lldp_seen(tx=a, rx=b, now=0)
        topo.lldp_seen(tx=b, rx=a, now=0)
    assert topo.lost_uplinks(leaf) == () and topo.uplinks_lacking(leaf) == frozenset()
    up, down = (
        LinkId(PortRef(leaf, 1), PortRef(spine, 1)),
        LinkId(PortRef(spine, 2), PortRef(other, 1)),
    )
    topo.set_drained(up, True)
    topo.set_drained(down, True)  # a spine's link down to a leaf is no uplink
    assert topo.uplinks_lacking(leaf) == {1} and topo.uplinks_lacking(spine) == frozenset()
    topo.set_drained(up, False)
    topo.set_drained(down, False)

    topo.switch_down(spine, now=1)  # its links go: the leaves' ports to it were uplinks
    assert topo.lost_uplinks(leaf) == ((1, spine),) and topo.lost_uplinks(other) == ((1, spine),)
    assert topo.uplinks_lacking(leaf) == {1}
    assert topo.lost_uplinks(spine) == ()  # its ports faced leaves, not uplinks

    topo.switch_up(spine, name="spine", ports=ports(1, 2), now=2)
    topo.lldp_seen(tx=PortRef(leaf, 1), rx=PortRef(spine, 1), now=2)
    assert topo.lost_uplinks(leaf) == ()  # a link again
    topo.port_deleted(other, 1, now=3)
    assert topo.lost_uplinks(other) == ()  # the port is gone
    topo.port_update(leaf, Port(1, "p1", "02:00:00:00:00:01", up=False), now=4)
    assert topo.lost_uplinks(leaf) == ((1, spine),)  # cut at the leaf: still its uplink
    topo.port_update(leaf, Port(1, "p1", "02:00:00:00:00:01", up=True), now=5)
    topo.lldp_seen(tx=PortRef(spine, 1), rx=PortRef(leaf, 1), now=5)
    topo.switch_down(leaf, now=6)
    assert topo.lost_uplinks(leaf) == ()  # forgotten with the switch
    assert topo.lost_uplinks(spine) == ()  # and the spine's port faced a leaf, no uplink


def test_a_restored_lost_uplink_is_trusted_as_fabric_only_while_it_stayed_up() -> None:
    """After a restart the store lists a leaf's lost uplinks. One whose port is up
    carried a link since it came up: no host's port. One whose port is down now
    went down since: whatever is plugged in when it comes up may be a host."""
    topo = Topology()
    leaf, spine = 1, 2
    topo.switch_up(
        leaf,
        name="leaf",
        ports=[
            Port(1, "p1", "02:00:00:00:00:01", up=True),
            Port(2, "p2", "02:00:00:00:00:02", up=False),
            Port(9, "p9", "02:00:00:00:00:09", up=True),
        ],
        now=0,
    )
    topo.restore_lost_uplinks(leaf, [(1, spine), (2, spine), (7, spine)])
    assert topo.lost_uplinks(leaf) == ((1, spine), (2, spine))  # port 7 does not exist
    assert topo.was_fabric(PortRef(leaf, 1)) and not topo.was_fabric(PortRef(leaf, 2))
    assert not topo.was_fabric(PortRef(leaf, 9))  # never an uplink
    topo.port_update(leaf, Port(2, "p2", "02:00:00:00:00:02", up=True), now=1)
    assert not topo.was_fabric(PortRef(leaf, 2))  # came up: a new port
    topo.port_update(leaf, Port(1, "p1", "02:00:00:00:00:01", up=False), now=2)
    topo.port_update(leaf, Port(1, "p1", "02:00:00:00:00:01", up=True), now=3)
    assert not topo.was_fabric(PortRef(leaf, 1))  # flapped: a new port too


def test_after_a_cut_cable_a_lost_spine_rewrites_no_route_and_deletes_no_entry() -> None:
    """leaf1's cable to spine2 is cut: every other leaf reaches leaf1 by a set derived
    without spine2. spine1 is then lost: that set keeps its name (spine1 is lacking
    towards every destination), so no route changes and nothing is deleted; its
    moved buckets and the degraded parent's are the whole change. Renamed, the set
    cost each other leaf its 2 routes towards leaf1, a new set (its chains, its
    moved buckets and other traffic) and the old set's entries and groups deleted."""
    lab = EngineLab(leaf_spine(8, 5)).ready()
    leaves = [f"leaf{i}" for i in range(1, 6)]
    lab.set_cable("leaf1", "spine2", up=False)
    lab.tick()
    routes = {leaf: host_routes(lab, leaf) for leaf in leaves}
    mods = lab.fake.mods()
    spine1, spine2 = lab.dpid("spine1"), lab.dpid("spine2")

    per_leaf = {leaf: Counter(lab.fake.switches[lab.dpid(leaf)].mods) for leaf in leaves}
    lab.disconnect(spine1)

    done = lab.fake.mods() - mods
    assert done.get("FlowDelete", 0) == 0 and done.get("FlowModify", 0) == 0
    for leaf in leaves:
        assert host_routes(lab, leaf) == routes[leaf]  # no route rewritten
    for leaf in leaves[1:]:
        # 32 buckets over 8 spines: spine1's 4 move, for UDP and TCP, in the set towards
        # leaf1 (its buckets moved off spine2 stay where they went) and in the set
        # degraded in place, each with its other traffic's entry; applied twice. No
        # class trap on the port to spine1 (a lost uplink), no failover chain for
        # the degraded set (its parent's), no group deleted but the renamed SELECT.
        done_here = Counter(lab.fake.switches[lab.dpid(leaf)].mods) - per_leaf[leaf]
        assert done_here["FlowAdd"] == 2 * 2 * (2 * 4 + 1), (leaf, done_here)
        assert done_here["GroupDelete"] == 1, (leaf, done_here)
    for a, b in pairs(lab):
        for p in range(0, 65536, 997):
            res = lab.send(a, b, udp_src=p)
            assert res.only_to(b.port), res.terminals
            ((path,),) = [res.paths]
            assert spine1 not in path
            if b.port.dpid == lab.dpid("leaf1") or a.port.dpid == lab.dpid("leaf1"):
                assert spine2 not in path
    assert lab.undelivered() == []

    spine_back(lab, spine1)
    for leaf in leaves:
        assert host_routes(lab, leaf) == routes[leaf]
    assert lab.undelivered() == []
