"""Topology lookups through indexes agree with a scan of the whole record."""

from __future__ import annotations

import random

from controller.fabric.events import HostLearned, HostMoved
from controller.fabric.model import Host, Link, LinkId, Port, PortRef, link_order
from controller.fabric.topology import HOST_SEEN_RESOLUTION_S, Topology


def scan_is_fabric_port(topo: Topology, ref: PortRef) -> bool:
    return any(ref in (lid.src, lid.dst) for lid in topo.links)


def scan_fabric_ports(topo: Topology, dpid: int) -> set[int]:
    ports = {lid.src.port for lid in topo.links if lid.src.dpid == dpid}
    return ports | {lid.dst.port for lid in topo.links if lid.dst.dpid == dpid}


def scan_edge_ports(topo: Topology, dpid: int) -> list[int]:
    sw = topo.switches.get(dpid)
    if sw is None or not sw.connected:
        return []
    fabric = scan_fabric_ports(topo, dpid)
    return sorted(p.port_no for p in sw.ports.values() if p.up and p.port_no not in fabric)


def scan_host_by_ip(topo: Topology, ip: str) -> Host | None:
    return next((h for h in topo.hosts.values() if h.ipv4 == ip), None)


def test_random_churn_keeps_every_index_equal_to_a_scan() -> None:
    rng = random.Random(3)
    topo = Topology()
    switches = list(range(1, 7))
    ports = list(range(1, 6))
    now = 0.0
    for dpid in switches:
        topo.switch_up(dpid, name=f"s{dpid}", ports=[Port(p) for p in ports], now=now)
    refs = [PortRef(d, p) for d in switches for p in ports]
    busiest = 0
    for _ in range(1500):
        now += 0.1
        op = rng.random()
        a, b = rng.sample(refs, 2)
        if op < 0.35:
            topo.lldp_seen(tx=a, rx=b, now=now)
        elif op < 0.45:
            topo.port_update(a.dpid, Port(a.port, up=rng.random() < 0.5), now=now)
        elif op < 0.5:
            dpid = rng.choice(switches)
            if rng.random() < 0.5:
                topo.switch_down(dpid, now=now)
            else:
                topo.switch_up(dpid, name=f"s{dpid}", ports=[Port(p) for p in ports], now=now)
        elif op < 0.7:
            mac = f"02:00:00:00:00:{rng.randrange(40):02x}"
            ip = f"10.0.0.{rng.randrange(30)}"
            topo.host_seen(mac=mac, ipv4=ip, at=a, now=now)
        elif op < 0.75:
            mac = f"02:00:00:00:01:{rng.randrange(10):02x}"
            topo.hosts.setdefault(mac, Host(mac, f"10.0.1.{rng.randrange(5)}", a, 0.0))
        elif op < 0.8:
            topo.link_alive(b, now=now)
        elif op < 0.85:
            topo.expire_links(now=now, timeout=rng.choice((0.5, 30.0)))
        elif op < 0.88:
            topo.port_deleted(a.dpid, a.port, now=now)
        busiest = max(busiest, len(topo.links))
        for ref in rng.sample(refs, 5):
            assert topo.is_fabric_port(ref) == scan_is_fabric_port(topo, ref)
            assert topo.hosts_on(ref) == [h for h in topo.hosts.values() if h.attach == ref]
        dpid = rng.choice(switches)
        assert topo.fabric_ports(dpid) == scan_fabric_ports(topo, dpid)
        for each in switches:  # cached per switch between changes: every one, every step
            assert topo.edge_ports(each) == scan_edge_ports(topo, each)
            assert topo.links_at(each) == tuple(
                sorted(lid for lid in topo.links if each in (lid.src.dpid, lid.dst.dpid))
            )
        assert topo.sorted_links() == sorted(topo.links, key=link_order)  # kept per version
        for ip in (f"10.0.0.{rng.randrange(30)}", f"10.0.1.{rng.randrange(5)}"):
            assert topo.host_by_ip(ip) == scan_host_by_ip(topo, ip)
    assert busiest >= 5 and topo.hosts  # the churn had links and hosts to look up


def test_traffic_refreshes_only_the_links_into_that_port() -> None:
    topo = Topology()
    for dpid in (1, 2, 3):
        topo.switch_up(dpid, name=f"s{dpid}", ports=[Port(1), Port(2)], now=0.0)
    topo.lldp_seen(tx=PortRef(1, 1), rx=PortRef(2, 1), now=1.0)
    topo.lldp_seen(tx=PortRef(2, 1), rx=PortRef(1, 1), now=1.0)
    topo.lldp_seen(tx=PortRef(3, 2), rx=PortRef(2, 2), now=1.0)
    topo.link_alive(PortRef(2, 1), now=9.0)
    seen = {lid: link.last_seen for lid, link in topo.links.items()}
    assert seen == {
        LinkId(PortRef(1, 1), PortRef(2, 1)): 9.0,
        LinkId(PortRef(2, 1), PortRef(1, 1)): 1.0,
        LinkId(PortRef(3, 2), PortRef(2, 2)): 1.0,
    }
    assert all(isinstance(link, Link) for link in topo.links.values())


def test_names_resolve_to_the_first_switch_that_took_them() -> None:
    topo = Topology()
    topo.switch_up(5, name="leaf1", ports=[], now=0.0)
    topo.switch_up(7, name="leaf1", ports=[], now=0.0)
    topo.switch_up(9, name="spine1", ports=[], now=0.0)
    assert topo.dpid_by_name("leaf1") == 5 and topo.resolve("spine1") == 9
    topo.switch_up(5, name="renamed", ports=[], now=1.0)
    assert topo.dpid_by_name("leaf1") == 7 and topo.dpid_by_name("renamed") == 5
    assert topo.dpid_by_name("nope") is None


def test_host_table_index_follows_every_dict_operation() -> None:
    topo = Topology()
    topo.switch_up(1, name="s1", ports=[Port(1), Port(2)], now=0.0)
    h = Host("02:00:00:00:00:01", "10.0.0.1", PortRef(1, 1), 1.0)
    topo.hosts.update({h.mac: h})
    assert topo.host_by_ip("10.0.0.1") == h and topo.hosts_on(PortRef(1, 1)) == [h]
    assert topo.hosts.pop(h.mac) == h and topo.host_by_ip("10.0.0.1") is None
    topo.hosts |= {h.mac: h}
    assert topo.host_by_ip("10.0.0.1") == h
    topo.hosts.clear()
    assert topo.hosts_on(PortRef(1, 1)) == [] and topo.host_by_ip("10.0.0.1") is None
    topo.hosts = {h.mac: h}  # a plain dict put in its place is indexed on first use
    assert topo.host_by_ip("10.0.0.1") == h


def test_a_host_seen_again_at_once_keeps_its_record_until_the_resolution_passes() -> None:
    topo = Topology()
    topo.switch_up(1, name="s1", ports=[Port(1), Port(2)], now=0.0)
    mac, at = "02:00:00:00:00:01", PortRef(1, 1)
    assert [type(e) for e in topo.host_seen(mac=mac, ipv4="10.0.0.1", at=at, now=10.0)] == [
        HostLearned
    ]
    first = topo.hosts[mac]
    later = 10.0 + HOST_SEEN_RESOLUTION_S / 2
    assert topo.host_seen(mac=mac, ipv4="10.0.0.1", at=at, now=later) == []
    assert topo.hosts[mac] is first  # nothing rewritten
    done = 10.0 + HOST_SEEN_RESOLUTION_S
    assert topo.host_seen(mac=mac, ipv4="10.0.0.1", at=at, now=done) == []
    assert topo.hosts[mac].last_seen == done
    # Within the resolution a move or a new address is still news.
    assert topo.host_seen(mac=mac, ipv4="10.0.0.9", at=at, now=done + 0.1) != []
    assert topo.host_by_ip("10.0.0.9") == topo.hosts[mac]
    moved = topo.host_seen(mac=mac, ipv4="10.0.0.9", at=PortRef(1, 2), now=done + 0.2)
    assert [type(e) for e in moved] == [HostMoved] and topo.hosts_on(PortRef(1, 2))
    # A host remembered from an earlier run is confirmed by its first packet, at once.
    other = "02:00:00:00:00:02"
    topo.hosts[other] = Host(other, "10.0.0.2", at, 0.0)
    assert topo.host_seen(mac=other, ipv4="10.0.0.2", at=at, now=0.5) == []
    assert topo.hosts[other].confirmed and topo.hosts[other].last_seen == 0.5
