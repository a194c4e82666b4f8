"""Stable, seeded hashes of flows, for ECMP buckets and rendezvous hashing.

Every controller process and every restart must map the same flow to the same
path, so these hashes run over a canonical byte encoding with BLAKE2b and an
explicit seed. This module must never use Python's ``hash()`` (salted per
process) or any unseeded randomness.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from controller.fabric.model import Dpid, FiveTuple

__all__ = ["flow_key", "flow_hash", "flow_bucket", "rendezvous_unit", "path_key"]

_MAX64 = float(1 << 64)


def flow_key(ft: FiveTuple, *, seed: int) -> bytes:
    """Canonical encoding of a 5-tuple and a seed (the input of every hash here)."""
    text = f"{seed}|{ft.src_ip}|{ft.dst_ip}|{ft.ip_proto}|{ft.src_port}|{ft.dst_port}"
    return text.encode("ascii")


def _h64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def flow_hash(ft: FiveTuple, *, seed: int) -> int:
    """A 64-bit hash of ``ft`` that is the same in every process for the same seed.

    >>> flow_hash(FiveTuple("10.0.0.1", "10.0.0.2", 17, 1000, 4791), seed=0) == flow_hash(
    ...     FiveTuple("10.0.0.1", "10.0.0.2", 17, 1000, 4791), seed=0)
    True
    """
    return _h64(flow_key(ft, seed=seed))


def flow_bucket(ft: FiveTuple, buckets: int, *, seed: int) -> int:
    """``flow_hash(ft) mod buckets``: which of ``buckets`` equal choices ECMP takes."""
    if buckets <= 0:
        raise ValueError(f"buckets must be positive, got {buckets}")
    return flow_hash(ft, seed=seed) % buckets


def path_key(switches: Sequence[Dpid]) -> bytes:
    """Canonical encoding of a path's switches, to hash a flow against each path."""
    return ",".join(format(d, "x") for d in switches).encode("ascii")


def rendezvous_unit(key: bytes, item: bytes) -> float:
    """A uniform number in the open interval (0, 1) for the pair (flow key, item).

    Used by weighted rendezvous hashing: the item maximising
    ``-weight / ln(u)`` wins, which picks each item with probability
    proportional to its weight, and removing one item only moves the flows
    that were on it.
    """
    u = (_h64(key + b"#" + item) + 0.5) / _MAX64
    # The largest hashes round up to exactly 1.0 in floating point; callers
    # take ln(u) and divide by it, so keep u strictly inside (0, 1).
    return min(max(u, math.ulp(0.0)), 1.0 - 2**-53)
