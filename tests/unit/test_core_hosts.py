"""Connectivity host learning and ARP: trusted edge ports only, never a flood."""

from __future__ import annotations

from enginelab import EngineLab, LabHost, arp_frame
from synthetic import leaf_spine

from controller.engine.connectivity import ARP_REPLY
from controller.engine.outputs import PacketOut
from controller.fabric.frames import build_arp_reply
from controller.fabric.model import PortRef


def discovered(spines: int = 2, leaves: int = 3) -> EngineLab:
    """Every switch connected and every cable discovered; edge ports not trusted yet."""
    lab = EngineLab(leaf_spine(spines, leaves))
    for dpid in sorted(lab.fabric.names):
        lab.connect(dpid)
    lab.tick()
    return lab


def started(spines: int = 2, leaves: int = 3) -> EngineLab:
    lab = discovered(spines, leaves)
    lab.advance(lab.net.config.edge_grace_s + 0.1)
    return lab


def fabric_ports(lab: EngineLab) -> set[PortRef]:
    return set(lab.fake.peer)


def test_hosts_are_learned_only_after_the_edge_grace_time() -> None:
    lab = discovered()
    host = lab.hosts[0]
    out = lab.garp(host)
    assert host.mac not in lab.net.topo.hosts and not out.notices
    assert lab.net.counters["arp-non-edge"] == 1
    lab.advance(lab.net.config.edge_grace_s)
    lab.garp(host)
    learned = lab.net.topo.hosts[host.mac]
    assert (learned.attach, learned.ipv4, learned.last_seen) == (host.port, host.ip, lab.now)
    assert lab.notices("host-learned") == [host.mac]
    assert lab.net.hosts_changed


def test_hosts_are_never_learned_on_fabric_ports() -> None:
    lab = started()
    before = lab.fake.hashes()
    for port in sorted(fabric_ports(lab)):
        lab.run(
            lab.net.arp_received(
                at=port,
                opcode=1,
                src_mac="02:00:00:00:77:01",
                src_ip="10.7.7.1",
                dst_ip="10.7.7.1",
                data=b"x",
                now=lab.now,
            )
        )
        lab.run(
            lab.net.unicast_missed(
                at=port,
                src_mac="02:00:00:00:77:02",
                dst_mac="02:00:00:00:77:03",
                src_ip="10.7.7.2",
                data=b"x",
                now=lab.now,
            )
        )
    assert lab.net.topo.hosts == {}
    assert lab.fake.hashes() == before  # nothing was programmed for them either


def test_a_port_that_faced_a_lost_spine_is_no_edge_port_until_it_flaps() -> None:
    """spine1's connection is lost with its links up: leaf1's port to it is up
    without a link, but it is a lost uplink, not a host's port: no host is learned
    there, no ARP relayed to it. Down and up again, it is a new port (a host may have
    been plugged in) and trusted after its grace."""
    lab = started()
    for host in lab.hosts:
        lab.garp(host)
    uplink = lab.cable("leaf1", "spine1").src
    lab.disconnect(lab.dpid("spine1"))
    assert [p for p, _ in lab.net.topo.lost_uplinks(uplink.dpid)] == [uplink.port]
    lab.advance(lab.net.config.edge_grace_s + 0.1)
    stray = LabHost("stray", "02:00:00:00:77:09", "10.7.7.9", uplink)
    lab.garp(stray)
    assert stray.mac not in lab.net.topo.hosts
    assert uplink.port not in lab.net._trap_ports(uplink.dpid, lab.now)
    out = lab.arp(lab.hosts[0], target_ip="10.7.7.99")  # unknown: relayed to edge ports
    relayed = {
        PortRef(p.dpid, p.out_port)
        for p in out.packets
        if isinstance(p, PacketOut) and p.out_port is not None
    }
    assert relayed == {h.port for h in lab.hosts[1:]}  # not the uplink
    lab.set_port(uplink, up=False)
    lab.set_port(uplink, up=True)
    lab.advance(lab.net.config.edge_grace_s + 0.1)
    lab.garp(stray)
    assert lab.net.topo.hosts[stray.mac].attach == uplink


def test_a_port_that_just_came_up_is_not_trusted_yet() -> None:
    lab = started()
    host = lab.hosts[1]
    lab.set_port(host.port, up=False)
    lab.advance(1.0)
    lab.set_port(host.port, up=True)
    lab.garp(host)
    assert host.mac not in lab.net.topo.hosts
    lab.advance(lab.net.config.edge_grace_s)
    lab.garp(host)
    assert lab.net.topo.hosts[host.mac].attach == host.port


def test_multicast_and_zero_source_macs_are_not_hosts() -> None:
    lab = started()
    at = lab.hosts[0].port
    for mac in ("01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"):
        lab.run(lab.net.learn_host(mac=mac, ipv4="10.1.1.1", at=at, now=lab.now))
    assert lab.net.topo.hosts == {}


def test_a_known_target_is_answered_by_proxy_arp() -> None:
    lab = started()
    lab.learn_all()
    asker, target = lab.hosts[0], lab.hosts[4]
    out = lab.arp(asker, target_ip=target.ip)
    reply = build_arp_reply(
        target_mac=target.mac, target_ip=target.ip, requester_mac=asker.mac, requester_ip=asker.ip
    )
    assert out.packets == [PacketOut(dpid=asker.port.dpid, data=reply, out_port=asker.port.port)]
    assert "arp-relay" not in lab.net.counters


def test_an_unknown_target_is_relayed_to_trusted_edge_ports_only() -> None:
    lab = started(spines=2, leaves=3)
    asker = lab.hosts[0]
    late = lab.hosts[3]  # its port flaps, so it is not trusted during this request
    lab.set_port(late.port, up=False)
    lab.set_port(late.port, up=True)
    out = lab.arp(asker, target_ip="10.0.99.99")
    sent = [p for p in out.packets if isinstance(p, PacketOut)]
    assert len(sent) == len(out.packets)
    where = {PortRef(p.dpid, p.out_port) for p in sent if p.out_port is not None}
    assert len(where) == len(sent)
    expected = {h.port for h in lab.hosts} - {asker.port, late.port}
    assert where == expected
    assert not where & fabric_ports(lab)
    spines = {lab.dpid(s) for s in lab.fabric.spines}
    assert not {p.dpid for p in sent} & spines
    request = arp_frame(opcode=1, src_mac=asker.mac, src_ip=asker.ip, dst_ip="10.0.99.99")
    assert all(p.data == request for p in sent)


def test_an_arp_reply_is_delivered_to_the_requester_only() -> None:
    lab = started()
    asker, target = lab.hosts[0], lab.hosts[5]
    lab.garp(asker)
    out = lab.arp(target, target_ip=asker.ip, opcode=ARP_REPLY)
    assert out.packets == [
        PacketOut(
            dpid=asker.port.dpid,
            data=arp_frame(opcode=2, src_mac=target.mac, src_ip=target.ip, dst_ip=asker.ip),
            out_port=asker.port.port,
        )
    ]
    assert lab.net.topo.hosts[target.mac].attach == target.port  # learned from the reply


def test_arp_about_itself_is_neither_answered_nor_relayed() -> None:
    lab = started()
    out = lab.garp(lab.hosts[2])
    assert out.packets == []


def test_a_moved_host_is_forwarded_to_its_new_port() -> None:
    lab = started()
    lab.learn_all()
    mover, sender = lab.hosts[0], lab.hosts[2]
    new_port = lab.hosts[5].port
    lab.advance(1.0)
    lab.run(lab.net.learn_host(mac=mover.mac, ipv4=mover.ip, at=new_port, now=lab.now))
    assert lab.notices("host-moved") == [mover.mac]
    assert lab.send(sender, mover).only_to(new_port)


def test_a_missed_unicast_is_reinjected_only_when_a_route_exists() -> None:
    lab = started()
    src, dst = lab.hosts[0], lab.hosts[3]

    def miss() -> list[PacketOut]:
        out = lab.run(
            lab.net.unicast_missed(
                at=src.port,
                src_mac=src.mac,
                dst_mac=dst.mac.upper(),
                src_ip=src.ip,
                data=b"payload",
                now=lab.now,
            )
        )
        return out.packets_after

    assert miss() == []  # destination unknown: the packet is not bounced back
    assert lab.net.topo.hosts[src.mac].attach == src.port
    lab.garp(dst)
    assert miss() == [PacketOut(dpid=src.port.dpid, data=b"payload", in_port=src.port.port)]
