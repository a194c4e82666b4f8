"""Signed LLDP: only frames this controller sent recently can prove a link.

Each probe carries the sending port, a timestamp and an HMAC over both under a
key that exists only in this controller process. A host that forges LLDP
cannot sign it, and a host that replays a frame it overheard is stopped by the
timestamp (and by never receiving probes: none are sent to host ports).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

__all__ = ["LldpSigner"]

_TAG_LEN = 16


class LldpSigner:
    def __init__(self, key: bytes | None = None, *, max_age_s: float = 10.0) -> None:
        self._key = key if key is not None else os.urandom(32)
        self.max_age_s = max_age_s

    def _mac(self, dpid: int, port: int, stamp: float) -> bytes:
        msg = struct.pack("!QId", dpid, port, stamp)
        return hmac.new(self._key, msg, hashlib.sha256).digest()[:_TAG_LEN]

    def sign(self, dpid: int, port: int, stamp: float) -> bytes:
        """Opaque proof (timestamp + tag) to put into the probe."""
        return struct.pack("!d", stamp) + self._mac(dpid, port, stamp)

    def verify(self, dpid: int, port: int, proof: bytes, *, now: float) -> bool:
        if len(proof) != 8 + _TAG_LEN:
            return False
        (stamp,) = struct.unpack("!d", proof[:8])
        if not (now - self.max_age_s <= stamp <= now + 1.0):
            return False
        return hmac.compare_digest(proof[8:], self._mac(dpid, port, stamp))
