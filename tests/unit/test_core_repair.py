"""Local repair of a cut spine->leaf link in the switches (issue 13, item 14).

The link is cut in the fake fabric only (``fake.down``): the controller has
not heard, so whatever delivers the packets is the data plane itself. A spine
bounces the packet back tagged, the leaf sends it up another spine, that spine
delivers it untagged; nothing loops, nothing is bounced twice, no tagged
packet reaches a host.
"""

from __future__ import annotations

from collections import Counter

import pytest
from enginelab import EngineLab, LabHost
from synthetic import leaf_spine, three_tier

from controller.engine.engine import EngineConfig
from controller.engine.monitor import LinkMonitor
from controller.engine.placement import FlowPlacer
from controller.fabric.model import FiveTuple, Path
from controller.flowprog.classmatch import of_matches
from controller.flowprog.entries import Cookie, CookieKind, GroupAction, Match, Output, PushVlan
from controller.flowprog.flowrules import compile_path
from controller.flowprog.repair import TAG
from controller.policy.book import PolicyBook
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.te.engineer import TrafficEngineer
from controller.telemetry import CapacityConfig

NO_REPAIR = EngineConfig(local_repair=False)


def cut(lab: EngineLab, a: str, b: str) -> None:
    """The cable fails; the controller is not told."""
    lid = lab.cable(a, b)
    lab.fake.down |= {lid.src, lid.dst}


def walk_everything(lab: EngineLab) -> tuple[list[str], Counter[int]]:
    """Every ordered host pair, several source ports each (live buckets, as the switch)."""
    bad: list[str] = []
    bounces: Counter[int] = Counter()
    for src in lab.hosts:
        for dst in lab.hosts:
            if src is dst:
                continue
            for port in range(8):
                res = lab.send(src, dst, udp_src=port, live_select=True)
                bounces[res.max_bounces] += 1
                if not res.only_to(dst.port) or res.looped:
                    bad.append(f"{src.name}->{dst.name}/{port}: {res.terminals}")
    return bad, bounces


@pytest.mark.parametrize(("spines", "leaves"), [(2, 4), (3, 6), (4, 4)])
def test_a_cut_spine_to_leaf_link_is_repaired_in_the_switches(spines: int, leaves: int) -> None:
    lab = EngineLab(leaf_spine(spines, leaves)).ready()
    cut(lab, "spine1", "leaf2")
    bad, bounces = walk_everything(lab)
    assert bad == []
    assert bounces[1] > 0 and set(bounces) == {0, 1}  # some bounced, none twice


def test_without_local_repair_the_cut_link_loses_packets() -> None:
    lab = EngineLab(leaf_spine(2, 4), config=NO_REPAIR).ready()
    assert not lab.net.config.local_repair and not lab.engine.placer.local_repair
    cut(lab, "spine1", "leaf2")
    bad, bounces = walk_everything(lab)
    assert bad and set(bounces) == {0}
    for sw in lab.fake.switches.values():  # the old tables: no tag anywhere
        assert all(e.match.get("vlan_vid") is None for e in sw.flows.values())
        assert all(PushVlan() not in b.actions for g in sw.groups.values() for b in g.buckets)


def test_a_packet_is_never_bounced_twice() -> None:
    """Both spines lost leaf2: the second spine drops the tagged packet."""
    lab = EngineLab(leaf_spine(2, 4)).ready()
    cut(lab, "spine1", "leaf2")
    cut(lab, "spine2", "leaf2")
    src = lab.hosts[0]
    for dst in (h for h in lab.hosts if lab.fabric.names[h.port.dpid] == "leaf2"):
        for port in range(8):
            res = lab.send(src, dst, udp_src=port, live_select=True)
            assert res.dropped and not res.delivered and not res.looped
            assert res.max_bounces == 1


def test_a_tagged_packet_reaches_no_host_and_hosts_cannot_inject_one() -> None:
    lab = EngineLab(leaf_spine(2, 4)).ready()
    src, dst = lab.hosts[0], lab.hosts[-1]
    injected = lab.send(src, dst, vlan_vid=TAG)
    assert injected.dropped and len(injected.terminals) == 1
    assert injected.terminals[0].switches == (src.port.dpid,)
    cut(lab, "spine1", lab.fabric.names[dst.port.dpid])
    for port in range(8):
        res = lab.send(src, dst, udp_src=port, live_select=True)
        assert all(not t.tagged for t in res.terminals)


def test_spines_route_through_bounce_groups_and_deliver_tagged_packets_untagged() -> None:
    lab = EngineLab(leaf_spine(2, 4)).ready()
    spine = lab.dpid("spine1")
    sw = lab.fake.switches[spine]
    for host in lab.hosts:
        down = lab.cable("spine1", lab.fabric.names[host.port.dpid]).src.port
        route = next(e for e in sw.flows.values() if e.match.as_dict() == {"eth_dst": host.mac})
        (act,) = route.actions
        assert isinstance(act, GroupAction)
        first, second = sw.groups[act.group_id].buckets
        assert first.actions == (Output(down),) and first.watch_port == down
        assert second.watch_port is None and PushVlan() in second.actions


def test_after_the_controller_hears_no_packet_needs_a_bounce() -> None:
    lab = EngineLab(leaf_spine(2, 4)).ready()
    lab.set_cable("spine1", "leaf2", up=False)
    bad, bounces = walk_everything(lab)
    assert bad == [] and set(bounces) == {0}


def test_three_tier_bounces_within_a_pod_and_never_loops() -> None:
    lab = EngineLab(three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2)).ready()
    cut(lab, "agg1-1", "leaf1-1")
    target = next(h for h in lab.hosts if lab.fabric.names[h.port.dpid] == "leaf1-1")
    same_pod = next(h for h in lab.hosts if lab.fabric.names[h.port.dpid] == "leaf1-2")
    for port in range(16):
        res = lab.send(same_pod, target, udp_src=port, live_select=True)
        assert res.only_to(target.port) and res.max_bounces <= 1
    for src in lab.hosts:
        for port in range(8):
            res = lab.send(src, target, udp_src=port, live_select=True)
            assert not res.looped and res.max_bounces <= 1
            assert all(not t.tagged for t in res.of_kind("out"))


# ------------------------------------------------------------ placed AI flows
AI = Policy(
    name="ai",
    priority=100,
    match=(FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),),
    strategy=Strategy.LEAST_UTILIZED,
)


def placed(*, local_repair: bool) -> tuple[EngineLab, LabHost, LabHost, tuple[int, ...]]:
    lab = EngineLab(leaf_spine(2, 4), config=EngineConfig(local_repair=local_repair)).ready()
    book = PolicyBook([AI])
    placer = FlowPlacer(
        lab.net,
        LinkMonitor(capacity=CapacityConfig.from_config(20.0, {})),
        book=lambda: book,
        engineer=TrafficEngineer(),
        local_repair=local_repair,
    )
    src, dst = lab.hosts[0], lab.hosts[-1]
    ft = FiveTuple(src.ip, dst.ip, 17, 40000, 4791)
    out = placer.packet_in(at=src.port, ft=ft, dscp=0, src_mac=src.mac, data=b"x", now=lab.now)
    for dpid, ops in out.immediate:
        lab.fake.apply_ops(dpid, ops)
    for program in (*out.urgent, *out.programs):
        lab.fake.apply(program)
    flow = placer.te.flow_by_five_tuple(ft)
    assert flow is not None
    assert lab.send(src, dst).paths == {flow.path.switches}
    return lab, src, dst, flow.path.switches


def test_a_placed_flow_is_repaired_when_its_spine_loses_the_egress_leaf() -> None:
    lab, src, dst, path = placed(local_repair=True)
    cut(lab, lab.fabric.names[path[1]], lab.fabric.names[path[2]])
    res = lab.send(src, dst, live_select=True)
    assert res.only_to(dst.port) and res.max_bounces == 1
    (detour,) = res.paths
    assert detour[:3] == path[:2] + path[:1] and detour[-1] == path[-1]
    assert detour[3] != path[1]  # up another spine


def test_a_placed_flow_without_local_repair_is_lost_until_the_controller_acts() -> None:
    lab, src, dst, path = placed(local_repair=False)
    cut(lab, lab.fabric.names[path[1]], lab.fabric.names[path[2]])
    res = lab.send(src, dst, live_select=True)
    assert res.dropped and not res.delivered


def test_rules_of_a_job_pair_bounce_at_their_spine_too() -> None:
    """compile_path: the pair's matches (two port ranges) along one path."""
    lab = EngineLab(leaf_spine(2, 4)).ready()
    src, dst = lab.hosts[0], lab.hosts[-1]
    src_leaf, dst_leaf = (lab.fabric.names[h.port.dpid] for h in (src, dst))
    path = Path.of_links([lab.cable(src_leaf, "spine1"), lab.cable("spine1", dst_leaf)])
    job = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791), PortRange(5000, 5001)))
    matches = [Match.of(**m.as_dict(), ipv4_src=src.ip, ipv4_dst=dst.ip) for m in of_matches(job)]
    rules = compile_path(
        matches,
        cookie=Cookie(CookieKind.FLOW, 99, 1).encode(),
        path=path,
        egress_port=dst.port.port,
        idle_timeout=0,
        host_facing=lab.net.topo.host_facing,
    )
    lab.fake.apply(lab.net.prog.set_owner(("job", 1), rules.needs, now=lab.now))
    cut(lab, "spine1", dst_leaf)
    for udp_dst in (4791, 5000, 5001):
        res = lab.send(src, dst, udp_dst=udp_dst, live_select=True)
        assert res.only_to(dst.port) and res.max_bounces == 1
        assert all(lab.dpid("spine2") in p for p in res.paths)
