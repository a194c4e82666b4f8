"""Spread default traffic over a switch's next hops by masked L4 source-port bits.

Open vSwitch hashes OpenFlow 1.3 SELECT groups without L4 ports, so every UDP
flow towards one destination left a leaf on the same uplink. The spread is
done in the flow table instead: a remote host's route (table 0) writes the id
of its *next-hop set* into the metadata register and continues in
:data:`SPREAD_TABLE`. There, per set, one entry per bucket of source-port bits
(UDP and TCP) sends the packet to one next hop, and the set's lowest entry
hands all other traffic (ICMP, IPv6, ...) to its SELECT group as before.
Keying the spread table by the set rather than the destination bounds it by
the number of distinct next-hop sets on a switch (one on a healthy leaf of a
leaf-spine), never by the number of hosts.

Each bucket forwards through a FAST_FAILOVER chain that starts at its own port
and continues round the set, so a dead next hop never blackholes a bucket: its
traffic moves to the next live port before the controller hears of it.

Buckets: B = 2^k >= n next hops, the smallest such B for which no port gets
more than :data:`MAX_OVERLOAD` times its share (its weight over the total),
up to :data:`MAX_BUCKETS`. Equal next hops: n = 2, 4, 8, ... are exact; n = 3
takes 8 buckets (3:3:2, the heaviest port 1.125 x its share), n = 5 32
buckets (7:7:6:6:6, 1.09 x). Which ports get the extra bucket rotates with the
switch's dpid, so over many switches no port is favoured. Each switch reads a
different window of source-port bits depending on its distance to the
destination, so consecutive hops of one path choose independently (no ECMP
polarisation on 3-tier fabrics).

This module decides entries for one switch's sets; it does not choose next
hops (that is :mod:`controller.routing.nexthops`) and knows nothing of hosts.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache

from controller.fabric.model import Dpid, PortNo
from controller.flowprog.entries import (
    Action,
    FlowEntry,
    GotoTable,
    GroupAction,
    GroupEntry,
    Match,
    WriteMetadata,
)
from controller.flowprog.groups import failover_chain, select_group

__all__ = [
    "SPREAD_TABLE",
    "MAX_BUCKETS",
    "MAX_OVERLOAD",
    "NextHopSet",
    "next_hop_set",
    "bucket_count",
    "bucket_ports",
    "compile_set",
]

SPREAD_TABLE = 1
PRIO_SPREAD = 20  # one per (protocol, bucket)
PRIO_SPREAD_OTHER = 10  # everything else: the set's SELECT group
MAX_BUCKETS = 256
MAX_OVERLOAD = Fraction(9, 8)
PORT_BITS = 16
ETH_IPV4 = 0x0800
L4_SOURCE = ((17, "udp_src"), (6, "tcp_src"))
_METADATA_TAG = 0xFA << 56  # readable in dump-flows: the top byte names this controller


@dataclass(frozen=True)
class NextHopSet:
    """Next hops of one switch towards some destinations, and how buckets map to them.

    ``ports`` are sorted and carry a positive weight each (``weights``, aligned);
    ``buckets`` is a power of two (:func:`bucket_count`); ``shift`` is the
    first source-port bit the buckets read; ``offset`` rotates which ports
    receive the buckets a non-power-of-two split leaves over.
    """

    ports: tuple[PortNo, ...]
    weights: tuple[int, ...]
    buckets: int
    shift: int
    offset: int

    @cached_property
    def set_id(self) -> int:
        """Metadata value naming the set: derived from its contents, like group ids."""
        canon = repr((self.ports, self.weights, self.buckets, self.shift, self.offset)).encode()
        return _METADATA_TAG | zlib.crc32(canon)

    @cached_property
    def _route(self) -> tuple[Action, ...]:
        return (WriteMetadata(self.set_id), GotoTable(SPREAD_TABLE))

    def route_actions(self) -> tuple[Action, ...]:
        """What a table-0 route towards a destination of this set does (one tuple
        per set: routes of many hosts, and of every recomputation, share it)."""
        return self._route


def next_hop_set(
    ports: Sequence[PortNo],
    *,
    weights: Mapping[PortNo, int] | None,
    distance: int,
    dpid: Dpid,
) -> NextHopSet | None:
    """The set for ``ports`` (None when fewer than two carry a positive weight).

    ``weights`` as for :func:`~controller.flowprog.groups.select_group` (a port
    missing from it weighs 1; weight 0 takes no traffic); ``distance`` is the
    switch's cost to the destination and picks the source-port bits.
    """
    weigh = weights or {}
    kept = tuple((p, int(weigh.get(p, 1))) for p in sorted(ports) if weigh.get(p, 1) > 0)
    if len(kept) < 2:
        return None
    return _interned_set(kept, distance, dpid % len(kept))


@lru_cache(maxsize=1024)
def _interned_set(kept: tuple[tuple[PortNo, int], ...], distance: int, offset: int) -> NextHopSet:
    """One value per set: recomputed forwarding finds the sets it had, and with them
    their compiled entries (:func:`compile_set`), instead of building them again."""
    buckets = bucket_count([w for _, w in kept])
    k = buckets.bit_length() - 1
    windows = PORT_BITS // k
    return NextHopSet(
        ports=tuple(p for p, _ in kept),
        weights=tuple(w for _, w in kept),
        buckets=buckets,
        shift=((distance - 2) % windows) * k,
        offset=offset,
    )


def bucket_count(weights: Sequence[int]) -> int:
    """Smallest power of two >= len(weights) that keeps every port within
    :data:`MAX_OVERLOAD` of its share, capped at :data:`MAX_BUCKETS`."""
    n = len(weights)
    count = 1 << max(1, (n - 1).bit_length())
    while count < MAX_BUCKETS and _overload(weights, count) > MAX_OVERLOAD:
        count *= 2
    return count


def _counts(weights: Sequence[int], buckets: int, offset: int = 0) -> list[int]:
    """Buckets per port by largest remainder; ties go to ports in rotated order."""
    n, total = len(weights), sum(weights)
    counts = [buckets * w // total for w in weights]
    order = sorted(range(n), key=lambda i: (-(buckets * weights[i] % total), (i - offset) % n))
    for i in order[: buckets - sum(counts)]:
        counts[i] += 1
    return counts


def _overload(weights: Sequence[int], buckets: int) -> Fraction:
    total = sum(weights)
    counts = _counts(weights, buckets)
    return max(Fraction(c * total, buckets * w) for c, w in zip(counts, weights, strict=True))


def bucket_ports(hs: NextHopSet) -> list[PortNo]:
    """The port of each bucket, interleaved (smooth weighted round robin on the counts)."""
    buckets = hs.buckets
    counts = _counts(hs.weights, buckets, hs.offset)
    n = len(counts)
    current = [0] * n
    out: list[PortNo] = []
    for _ in range(buckets):
        for i in range(n):
            current[i] += counts[i]
        pick = max(range(n), key=lambda i: (current[i], -((i - hs.offset) % n)))
        current[pick] -= buckets
        out.append(hs.ports[pick])
    return out


def compile_set(
    hs: NextHopSet, *, cookie: int
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    """Spread-table entries and groups of one set: a failover chain per port, the
    per-bucket entries for UDP and TCP, and the SELECT group for other traffic.
    Kept per set: every recomputation of default forwarding asks again for the
    same sets, hundreds of entries each on a wide fabric."""
    return _compiled_set(hs, cookie)


@lru_cache(maxsize=512)  # up to 256 buckets x 2 protocols each: bounded
def _compiled_set(
    hs: NextHopSet, cookie: int
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    ports = list(hs.ports)
    chains = {p: failover_chain(ports[i:] + ports[:i]) for i, p in enumerate(ports)}
    fallback = select_group(ports, weights=dict(zip(hs.ports, hs.weights, strict=True)))
    mask = (hs.buckets - 1) << hs.shift
    by_bucket = bucket_ports(hs)
    entries = [
        FlowEntry(
            PRIO_SPREAD,
            Match.of(
                metadata=hs.set_id,
                eth_type=ETH_IPV4,
                ip_proto=proto,
                **{field: (bucket << hs.shift, mask)},
            ),
            (GroupAction(chains[port].group_id),),
            cookie,
            table_id=SPREAD_TABLE,
        )
        for proto, field in L4_SOURCE
        for bucket, port in enumerate(by_bucket)
    ]
    entries.append(
        FlowEntry(
            PRIO_SPREAD_OTHER,
            Match.of(metadata=hs.set_id),
            (GroupAction(fallback.group_id),),
            cookie,
            table_id=SPREAD_TABLE,
        )
    )
    return tuple(entries), (*chains.values(), fallback)
