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

Buckets: B = 2^k >= 4n (so a lost next hop's buckets can go to several
others), the smallest such B for which no port gets more than
:data:`MAX_OVERLOAD` times its share (its weight over the total), up to
:data:`MAX_BUCKETS`. Equal next hops: n = 2, 4, 8, ... are exact; n = 3
takes 16 buckets (6:5:5, the heaviest port 1.125 x its share), n = 5 32
buckets (7:7:6:6:6, 1.09 x). Which ports get the extra bucket rotates with the
switch's dpid, so over many switches no port is favoured. Each switch reads a
different window of source-port bits depending on its distance to the
destination, so consecutive hops of one path choose independently (no ECMP
polarisation on 3-tier fabrics).

*Derived sets.* When a link fails, every leaf's next hops towards the leaf
behind it lose one spine: a new set, with hundreds of entries, on every leaf
of the fabric. Instead, a set that is a switch's full set (its *parent*) less
a few ports is *derived* from it: its metadata is the parent's id with a
variant in bits 32-55, the parent's entries match the parent's bits only
(masked), so they serve the derived set too, and the derived set adds only
the buckets whose port it lacks (moved to the least loaded of its ports,
above the parent's priority) and its own SELECT group for other traffic. A
lost uplink then costs each leaf a handful of entries, and every flow whose
bucket did not use the lost port keeps its path. A derived set is used only
while no port gets more than :data:`MAX_DERIVED_OVERLOAD` times its share;
otherwise the switch gets a fresh set.

*Degraded sets.* A switch's parent is its set over every cabled uplink, the
ones lost (a spine gone, a cable cut) and drained included. When the ports
missing are missing towards every destination, the set of its remaining
uplinks is derived *in place*: under the parent's own id, its moved buckets
matching that id exactly. No route changes (they all write the parent's id,
and the ports are lost for all of them), so a lost spine costs each leaf its
moved buckets and an entry for other traffic (9 at 64 spines), not a rename
of its ~1,000 routes and a second set of 513 entries. A derived set is named
as if the ports missing towards every destination were there: after a cut
cable, a lost spine changes the derived sets' moved buckets and chains, not
their names (their routes stay, nothing of theirs is deleted).

This module decides entries for one switch's sets; it does not choose next
hops (that is :mod:`controller.routing.nexthops`) and knows nothing of hosts.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache
from math import lcm

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
    "MAX_DERIVED_OVERLOAD",
    "NextHopSet",
    "next_hop_set",
    "derived_set",
    "degraded_set",
    "bucket_count",
    "bucket_ports",
    "compile_set",
]

SPREAD_TABLE = 1
PRIO_SPREAD_MOVED = 30  # a derived set's buckets that left its parent's port
PRIO_SPREAD = 20  # one per (protocol, bucket)
PRIO_SPREAD_DERIVED_OTHER = 15  # a derived set's other traffic
PRIO_SPREAD_OTHER = 10  # everything else: the set's SELECT group
MAX_BUCKETS = 256
MIN_BUCKETS_PER_PORT = 4
MAX_OVERLOAD = Fraction(9, 8)
MAX_DERIVED_OVERLOAD = Fraction(5, 4)
PORT_BITS = 16
ETH_IPV4 = 0x0800
L4_SOURCE = ((17, "udp_src"), (6, "tcp_src"))
_METADATA_TAG = 0xFA << 56  # readable in dump-flows: the top byte names this controller
_FAMILY = 0xFF000000FFFFFFFF  # the bits naming a parent set; bits 32-55 name a derived one


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
    parent: NextHopSet | None = None  # a derived set: the parent serves its other buckets
    in_place: bool = False  # a derived set named as its parent (see degraded_set)
    # A derived set's name: its ports and those its switch lacks towards every
    # destination (see derived_set); empty: its ports.
    named: tuple[PortNo, ...] = ()

    @cached_property
    def set_id(self) -> int:
        """Metadata value naming the set: derived from its contents, like group ids."""
        if self.parent is not None and self.in_place:
            return self.parent.set_id
        if self.parent is not None:
            variant = zlib.crc32(repr(self.named or self.ports).encode()) & 0xFFFFFF or 1
            return self.parent.set_id | variant << 32
        canon = repr((self.ports, self.weights, self.buckets, self.shift, self.offset)).encode()
        return _METADATA_TAG | zlib.crc32(canon)

    @cached_property
    def _route(self) -> tuple[Action, ...]:
        if self.parent is not None and self.in_place:
            return self.parent._route  # the very tuple: its routes' entries stay as they are
        return _route_to(self.set_id)

    @property
    def ring(self) -> tuple[PortNo, ...]:
        """The ports its buckets' failover chains go round: its own, and for a
        set missing ports towards every destination (see derived_set) those too,
        as its parent's chains hold them (a chain passes a port by while it is
        down). A lost spine then leaves the chains as they were: a degraded set's
        are its parent's, a derived set's those it had."""
        if self.parent is not None and self.in_place:
            return self.parent.ports
        return self.named or self.ports

    def route_actions(self) -> tuple[Action, ...]:
        """What a table-0 route towards a destination of this set does (one tuple
        per set: routes of many hosts, and of every recomputation, share it)."""
        return self._route


@lru_cache(maxsize=1 << 12)
def _route_to(set_id: int) -> tuple[Action, ...]:
    """One tuple per set id: a set named as before (a derived set whose switch lost a
    spine besides, see derived_set) leaves its routes' entries as they are."""
    return (WriteMetadata(set_id), GotoTable(SPREAD_TABLE))


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
    if not weights:
        return _plain_set(tuple(ports), distance, dpid)
    kept = tuple((p, int(weights.get(p, 1))) for p in sorted(ports) if weights.get(p, 1) > 0)
    return _set_of(kept, distance, dpid)


@lru_cache(maxsize=1 << 13)
def _plain_set(ports: tuple[PortNo, ...], distance: int, dpid: Dpid) -> NextHopSet | None:
    """:func:`next_hop_set` of ports all weighing 1, kept per switch (a leaf's set
    over its uplinks is asked for by every recompilation of its routes)."""
    return _set_of(tuple((p, 1) for p in sorted(ports)), distance, dpid)


def _set_of(kept: tuple[tuple[PortNo, int], ...], distance: int, dpid: Dpid) -> NextHopSet | None:
    return None if len(kept) < 2 else _interned_set(kept, distance, dpid % len(kept))


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


def derived_set(
    parent: NextHopSet, ports: Sequence[PortNo], *, lacking: Sequence[PortNo] = ()
) -> NextHopSet | None:
    """``parent`` less the ports not in ``ports``, as a derived set (see the module
    notes), or None: not a strict subset, more than a quarter of the parent's ports
    gone, or a port loaded over :data:`MAX_DERIVED_OVERLOAD` times its share.

    ``lacking``: ports of ``parent`` its switch lacks towards every destination
    (uplinks lost or drained, the parent then degraded in place). The set is named
    as if they were there: a spine lost after a cable further on was cut leaves
    the set of the destinations behind the cut its name, so their routes stay and
    only its moved buckets change, instead of a set renamed (its entries and
    groups added, the old ones deleted) and its routes rewritten. The name still
    follows from the fabric's state alone (a restart finds it again), and on one
    switch two such sets differ in their ports beside ``lacking``."""
    kept = tuple(sorted(ports))
    named = tuple(sorted({*kept, *lacking})) if lacking else ()
    return _derived(parent, kept, False, named)


def degraded_set(parent: NextHopSet, ports: Sequence[PortNo]) -> NextHopSet | None:
    """:func:`derived_set`, named as ``parent``: the set of a switch whose next hops
    lack ``parent``'s other ports towards *every* destination (its uplinks lost or
    drained). Routes keep writing the parent's id, so none changes: the set's
    moved buckets (matching that id exactly, above the parent's entries) are the
    whole change, and every route of the parent takes them, which is right because
    the ports they leave are lost for all of them."""
    return _derived(parent, tuple(sorted(ports)), True, ())


@lru_cache(maxsize=1024)
def _derived(
    parent: NextHopSet, kept: tuple[PortNo, ...], in_place: bool, named: tuple[PortNo, ...]
) -> NextHopSet | None:
    have = set(kept)
    lost = len(parent.ports) - len(kept)
    if len(kept) < 2 or not have < set(parent.ports) or lost > max(1, len(parent.ports) // 4):
        return None
    weight = dict(zip(parent.ports, parent.weights, strict=True))
    child = NextHopSet(
        ports=kept,
        weights=tuple(weight[p] for p in kept),
        buckets=parent.buckets,
        shift=parent.shift,
        offset=parent.offset,
        parent=parent,
        in_place=in_place,
        named=named,
    )
    counts = Counter(bucket_ports(child))
    total = sum(child.weights)
    # Each port's load over its share, counts[p] * total / (buckets * weight[p]), is
    # within MAX_DERIVED_OVERLOAD: compared in integers (no Fraction per port).
    num, den = MAX_DERIVED_OVERLOAD.numerator, MAX_DERIVED_OVERLOAD.denominator
    fits = all(counts[p] * total * den <= num * child.buckets * weight[p] for p in kept)
    return child if fits else None


def bucket_count(weights: Sequence[int]) -> int:
    """Smallest power of two >= :data:`MIN_BUCKETS_PER_PORT` x len(weights) that keeps
    every port within :data:`MAX_OVERLOAD` of its share, capped at :data:`MAX_BUCKETS`."""
    n = len(weights)
    count = min(MAX_BUCKETS, 1 << max(1, (MIN_BUCKETS_PER_PORT * n - 1).bit_length()))
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


@lru_cache(maxsize=2048)
def bucket_ports(hs: NextHopSet) -> tuple[PortNo, ...]:
    """The port of each bucket, interleaved (smooth weighted round robin on the counts).
    A derived set keeps its parent's, except that each bucket of a port it lacks goes
    to its least loaded port (relative to weight; ties rotate with the bucket).
    A derived set named with ports lacking everywhere moves from the buckets of
    the set of its name (what it had before they were lost): a bucket moved
    then stays where it went."""
    if hs.parent is not None:
        base = _derived(hs.parent, hs.named, False, ()) if hs.named else None
        return _moved_buckets(hs, bucket_ports(base or hs.parent))
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
    return tuple(out)


def _moved_buckets(hs: NextHopSet, base: tuple[PortNo, ...]) -> tuple[PortNo, ...]:
    out = list(base)
    index = {p: i for i, p in enumerate(hs.ports)}
    # A port's load relative to its weight, count / weight, as an integer that orders
    # alike: count x (lcm of the weights / weight).
    common = lcm(*hs.weights)
    scale = [common // w for w in hs.weights]
    n = len(hs.ports)
    load = [0] * n
    for port in out:
        if (i := index.get(port)) is not None:
            load[i] += scale[i]
    for bucket, port in enumerate(out):
        if port in index:
            continue
        low = min(load)  # the least loaded; ties rotate with the bucket
        pick = min(
            (i for i in range(n) if load[i] == low), key=lambda i: (i - hs.offset - bucket) % n
        )
        out[bucket] = hs.ports[pick]
        load[pick] += scale[pick]
    return tuple(out)


def compile_set(
    hs: NextHopSet, *, cookie: int
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    """Spread-table entries and groups of one set: a failover chain per port, the
    per-bucket entries for UDP and TCP, and the SELECT group for other traffic.
    Kept per set: every recomputation of default forwarding asks again for the
    same sets, hundreds of entries each on a wide fabric.

    A derived set's entries are only its moved buckets, their chains and its own
    SELECT group: its parent's (compiled and installed on their own) do the rest."""
    if hs.parent is not None:
        return _compiled_derived(hs, cookie)
    return _compiled_set(hs, cookie)


@lru_cache(maxsize=512)  # up to 256 buckets x 2 protocols each: bounded
def _compiled_set(
    hs: NextHopSet, cookie: int
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    family = (hs.set_id, _FAMILY)  # derived sets' metadata match too
    buckets = dict(enumerate(bucket_ports(hs)))
    return _set_entries(hs, buckets, (PRIO_SPREAD, PRIO_SPREAD_OTHER), family, cookie)


@lru_cache(maxsize=1024)
def _compiled_derived(
    hs: NextHopSet, cookie: int
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    assert hs.parent is not None
    moved = {
        bucket: port
        for bucket, (port, was) in enumerate(
            zip(bucket_ports(hs), bucket_ports(hs.parent), strict=True)
        )
        if port != was
    }
    priorities = (PRIO_SPREAD_MOVED, PRIO_SPREAD_DERIVED_OTHER)
    return _set_entries(hs, moved, priorities, hs.set_id, cookie)


def _set_entries(
    hs: NextHopSet,
    buckets: Mapping[int, PortNo],
    priorities: tuple[int, int],
    metadata: int | tuple[int, int],
    cookie: int,
) -> tuple[tuple[FlowEntry, ...], tuple[GroupEntry, ...]]:
    """Entries for ``buckets`` (bucket -> port) through failover chains that start at
    their port and go round the set's :attr:`~NextHopSet.ring`, and the set's SELECT
    group (over its own ports) for other traffic;
    ``priorities``: of the buckets' entries and of the other-traffic entry."""
    ring = hs.ring
    used = set(buckets.values())
    chains = {p: failover_chain(ring[i:] + ring[:i]) for i, p in enumerate(ring) if p in used}
    fallback = select_group(hs.ports, weights=dict(zip(hs.ports, hs.weights, strict=True)))
    mask = (hs.buckets - 1) << hs.shift
    entries = [
        FlowEntry(
            priorities[0],
            Match.of(
                metadata=metadata,
                eth_type=ETH_IPV4,
                ip_proto=proto,
                **{field: (bucket << hs.shift, mask)},
            ),
            (GroupAction(chains[port].group_id),),
            cookie,
            table_id=SPREAD_TABLE,
        )
        for proto, field in L4_SOURCE
        for bucket, port in buckets.items()
    ]
    entries.append(
        FlowEntry(
            priorities[1],
            Match.of(metadata=metadata),
            (GroupAction(fallback.group_id),),
            cookie,
            table_id=SPREAD_TABLE,
        )
    )
    return tuple(entries), (*chains.values(), fallback)
