"""Frames: our struct parser and builders agree with Ryu's packet library (an independent codec)."""

from __future__ import annotations

import pytest
from ryu.lib.packet import arp, ethernet, ipv4, lldp, packet, tcp, udp, vlan

from controller.fabric.frames import build_arp_reply, build_lldp, parse, parse_lldp
from controller.fabric.lldp_auth import LldpSigner


def _ip(proto: int, *, tos: int = 0, frag: int = 0) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst="00:00:00:00:02:01", src="00:00:00:00:01:0a"))
    pkt.add_protocol(ipv4.ipv4(src="10.0.1.10", dst="10.0.2.1", proto=proto, tos=tos, offset=frag))
    if proto == 17:
        pkt.add_protocol(udp.udp(src_port=40000, dst_port=4791))
    elif proto == 6:
        pkt.add_protocol(tcp.tcp(src_port=41000, dst_port=29500))
    pkt.add_protocol(b"payload" * 8)
    pkt.serialize()
    return bytes(pkt.data)


def _arp(op: int) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(
        ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src="00:00:00:00:01:01", ethertype=0x0806)
    )
    pkt.add_protocol(
        arp.arp(
            opcode=op,
            src_mac="00:00:00:00:01:01",
            src_ip="10.0.1.1",
            dst_mac="00:00:00:00:00:00",
            dst_ip="10.0.2.1",
        )
    )
    pkt.serialize()
    return bytes(pkt.data)


@pytest.mark.parametrize("proto,tos", [(17, 0), (6, 26 << 2), (1, 46 << 2)])
def test_ipv4_fields_agree_with_ryu(proto: int, tos: int) -> None:
    frame = _ip(proto, tos=tos)
    ours = parse(frame)
    theirs = packet.Packet(frame)
    ip = theirs.get_protocol(ipv4.ipv4)
    l4 = theirs.get_protocol(tcp.tcp) or theirs.get_protocol(udp.udp)
    assert ours.kind == "ipv4"
    assert (ours.ip_src, ours.ip_dst, ours.ip_proto, ours.dscp) == (
        ip.src,
        ip.dst,
        ip.proto,
        ip.tos >> 2,
    )
    assert (ours.src_port, ours.dst_port) == (
        getattr(l4, "src_port", 0),
        getattr(l4, "dst_port", 0),
    )
    eth = theirs.get_protocol(ethernet.ethernet)
    assert (ours.eth_src, ours.eth_dst) == (eth.src, eth.dst)


@pytest.mark.parametrize("op", [1, 2])
def test_arp_fields_agree_with_ryu(op: int) -> None:
    ours = parse(_arp(op))
    theirs = packet.Packet(_arp(op)).get_protocol(arp.arp)
    assert ours.kind == "arp"
    assert (ours.arp_op, ours.arp_src_ip, ours.arp_dst_ip) == (
        theirs.opcode,
        theirs.src_ip,
        theirs.dst_ip,
    )


def test_non_first_fragments_carry_no_ports() -> None:
    # A later fragment carries no L4 header: its ports must not be read as ports.
    assert parse(_ip(17, frag=100)).src_port == 0
    assert parse(_ip(17)).src_port == 40000


def test_vlan_tagged_frames_are_other() -> None:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(ethertype=0x8100))
    pkt.add_protocol(vlan.vlan(vid=10, ethertype=0x0800))
    pkt.add_protocol(ipv4.ipv4(src="10.0.0.1", dst="10.0.0.2", proto=17))
    pkt.serialize()
    assert parse(bytes(pkt.data)).kind == "other"


@pytest.mark.parametrize(
    "frame", [b"", b"\x00" * 13, _ip(17)[:20], _arp(1)[:30], b"\x00" * 12 + b"\x88\xcc\x02"]
)
def test_truncated_frames_never_raise(frame: bytes) -> None:
    parsed = parse(frame)
    assert parsed.kind in ("other", "ipv4", "arp", "lldp")


def test_lldp_probe_round_trips_and_ryu_reads_it() -> None:
    signer = LldpSigner(b"k" * 32)
    frame = build_lldp(signer, dpid=0x1234, port=7, hw_addr="0a:00:00:12:34:07", now=100.0)
    parsed = parse(frame)
    assert parsed.kind == "lldp" and parsed.eth_src == "0a:00:00:12:34:07"
    assert parse_lldp(signer, parsed.lldp, now=100.5) == (0x1234, 7)
    # Ryu's library, an independent reader, sees a well-formed LLDPDU with our TLVs.
    tlvs = packet.Packet(frame).get_protocol(lldp.lldp).tlvs
    assert bytes(tlvs[0].chassis_id) == b"dpid:0000000000001234"
    assert bytes(tlvs[1].port_id) == b"7"
    assert isinstance(tlvs[-1], lldp.End)


def test_lldp_with_a_bad_or_stale_proof_is_rejected() -> None:
    signer = LldpSigner(b"k" * 32, max_age_s=10.0)
    frame = build_lldp(signer, dpid=5, port=1, hw_addr="0a:00:00:00:05:01", now=100.0)
    tlvs = parse(frame).lldp
    assert parse_lldp(LldpSigner(b"x" * 32), tlvs, now=100.0) is None  # another key
    assert parse_lldp(signer, tlvs, now=200.0) is None  # too old
    forged = frame.replace(b"dpid:0000000000000005", b"dpid:0000000000000006")
    assert parse_lldp(signer, parse(forged).lldp, now=100.0) is None  # claims another switch


def test_arp_reply_is_what_ryu_builds() -> None:
    ours = build_arp_reply(
        target_mac="02:00:00:00:00:05",
        target_ip="10.0.0.5",
        requester_mac="02:00:00:00:00:01",
        requester_ip="10.0.0.1",
    )
    pkt = packet.Packet()
    pkt.add_protocol(
        ethernet.ethernet(dst="02:00:00:00:00:01", src="02:00:00:00:00:05", ethertype=0x0806)
    )
    pkt.add_protocol(
        arp.arp(
            opcode=arp.ARP_REPLY,
            src_mac="02:00:00:00:00:05",
            src_ip="10.0.0.5",
            dst_mac="02:00:00:00:00:01",
            dst_ip="10.0.0.1",
        )
    )
    pkt.serialize()
    assert ours == bytes(pkt.data)
