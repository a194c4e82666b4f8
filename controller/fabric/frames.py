"""Parse packet-ins and build the frames the controller sends (LLDP, ARP replies).

Uses Ryu's packet library; the core only ever sees the parsed fields.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

from ryu.lib.packet import arp, ethernet, ipv4, lldp, packet, tcp, udp
from ryu.ofproto import ether

from controller.fabric.lldp_auth import LldpSigner

__all__ = ["Parsed", "parse", "build_lldp", "parse_lldp", "build_arp_reply"]

# An OUI for our organisationally specific TLV (locally administered range).
_OUI = b"\x02\xfa\xbc"
_SUBTYPE_PROOF = 1
_LLDP_DST = lldp.LLDP_MAC_NEAREST_BRIDGE


@dataclass(frozen=True)
class Parsed:
    kind: str  # "lldp", "arp", "ipv4", "other"
    eth_src: str = ""
    eth_dst: str = ""
    arp_op: int = 0
    arp_src_ip: str = ""
    arp_dst_ip: str = ""
    ip_src: str = ""
    ip_dst: str = ""
    ip_proto: int = 0
    dscp: int = 0
    src_port: int = 0
    dst_port: int = 0
    lldp: Any = None


_ETH = struct.Struct("!6s6sH")
_VLAN_TAGS = (0x8100, 0x88A8)


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def parse(data: bytes) -> Parsed:
    """Fields of a packet-in. IPv4 and ARP, the hot path of a packet-in storm,
    are decoded with ``struct`` (tens of times faster than Ryu's packet library);
    anything else goes through Ryu's library."""
    if len(data) >= 14:
        dst_raw, src_raw, ethertype = _ETH.unpack_from(data)
        if ethertype == ether.ETH_TYPE_IP and len(data) >= 34:
            return _parse_ipv4(data, _mac(src_raw), _mac(dst_raw))
        if ethertype == ether.ETH_TYPE_ARP and len(data) >= 42:
            op = int.from_bytes(data[20:22], "big")
            return Parsed(
                kind="arp",
                eth_src=_mac(src_raw),
                eth_dst=_mac(dst_raw),
                arp_op=op,
                arp_src_ip=socket.inet_ntoa(data[28:32]),
                arp_dst_ip=socket.inet_ntoa(data[38:42]),
            )
        if ethertype in _VLAN_TAGS or ethertype == ether.ETH_TYPE_LLDP:
            return _parse_slow(data)
        if ethertype in (ether.ETH_TYPE_IP, ether.ETH_TYPE_ARP):
            return Parsed(kind="other", eth_src=_mac(src_raw), eth_dst=_mac(dst_raw))
    return _parse_slow(data)


def _parse_ipv4(data: bytes, src: str, dst: str) -> Parsed:
    ihl = (data[14] & 0x0F) * 4
    if (data[14] >> 4) != 4 or ihl < 20 or len(data) < 14 + ihl:
        return Parsed(kind="other", eth_src=src, eth_dst=dst)
    proto = data[23]
    sport = dport = 0
    l4 = 14 + ihl
    first_fragment = int.from_bytes(data[20:22], "big") & 0x1FFF == 0
    if proto in (6, 17) and first_fragment and len(data) >= l4 + 4:
        sport = int.from_bytes(data[l4 : l4 + 2], "big")
        dport = int.from_bytes(data[l4 + 2 : l4 + 4], "big")
    return Parsed(
        kind="ipv4",
        eth_src=src,
        eth_dst=dst,
        ip_src=socket.inet_ntoa(data[26:30]),
        ip_dst=socket.inet_ntoa(data[30:34]),
        ip_proto=proto,
        dscp=data[15] >> 2,
        src_port=sport,
        dst_port=dport,
    )


def _parse_slow(data: bytes) -> Parsed:
    pkt = packet.Packet(data)
    eth = pkt.get_protocol(ethernet.ethernet)
    if eth is None:
        return Parsed(kind="other")
    src, dst = eth.src.lower(), eth.dst.lower()
    if eth.ethertype == ether.ETH_TYPE_LLDP:
        return Parsed(kind="lldp", eth_src=src, eth_dst=dst, lldp=pkt.get_protocol(lldp.lldp))
    if eth.ethertype == ether.ETH_TYPE_ARP:
        a = pkt.get_protocol(arp.arp)
        if a is None:
            return Parsed(kind="other", eth_src=src, eth_dst=dst)
        return Parsed(
            kind="arp",
            eth_src=src,
            eth_dst=dst,
            arp_op=a.opcode,
            arp_src_ip=a.src_ip,
            arp_dst_ip=a.dst_ip,
        )
    if eth.ethertype == ether.ETH_TYPE_IP:
        ip = pkt.get_protocol(ipv4.ipv4)
        if ip is None:
            return Parsed(kind="other", eth_src=src, eth_dst=dst)
        l4 = pkt.get_protocol(tcp.tcp) or pkt.get_protocol(udp.udp)
        return Parsed(
            kind="ipv4",
            eth_src=src,
            eth_dst=dst,
            ip_src=ip.src,
            ip_dst=ip.dst,
            ip_proto=ip.proto,
            dscp=ip.tos >> 2,
            src_port=getattr(l4, "src_port", 0),
            dst_port=getattr(l4, "dst_port", 0),
        )
    return Parsed(kind="other", eth_src=src, eth_dst=dst)


def build_lldp(signer: LldpSigner, *, dpid: int, port: int, hw_addr: str, now: float) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=_LLDP_DST, src=hw_addr, ethertype=ether.ETH_TYPE_LLDP))
    tlvs = (
        lldp.ChassisID(
            subtype=lldp.ChassisID.SUB_LOCALLY_ASSIGNED, chassis_id=f"dpid:{dpid:016x}".encode()
        ),
        lldp.PortID(subtype=lldp.PortID.SUB_PORT_COMPONENT, port_id=str(port).encode()),
        lldp.TTL(ttl=10),
        lldp.OrganizationallySpecific(
            oui=_OUI, subtype=_SUBTYPE_PROOF, info=signer.sign(dpid, port, now)
        ),
        lldp.End(),
    )
    pkt.add_protocol(lldp.lldp(tlvs))
    pkt.serialize()
    return bytes(pkt.data)


def parse_lldp(signer: LldpSigner, frame: Any, *, now: float) -> tuple[int, int] | None:
    """(dpid, port) that sent a probe, or None if it is not a valid probe of ours."""
    if frame is None:
        return None
    dpid = port = proof = None
    for tlv in frame.tlvs:
        if isinstance(tlv, lldp.ChassisID):
            text = bytes(tlv.chassis_id).decode(errors="replace")
            if text.startswith("dpid:"):
                try:
                    dpid = int(text[5:], 16)
                except ValueError:
                    return None
        elif isinstance(tlv, lldp.PortID):
            try:
                port = int(bytes(tlv.port_id).decode(errors="replace"))
            except ValueError:
                return None
        elif isinstance(tlv, lldp.OrganizationallySpecific) and tlv.oui == _OUI:
            proof = bytes(tlv.info)
    if dpid is None or port is None or proof is None:
        return None
    if not signer.verify(dpid, port, proof, now=now):
        return None
    return dpid, port


def build_arp_reply(
    *, target_mac: str, target_ip: str, requester_mac: str, requester_ip: str
) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(
        ethernet.ethernet(dst=requester_mac, src=target_mac, ethertype=ether.ETH_TYPE_ARP)
    )
    pkt.add_protocol(
        arp.arp(
            opcode=arp.ARP_REPLY,
            src_mac=target_mac,
            src_ip=target_ip,
            dst_mac=requester_mac,
            dst_ip=requester_ip,
        )
    )
    pkt.serialize()
    return bytes(pkt.data)
