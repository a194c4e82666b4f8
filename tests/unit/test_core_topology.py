"""Connectivity discovery: links from LLDP, and links lost to port, switch and LLDP silence."""

from __future__ import annotations

from enginelab import EngineLab
from synthetic import leaf_spine

from controller.fabric.model import Host, LinkId, PortRef


def started(spines: int = 2, leaves: int = 4) -> EngineLab:
    lab = EngineLab(leaf_spine(spines, leaves))
    lab.start()
    return lab


def test_lldp_in_each_direction_proves_one_directed_link() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    up = lab.cable("leaf1", "spine1")
    lab.lldp(up)
    assert list(lab.net.topo.links) == [up]
    lab.lldp(up.reverse())
    assert set(lab.net.topo.links) == {up, up.reverse()}
    assert lab.notices("link-up") == [
        f"leaf1/{up.src.port}->spine1/{up.dst.port}",
        f"spine1/{up.dst.port}->leaf1/{up.src.port}",
    ]
    lab.lldp(up)  # a refresh of a known link is not news
    assert len(lab.notices("link-up")) == 2


def test_start_discovers_every_cable_and_only_cables() -> None:
    lab = started(2, 4)
    topo = lab.net.topo
    assert set(topo.links) == set(lab.fake.links)
    assert len(topo.links) == 2 * 2 * 4
    for leaf in lab.fabric.leaves:
        dpid = lab.dpid(leaf)
        assert topo.edge_ports(dpid) == sorted(
            h.port.port for h in lab.hosts if h.port.dpid == dpid
        )
    for spine in lab.fabric.spines:
        assert topo.edge_ports(lab.dpid(spine)) == []


def test_port_down_on_one_end_removes_both_directions_of_the_cable() -> None:
    lab = started()
    cable = lab.cable("leaf1", "spine2")
    lab.set_port(cable.src, up=False)
    links = lab.net.topo.links
    assert cable not in links and cable.reverse() not in links
    assert len(links) == 16 - 2
    names = [lab.net.topo.link_name(lid) for lid in (cable, cable.reverse())]
    assert sorted(lab.notices("link-down")) == sorted(f"{n} port-down" for n in names)
    assert names[0] == f"leaf1/{cable.src.port}->spine2/{cable.dst.port}"


def test_a_port_coming_back_is_a_link_again_only_after_lldp() -> None:
    lab = started()
    cable = lab.cable("leaf2", "spine1")
    lab.set_cable("leaf2", "spine1", up=False)
    lab.advance(0.5)
    lab.set_cable("leaf2", "spine1", up=True)
    assert cable not in lab.net.topo.links
    lab.advance(lab.net.config.lldp_interval_s)
    probes = lab.tick()
    assert any(p.port == cable.src for p in probes)
    assert {cable, cable.reverse()} <= set(lab.net.topo.links)


def test_switch_down_removes_all_its_links() -> None:
    lab = started()
    spine = lab.dpid("spine1")
    lab.disconnect(spine)
    links = lab.net.topo.links
    assert not [lid for lid in links if spine in (lid.src.dpid, lid.dst.dpid)]
    assert len(links) == 8
    assert len([n for n in lab.notices("link-down") if n.endswith("switch-down")]) == 8
    assert lab.notices("switch-down") == ["spine1"]


def test_lldp_silence_expires_a_link_on_tick() -> None:
    lab = started()
    quiet = lab.cable("leaf3", "spine2")
    lab.lldp_lost.add(quiet.src)
    timeout = lab.net.config.link_timeout_s
    for _ in range(int(timeout / lab.net.config.lldp_interval_s) + 2):
        lab.advance(lab.net.config.lldp_interval_s)
        lab.tick()
    links = lab.net.topo.links
    assert quiet not in links
    assert quiet.reverse() in links  # the other direction still hears LLDP
    assert len(links) == 15
    assert lab.notices("link-down") == [f"{lab.net.topo.link_name(quiet)} lldp-timeout"]


def test_no_tick_means_no_expiry_even_after_a_long_time() -> None:
    lab = started()
    lab.advance(1000.0)
    assert len(lab.net.topo.links) == 16  # time only passes through tick


def test_lldp_on_a_port_with_a_confirmed_host_makes_no_link() -> None:
    lab = started()
    host = lab.hosts[0]
    lab.garp(host)
    spine_port = PortRef(lab.dpid("spine1"), 1)
    before = set(lab.net.topo.links)
    lab.lldp(LinkId(spine_port, host.port))  # replayed into the host port
    lab.lldp(LinkId(host.port, spine_port))  # forged by the host
    assert set(lab.net.topo.links) == before
    assert lab.net.counters["lldp-ignored"] == 2
    assert lab.net.topo.hosts[host.mac].attach == host.port


def test_probes_never_go_out_of_host_ports() -> None:
    lab = started()
    lab.learn_all()
    lab.advance(lab.net.config.lldp_interval_s)
    probes = lab.tick()
    host_ports = {h.port for h in lab.hosts}
    assert probes and not host_ports & {p.port for p in probes}
    assert {p.port for p in probes} == set(lab.fake.peer)


def test_a_restored_host_does_not_block_discovery() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    uplink = lab.cable("leaf1", "spine1")
    # Remembered from an earlier run on a port that is now cabled to a spine.
    ghost = Host(mac="02:00:00:00:99:01", ipv4="10.9.9.1", attach=uplink.src, last_seen=0.0)
    lab.net.restore_hosts([ghost])
    lab.start()
    assert uplink in lab.net.topo.links and uplink.reverse() in lab.net.topo.links
    assert ghost.mac not in lab.net.topo.hosts
    assert "lldp-ignored" not in lab.net.counters


def test_lldp_that_cannot_be_a_link_is_ignored() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    leaf1, spine1 = lab.dpid("leaf1"), lab.dpid("spine1")
    lab.connect(leaf1)
    lab.lldp(LinkId(PortRef(leaf1, 1), PortRef(leaf1, 1)))  # looped back to itself
    lab.lldp(LinkId(PortRef(spine1, 1), PortRef(leaf1, 1)))  # from a switch not connected
    assert lab.net.topo.links == {}
    assert lab.net.counters["lldp-ignored"] == 2


def test_traffic_into_a_port_keeps_its_link_alive_without_lldp() -> None:
    """LLDP probes can drown in a saturated queue; received traffic proves the link."""
    from controller.fabric.model import Link, LinkId, Port, PortRef
    from controller.fabric.topology import Topology

    topo = Topology()
    for dpid in (1, 2):
        topo.switch_up(dpid, name=f"s{dpid}", ports=[Port(1), Port(2)], now=0.0)
    lid = LinkId(PortRef(1, 1), PortRef(2, 1))
    topo.lldp_seen(tx=lid.src, rx=lid.dst, now=0.0)
    assert isinstance(topo.links[lid], Link)
    topo.link_alive(PortRef(2, 1), now=3.0)
    assert topo.expire_links(now=5.0, timeout=3.5) == []
    gone = topo.expire_links(now=7.0, timeout=3.5)
    assert [e.link for e in gone] == [lid]  # type: ignore[attr-defined]


def test_a_link_seen_again_keeps_its_capacity_drain_and_identity() -> None:
    """Traffic and LLDP only move ``last_seen`` forward; every other field stays
    (a field added to Link later must be carried by ``Link.seen`` too)."""
    from dataclasses import fields, replace

    from controller.fabric.model import Link, Port
    from controller.fabric.topology import Topology

    link = Link(LinkId(PortRef(1, 1), PortRef(2, 1)), 1.0, capacity_bps=5e9, drained=True)
    assert link.seen(4.0) == replace(link, last_seen=4.0)
    assert {f.name for f in fields(Link)} == {"link_id", "last_seen", "capacity_bps", "drained"}
    topo = Topology()
    for dpid in (1, 2):
        topo.switch_up(dpid, name=f"s{dpid}", ports=[Port(1)], now=0.0)
    topo.lldp_seen(tx=link.src, rx=link.dst, now=2.0)
    topo.set_capacity(link.link_id, 5e9)
    topo.link_alive(link.dst, now=6.0)
    topo.link_alive(link.dst, now=5.0)  # an older reading never moves it back
    topo.link_alive(link.src, now=9.0)  # traffic into the source proves the other direction
    assert topo.links[link.link_id] == Link(link.link_id, 6.0, capacity_bps=5e9)


def test_a_host_seen_just_now_is_answered_before_any_other_check() -> None:
    """``seen_just_now`` (every packet-in asks it first) is true exactly when
    ``host_seen`` would write nothing because the host was there a moment ago."""
    from controller.fabric.model import Port
    from controller.fabric.topology import HOST_SEEN_RESOLUTION_S, Topology

    topo = Topology()
    topo.switch_up(1, name="s1", ports=[Port(1), Port(2)], now=0.0)
    at, other = PortRef(1, 1), PortRef(1, 2)
    mac = "02:00:00:00:00:0a"
    assert not topo.seen_just_now(mac=mac, ipv4="10.0.0.1", at=at, now=5.0)  # unknown
    assert topo.host_seen(mac=mac, ipv4="10.0.0.1", at=at, now=5.0)  # learned
    before = dict(topo.hosts)
    for ipv4, where, now, fresh in (
        ("10.0.0.1", at, 5.5, True),
        (None, at, 5.5, True),  # ARP probes and non-IP frames carry no address
        ("0.0.0.0", at, 5.5, True),
        ("10.0.0.1", at, 5.0 + HOST_SEEN_RESOLUTION_S, False),  # the resolution later
        ("10.0.0.1", at, 4.0, False),  # time went back
        ("10.0.0.9", at, 5.5, False),  # a new address
        ("10.0.0.1", other, 5.5, False),  # moved
    ):
        assert topo.seen_just_now(mac=mac, ipv4=ipv4, at=where, now=now) is fresh
        if fresh:
            assert topo.host_seen(mac=mac, ipv4=ipv4, at=where, now=now) == []
            assert topo.hosts == before  # nothing written
    assert not topo.seen_just_now(mac=mac.upper(), ipv4="10.0.0.1", at=at, now=5.5)
    assert topo.host_seen(mac=mac, ipv4="10.0.0.9", at=at, now=5.5)  # the new address
