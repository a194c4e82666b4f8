"""Ethernet frames the controller reads and writes: packet-in parsing, LLDP probes, ARP replies.

Plain ``struct`` over bytes, with no OpenFlow library: the engine parses
packet-ins and builds the frames it sends itself, so it runs the same under
any southbound (Ryu, os-ken) and in unit tests. Parsing never raises on a
short or odd frame: what cannot be read is ``kind="other"``.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from controller.fabric.lldp_auth import LldpSigner

__all__ = [
    "Parsed",
    "LldpTlvs",
    "parse",
    "build_lldp",
    "parse_lldp",
    "build_arp_reply",
    "ETH_IPV4",
    "ETH_ARP",
    "ETH_LLDP",
]

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_LLDP = 0x88CC
_VLAN_TAGS = (0x8100, 0x88A8)
_LLDP_DST = "01:80:c2:00:00:0e"  # nearest bridge

# LLDP TLV types (IEEE 802.1AB) and the subtypes we write.
_TLV_END, _TLV_CHASSIS, _TLV_PORT, _TLV_TTL, _TLV_ORG = 0, 1, 2, 3, 127
_CHASSIS_LOCAL = 7  # locally assigned
_PORT_COMPONENT = 2
# An OUI for our organisationally specific TLV (locally administered range).
_OUI = b"\x02\xfa\xbc"
_SUBTYPE_PROOF = 1

_ETH = struct.Struct("!6s6sH")
_MIN_FRAME = 60  # Ethernet minimum without the FCS: short frames are padded


@dataclass(frozen=True)
class LldpTlvs:
    """The TLVs of an LLDP frame that matter to discovery (raw values)."""

    chassis: bytes = b""
    port: bytes = b""
    proof: bytes | None = None


@dataclass(slots=True)
class Parsed:
    """What a packet-in carries (made for every packet-in: plain slots, not frozen,
    whose per-field checks would cost more than the parsing)."""

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
    lldp: LldpTlvs | None = None


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def _mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def parse(data: bytes) -> Parsed:
    """Fields of a packet-in (untagged IPv4, ARP and LLDP; anything else is "other")."""
    if len(data) < 14:
        return Parsed(kind="other")
    dst_raw, src_raw, ethertype = _ETH.unpack_from(data)
    src, dst = _mac(src_raw), _mac(dst_raw)
    if ethertype == ETH_IPV4 and len(data) >= 34:
        return _parse_ipv4(data, src, dst)
    if ethertype == ETH_ARP and len(data) >= 42:
        return Parsed(
            kind="arp",
            eth_src=src,
            eth_dst=dst,
            arp_op=int.from_bytes(data[20:22], "big"),
            arp_src_ip=socket.inet_ntoa(data[28:32]),
            arp_dst_ip=socket.inet_ntoa(data[38:42]),
        )
    if ethertype == ETH_LLDP:
        return Parsed(kind="lldp", eth_src=src, eth_dst=dst, lldp=_lldp_tlvs(data[14:]))
    # VLAN-tagged frames are not ours to forward (the fabric is untagged).
    return Parsed(kind="other", eth_src=src, eth_dst=dst)


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


def _lldp_tlvs(body: bytes) -> LldpTlvs | None:
    """The chassis, port and proof TLVs, or None if the TLV chain is malformed."""
    chassis = port = b""
    proof: bytes | None = None
    i = 0
    while i + 2 <= len(body):
        header = int.from_bytes(body[i : i + 2], "big")
        kind, length = header >> 9, header & 0x1FF
        value = body[i + 2 : i + 2 + length]
        if len(value) < length:
            return None
        if kind == _TLV_END:
            break
        if kind == _TLV_CHASSIS and length >= 1:
            chassis = value[1:]
        elif kind == _TLV_PORT and length >= 1:
            port = value[1:]
        elif kind == _TLV_ORG and length >= 4 and value[:3] == _OUI and value[3] == _SUBTYPE_PROOF:
            proof = value[4:]
        i += 2 + length
    return LldpTlvs(chassis=chassis, port=port, proof=proof)


def _tlv(kind: int, value: bytes) -> bytes:
    return ((kind << 9) | len(value)).to_bytes(2, "big") + value


def build_lldp(signer: LldpSigner, *, dpid: int, port: int, hw_addr: str, now: float) -> bytes:
    """A signed LLDP probe sent out of ``port`` of switch ``dpid``."""
    body = b"".join(
        (
            _tlv(_TLV_CHASSIS, bytes([_CHASSIS_LOCAL]) + f"dpid:{dpid:016x}".encode()),
            _tlv(_TLV_PORT, bytes([_PORT_COMPONENT]) + str(port).encode()),
            _tlv(_TLV_TTL, (10).to_bytes(2, "big")),
            _tlv(_TLV_ORG, _OUI + bytes([_SUBTYPE_PROOF]) + signer.sign(dpid, port, now)),
            _tlv(_TLV_END, b""),
        )
    )
    return _ETH.pack(_mac_bytes(_LLDP_DST), _mac_bytes(hw_addr), ETH_LLDP) + body


def parse_lldp(signer: LldpSigner, tlvs: LldpTlvs | None, *, now: float) -> tuple[int, int] | None:
    """(dpid, port) that sent a probe, or None if it is not a valid probe of ours."""
    if tlvs is None or tlvs.proof is None:
        return None
    chassis = tlvs.chassis.decode(errors="replace")
    if not chassis.startswith("dpid:"):
        return None
    try:
        dpid = int(chassis[5:], 16)
        port = int(tlvs.port.decode(errors="replace"))
    except ValueError:
        return None
    if not signer.verify(dpid, port, tlvs.proof, now=now):
        return None
    return dpid, port


def build_arp_reply(
    *, target_mac: str, target_ip: str, requester_mac: str, requester_ip: str
) -> bytes:
    """The ARP reply ``target_ip is-at target_mac``, addressed to the requester."""
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        1,  # Ethernet
        ETH_IPV4,
        6,
        4,
        2,  # reply
        _mac_bytes(target_mac),
        socket.inet_aton(target_ip),
        _mac_bytes(requester_mac),
        socket.inet_aton(requester_ip),
    )
    frame = _ETH.pack(_mac_bytes(requester_mac), _mac_bytes(target_mac), ETH_ARP) + arp
    return frame.ljust(_MIN_FRAME, b"\0")
