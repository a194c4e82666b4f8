"""Signed LLDP: only frames this controller sent recently can prove a link.

Each probe carries the sending port, a timestamp and an HMAC over both under a
key that exists only in this controller process (or, in a cluster, only in its
controllers and their shared store, so a standby can check the leader's
probes). A host that forges LLDP cannot sign it, and a host that replays a
frame it overheard is stopped by the timestamp (and by never receiving probes:
none are sent to host ports). ``clock_offset`` turns the caller's clock into
the one the timestamps use (wall-clock time across a cluster's machines).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

__all__ = ["LldpSigner"]

_TAG_LEN = 16


class LldpSigner:
    def __init__(
        self, key: bytes | None = None, *, max_age_s: float = 10.0, clock_offset: float = 0.0
    ) -> None:
        self._key = key if key is not None else os.urandom(32)
        self.max_age_s = max_age_s
        self.clock_offset = clock_offset

    def _mac(self, dpid: int, port: int, stamp: float) -> bytes:
        msg = struct.pack("!QId", dpid, port, stamp)
        return hmac.new(self._key, msg, hashlib.sha256).digest()[:_TAG_LEN]

    def sign(self, dpid: int, port: int, now: float) -> bytes:
        """Opaque proof (timestamp + tag) to put into the probe."""
        stamp = now + self.clock_offset
        return struct.pack("!d", stamp) + self._mac(dpid, port, stamp)

    def verify(self, dpid: int, port: int, proof: bytes, *, now: float) -> bool:
        if len(proof) != 8 + _TAG_LEN:
            return False
        (stamp,) = struct.unpack("!d", proof[:8])
        now += self.clock_offset
        if not (now - self.max_age_s <= stamp <= now + 1.0):
            return False
        return hmac.compare_digest(proof[8:], self._mac(dpid, port, stamp))
