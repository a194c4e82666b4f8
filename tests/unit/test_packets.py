"""The struct fast path of the packet-in parser agrees with Ryu's packet library."""

from __future__ import annotations

import pytest
from ryu.lib.packet import arp, ethernet, ipv4, packet, tcp, udp

from controller.fabric.frames import _parse_slow, parse


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


@pytest.mark.parametrize(
    "frame",
    [_ip(17), _ip(6, tos=26 << 2), _ip(1), _arp(1), _arp(2)],
    ids=["udp", "tcp-dscp", "icmp", "arp-request", "arp-reply"],
)
def test_fast_path_agrees_with_ryu(frame: bytes) -> None:
    assert parse(frame) == _parse_slow(frame)


def test_fields_and_non_first_fragments() -> None:
    udp_frame = parse(_ip(17, tos=46 << 2))
    assert (udp_frame.kind, udp_frame.ip_proto, udp_frame.src_port, udp_frame.dst_port) == (
        "ipv4",
        17,
        40000,
        4791,
    )
    assert udp_frame.dscp == 46 and udp_frame.eth_src == "00:00:00:00:01:0a"
    # A later fragment carries no L4 header: its ports must not be read as ports.
    assert parse(_ip(17, frag=100)).src_port == 0


@pytest.mark.parametrize("frame", [b"", b"\x00" * 13, _ip(17)[:20], _arp(1)[:30]])
def test_truncated_frames_never_raise(frame: bytes) -> None:
    parsed = parse(frame)
    assert parsed.kind in ("other", "ipv4", "arp")
