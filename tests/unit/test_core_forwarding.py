"""Connectivity default forwarding, checked by walking packets through the fake tables.

Tests of the SELECT-group mechanism itself run on ``PLAIN`` (source-port
spreading and local repair off, the tables exactly as before those options);
the spread and the repair have tests of their own (test_core_spread.py,
test_core_repair.py), and every behaviour test here runs with the defaults.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from enginelab import EngineLab
from synthetic import Fabric, asymmetric, leaf_spine, three_tier

from controller.engine.engine import EngineConfig
from controller.fabric.model import Dpid
from controller.flowprog.classmatch import of_matches
from controller.flowprog.entries import GroupAction, GroupType, Output, ToController
from controller.flowprog.forwarding import PACKET_IN_METER, PRIO_HOST, PRIO_TRAP_BASE, ClassTrap
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy

PLAIN = EngineConfig(spread_l4=False, local_repair=False)

# A fabric whose switch names follow no naming scheme at all (one has no name).
ODD_NAMES = {"leaf1": "rack-7", "leaf2": "", "leaf3": "tor.b", "spine1": "core", "spine2": "x"}

FABRICS: dict[str, Callable[[], Fabric]] = {
    "2x4x2": lambda: leaf_spine(2, 4),
    "3x6x2": lambda: leaf_spine(3, 6),
    "3-tier": lambda: three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2),
    "odd-names": asymmetric,
}


def ready(fabric: Fabric, *, config: EngineConfig | None = None, **kw: object) -> EngineLab:
    """Started, every host learned, warm-up over."""
    lab = EngineLab(fabric, config=config, **kw)  # type: ignore[arg-type]
    lab.start()
    lab.learn_all()
    lab.run_for(lab.net.config.warmup_s)
    return lab


def uplinks(lab: EngineLab, leaf: str) -> list[int]:
    dpid = lab.dpid(leaf)
    return sorted(src.port for src in lab.fake.peer if src.dpid == dpid)


def host_routes(lab: EngineLab, dpid: Dpid) -> dict[str, tuple]:
    return {
        str(e.match.get("eth_dst")): e.actions
        for e in lab.fake.switches[dpid].flows.values()
        if e.priority == PRIO_HOST
    }


def leaf_group_ports(lab: EngineLab, leaf: str) -> list[list[int]]:
    """Output ports of the group each remote-host route on ``leaf`` uses (one list per route)."""
    dpid = lab.dpid(leaf)
    sw = lab.fake.switches[dpid]
    local = {h.mac for h in lab.hosts if h.port.dpid == dpid}
    out = []
    for mac, actions in sorted(host_routes(lab, dpid).items()):
        if mac in local:
            continue
        (act,) = actions
        assert isinstance(act, GroupAction), f"{mac} on {leaf}: {actions}"
        grp = sw.groups[act.group_id]
        assert grp.type is GroupType.SELECT
        for bucket in grp.buckets:
            (only,) = bucket.actions
            assert isinstance(only, Output) and bucket.watch_port == only.port
        out.append([b.watch_port for b in grp.buckets])
    return out


@pytest.mark.parametrize("name", FABRICS)
def test_every_host_reaches_every_other_host_exactly_at_its_port(name: str) -> None:
    lab = ready(FABRICS[name](), names=ODD_NAMES if name == "odd-names" else None)
    assert len(lab.net.topo.hosts) == len(lab.hosts)
    assert lab.undelivered() == []
    non_leaves = {lab.dpid(n) for n in lab.fabric.spines + lab.fabric.middles}
    for dpid in non_leaves:
        assert lab.net.topo.edge_ports(dpid) == []
        for entry in lab.fake.switches[dpid].flows.values():
            for act in entry.actions:
                if isinstance(act, Output):
                    assert (dpid, act.port) in {(r.dpid, r.port) for r in lab.fake.peer}


@pytest.mark.parametrize(("name", "paths"), [("2x4x2", 2), ("3x6x2", 3), ("3-tier", 8)])
def test_traffic_between_leaves_spreads_over_every_equal_cost_path(name: str, paths: int) -> None:
    lab = ready(FABRICS[name](), config=PLAIN)
    src, dst = lab.hosts[0], lab.hosts[-1]
    res = lab.send(src, dst)
    assert len(res.paths) == paths
    assert len({len(p) for p in res.paths}) == 1  # all equally short


def test_leaf_groups_hold_every_up_uplink_with_its_watch_port() -> None:
    lab = ready(leaf_spine(3, 6), config=PLAIN)
    for leaf in lab.fabric.leaves:
        groups = leaf_group_ports(lab, leaf)
        assert groups and all(ports == uplinks(lab, leaf) for ports in groups)
        assert len(lab.fake.switches[lab.dpid(leaf)].groups) == 1  # one shared ECMP group


def test_spines_forward_each_host_to_its_leaf() -> None:
    lab = ready(leaf_spine(3, 6), config=PLAIN)
    for spine in lab.fabric.spines:
        sdpid = lab.dpid(spine)
        routes = host_routes(lab, sdpid)
        for host in lab.hosts:
            leaf = lab.fabric.names[host.port.dpid]
            assert routes[host.mac] == (Output(lab.cable(spine, leaf).src.port),)


def test_a_failed_link_shrinks_the_groups_and_its_return_restores_them() -> None:
    lab = ready(leaf_spine(3, 6), config=PLAIN)
    before = lab.fake.hashes()
    cable = lab.cable("leaf1", "spine1")
    lab.set_cable("leaf1", "spine1", up=False)
    assert all(
        ports == [p for p in uplinks(lab, "leaf1") if p != cable.src.port]
        for ports in leaf_group_ports(lab, "leaf1")
    )
    leaf1_hosts = [h for h in lab.hosts if h.port.dpid == cable.src.dpid]
    assert lab.undelivered() == []
    for other in lab.hosts:
        if other.port.dpid != cable.src.dpid:
            paths = lab.send(other, leaf1_hosts[0]).paths
            assert paths and all(lab.dpid("spine1") not in p for p in paths)
    lab.advance(1.0)
    lab.set_cable("leaf1", "spine1", up=True)
    lab.advance(lab.net.config.lldp_interval_s)
    lab.tick()
    assert all(ports == uplinks(lab, "leaf1") for ports in leaf_group_ports(lab, "leaf1"))
    assert lab.undelivered() == []
    lab.run_for(lab.net.config.warmup_s)
    assert lab.fake.hashes() == before  # same group ids: contents name the group


def test_watch_ports_let_the_data_plane_skip_a_dead_uplink_before_the_controller_knows() -> None:
    lab = ready(leaf_spine(2, 4), config=PLAIN)
    dead = lab.cable("leaf1", "spine2")
    lab.fake.down |= {dead.src, dead.dst}  # the controller has not heard yet
    leaf1 = [h for h in lab.hosts if h.port.dpid == dead.src.dpid]
    others = [h for h in lab.hosts if h.port.dpid != dead.src.dpid]
    for src in leaf1:
        for dst in others:
            assert lab.send(src, dst, live_select=True).only_to(dst.port)
            assert lab.send(src, dst).dropped  # a hash onto the dead bucket would be lost


def test_a_switch_going_down_is_routed_around() -> None:
    lab = ready(leaf_spine(3, 6))
    spine = lab.dpid("spine2")
    lab.disconnect(spine)
    lab.fake.down |= {r for r in lab.fake.peer if r.dpid == spine}
    assert lab.undelivered() == []
    assert all(spine not in p for h in lab.hosts[2:] for p in lab.send(lab.hosts[0], h).paths)


def test_drained_links_are_avoided_while_alternatives_exist() -> None:
    lab = ready(leaf_spine(2, 4), config=PLAIN)
    up, down = lab.cable("leaf1", "spine1"), lab.cable("spine1", "leaf1")
    lab.fake.apply(lab.net.set_drained([up, down], True, now=lab.now))
    spine1 = lab.dpid("spine1")
    leaf1 = up.src.dpid
    assert lab.undelivered() == []
    for src in lab.hosts:
        for dst in lab.hosts:
            if src.port.dpid != dst.port.dpid and leaf1 in (src.port.dpid, dst.port.dpid):
                assert all(spine1 not in p for p in lab.send(src, dst).paths)
    far = [h for h in lab.hosts if h.port.dpid != leaf1]
    assert any(spine1 in p for p in lab.send(far[0], far[-1]).paths)  # others still use it
    lab.fake.apply(lab.net.set_drained([up, down], False, now=lab.now))
    assert len(lab.send(lab.hosts[0], lab.hosts[-1]).paths) == 2


def test_a_drained_link_still_carries_traffic_when_it_is_the_only_way() -> None:
    lab = ready(asymmetric())
    only = lab.cable("leaf3", "spine1")  # leaf3 has no cable to spine2
    lab.fake.apply(lab.net.set_drained([only, only.reverse()], True, now=lab.now))
    assert lab.undelivered() == []


def test_class_traps_send_governed_packets_from_edge_ports_to_the_controller() -> None:
    lab = ready(leaf_spine(2, 4))
    roce = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
    nccl = FlowMatch(
        ip_proto=6,
        dst_ports=(PortRange(50000, 50015),),
        dst_hosts=(ipaddress.IPv4Network("10.0.0.0/24"),),
    )
    traps = [ClassTrap(PRIO_TRAP_BASE + 1, m) for fm in (roce, nccl) for m in of_matches(fm)]
    lab.fake.apply(lab.net.set_traps(traps, now=lab.now))
    src, dst = lab.hosts[0], lab.hosts[-1]
    trapped = lab.send(src, dst)
    assert trapped.reached_controller and not trapped.delivered
    assert [t.at for t in trapped.terminals] == [src.port]  # at the ingress only
    assert lab.send(src, dst, udp_dst=4792).only_to(dst.port)
    tcp = {"ip_proto": 6, "tcp_src": 40000}
    assert lab.send(src, dst, **tcp, tcp_dst=50007).reached_controller
    assert lab.send(src, dst, **tcp, tcp_dst=50016).only_to(dst.port)
    assert lab.send(src, dst, **tcp, tcp_dst=50007, ipv4_dst="10.0.1.1").only_to(dst.port)
    # The same packet arriving on a fabric port is forwarded, never trapped.
    spine_in = lab.cable("leaf1", "spine1").dst
    res = lab.fake.walk(spine_in.dpid, spine_in.port, lab.packet(src, dst))
    assert res.only_to(dst.port)
    lab.fake.apply(lab.net.set_traps([], now=lab.now))
    assert lab.send(src, dst).only_to(dst.port)


def test_broadcast_unknown_arp_and_lldp_are_never_flooded() -> None:
    lab = ready(leaf_spine(2, 4))
    src = lab.hosts[0]
    at = (src.port.dpid, src.port.port)
    base = lab.packet(src, lab.hosts[1])
    assert lab.fake.walk(*at, {**base, "eth_dst": "ff:ff:ff:ff:ff:ff"}).dropped
    assert lab.fake.walk(*at, {**base, "eth_dst": "01:00:5e:00:00:fb"}).dropped
    unknown = lab.fake.walk(*at, {**base, "eth_dst": "02:00:00:00:ee:ee"})
    assert unknown.reached_controller and not unknown.delivered
    for eth_type in (0x0806, 0x88CC):
        bcast = {"eth_src": src.mac, "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": eth_type}
        res = lab.fake.walk(*at, bcast)
        assert res.reached_controller and not res.delivered and not res.dropped


def test_catch_all_shortest_uses_one_path_and_no_groups() -> None:
    lab = ready(leaf_spine(3, 6), config=PLAIN)
    policy = Policy(name="default", priority=0, strategy=Strategy.SHORTEST)
    lab.fake.apply(lab.net.set_catch_all(policy, now=lab.now))
    lab.run_for(lab.net.config.warmup_s)
    assert lab.undelivered() == []
    assert all(not sw.groups for sw in lab.fake.switches.values())
    assert all(len(lab.send(lab.hosts[0], h).paths) == 1 for h in lab.hosts[1:])


def test_catch_all_weighted_weighs_buckets_by_switch_name() -> None:
    lab = ready(asymmetric(), names=ODD_NAMES, config=PLAIN)
    policy = Policy(
        name="default",
        priority=0,
        strategy=Strategy.WEIGHTED,
        weights=(("core", 3.0), (f"{lab.dpid('spine2'):016x}", 1.0)),
    )
    lab.fake.apply(lab.net.set_catch_all(policy, now=lab.now))
    leaf1 = lab.dpid("leaf1")
    (grp,) = lab.fake.switches[leaf1].groups.values()
    weight_of = {b.watch_port: b.weight for b in grp.buckets}
    assert weight_of == {
        lab.cable("leaf1", "spine1").src.port: 30,
        lab.cable("leaf1", "spine2").src.port: 10,
    }
    assert lab.undelivered() == []


def test_packet_ins_are_metered_when_configured() -> None:
    lab = ready(leaf_spine(2, 2), config=EngineConfig(packet_in_pps=200))
    for sw in lab.fake.switches.values():
        assert set(sw.meters) == {PACKET_IN_METER}
        assert sw.meters[PACKET_IN_METER].rate_pps == 200
        to_controller = [e for e in sw.flows.values() if ToController() in e.actions]
        metered = [e for e in to_controller if e.meter_id == PACKET_IN_METER]
        assert {e.match.get("eth_type") for e in metered} == {0x0806, None}  # ARP, table-miss
    assert lab.undelivered() == []
