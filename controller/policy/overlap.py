"""Set algebra on flow matches: overlaps, priority conflicts and normal forms.

A :class:`FlowMatch` is a product of independent sets (protocol, source and
destination ports, DSCP, source and destination prefixes), so two matches
share a packet exactly when every one of those dimensions intersects. This
module answers that, refuses two overlapping policies at one priority (which
of them governs a shared flow would be arbitrary), and computes the merged
forms of port and prefix sets that both validation (size limits) and the
OpenFlow compiler (:mod:`controller.flowprog.classmatch`) use, so the two can
never disagree. It must not know how matches are installed on a switch.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import prod

from controller.errors import InvalidArgument
from controller.policy.model import FlowMatch, IPNet, Policy, PortRange

__all__ = [
    "MAX_MATCH_TERMS",
    "PORT_MAX",
    "matches_overlap",
    "policies_overlap",
    "check_conflicts",
    "merged_ranges",
    "range_prefixes",
    "port_terms",
    "host_terms",
    "dscp_terms",
    "match_term_count",
]

PORT_MAX = 0xFFFF
# Ceiling on the value/mask terms one match alternative may expand into: each
# becomes a flow entry on every leaf, and switch tables are finite.
MAX_MATCH_TERMS = 4096


# A set of integers (ports, IPv4 addresses) as sorted, disjoint, inclusive
# intervals: their starts and their ends. None means "any value".
_Intervals = tuple[tuple[int, ...], tuple[int, ...]] | None


def _intervals(pairs: Iterable[tuple[int, int]]) -> _Intervals:
    los: list[int] = []
    his: list[int] = []
    for lo, hi in sorted(pairs):
        if his and lo <= his[-1] + 1:
            his[-1] = max(his[-1], hi)
        else:
            los.append(lo)
            his.append(hi)
    return (tuple(los), tuple(his)) if los else None


def _meet(a: _Intervals, b: _Intervals) -> bool:
    """Whether two interval sets share a value, in O(n log m) rather than O(n * m)."""
    if a is None or b is None:
        return True
    if len(a[0]) > len(b[0]):
        a, b = b, a
    b_los, b_his = b
    if a[0][0] > b_his[-1] or b_los[0] > a[1][-1]:
        return False
    for lo, hi in zip(*a, strict=True):
        # The last interval of b starting at or before hi is the only candidate.
        i = bisect_right(b_los, hi) - 1
        if i >= 0 and b_his[i] >= lo:
            return True
    return False


@dataclass(frozen=True, slots=True)
class _Normal:
    """A match alternative as sets, computed once per comparison of two policies."""

    ip_proto: int | None
    dscp: frozenset[int]
    src_ports: _Intervals
    dst_ports: _Intervals
    src_hosts: _Intervals
    dst_hosts: _Intervals


def _ports(ranges: tuple[PortRange, ...]) -> _Intervals:
    return _intervals((r.lo, r.hi) for r in ranges)


def _hosts(nets: tuple[IPNet, ...]) -> _Intervals:
    return _intervals((int(n.network_address), int(n.broadcast_address)) for n in nets)


def _normal(m: FlowMatch) -> _Normal:
    return _Normal(
        m.ip_proto,
        frozenset(m.dscp),
        _ports(m.src_ports),
        _ports(m.dst_ports),
        _hosts(m.src_hosts),
        _hosts(m.dst_hosts),
    )


def _normals_overlap(a: _Normal, b: _Normal) -> bool:
    if a.ip_proto is not None and b.ip_proto is not None and a.ip_proto != b.ip_proto:
        return False
    if a.dscp and b.dscp and a.dscp.isdisjoint(b.dscp):
        return False
    return (
        _meet(a.src_ports, b.src_ports)
        and _meet(a.dst_ports, b.dst_ports)
        and _meet(a.src_hosts, b.src_hosts)
        and _meet(a.dst_hosts, b.dst_hosts)
    )


def matches_overlap(a: FlowMatch, b: FlowMatch) -> bool:
    """Whether some IPv4 packet matches both ``a`` and ``b`` (empty fields match anything)."""
    return _normals_overlap(_normal(a), _normal(b))


def _any_pair_overlaps(a: list[_Normal], b: list[_Normal]) -> bool:
    return any(_normals_overlap(x, y) for x in a for y in b)


def policies_overlap(a: Policy, b: Policy) -> bool:
    """Whether some packet is matched by an alternative of ``a`` and one of ``b``."""
    return _any_pair_overlaps([_normal(m) for m in a.match], [_normal(m) for m in b.match])


def check_conflicts(new: Policy, existing: Iterable[Policy]) -> None:
    """Refuse ``new`` if a differently named policy has its priority and overlaps it.

    A policy with the same name is the one ``new`` replaces, so it never
    conflicts. Raises :class:`InvalidArgument` on field ``priority``.
    """
    rivals = [p for p in existing if p.name != new.name and p.priority == new.priority]
    if not rivals:
        return
    normals = [_normal(m) for m in new.match]
    for other in sorted(rivals, key=lambda p: p.name):
        if _any_pair_overlaps(normals, [_normal(m) for m in other.match]):
            raise InvalidArgument(
                "priority",
                f"priority {new.priority} is also used by policy {other.name!r}, whose match "
                "overlaps this one; give one of them another priority so it is clear which "
                "governs the flows both match",
            )


# --------------------------------------------------------------------------- normal forms


def merged_ranges(ranges: Iterable[PortRange]) -> list[PortRange]:
    """The same port set as sorted, disjoint, non-adjacent ranges."""
    merged: list[PortRange] = []
    for r in sorted(ranges):
        if merged and r.lo <= merged[-1].hi + 1:
            last = merged[-1]
            merged[-1] = PortRange(last.lo, max(last.hi, r.hi))
        else:
            merged.append(r)
    return merged


def range_prefixes(lo: int, hi: int, *, width: int = 16) -> list[tuple[int, int]]:
    """The fewest ``(value, mask)`` prefixes whose union is exactly ``lo..hi``.

    The classic expansion: from ``lo`` upward, take the largest aligned block
    that still fits below ``hi``.

    >>> range_prefixes(5001, 5010)
    [(5001, 65535), (5002, 65534), (5004, 65532), (5008, 65534), (5010, 65535)]
    """
    full = (1 << width) - 1
    if not 0 <= lo <= hi <= full:
        raise ValueError(f"range {lo}-{hi} is not within 0-{full}")
    out: list[tuple[int, int]] = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << width  # the largest block aligned at lo
        while size > hi - lo + 1:
            size >>= 1
        out.append((lo, full ^ (size - 1)))
        lo += size
    return out


def port_terms(ranges: tuple[PortRange, ...]) -> list[tuple[int, int]] | None:
    """Prefix terms for a port list, or None when it allows every port."""
    merged = merged_ranges(ranges)
    if not merged or merged == [PortRange(0, PORT_MAX)]:
        return None
    return [term for r in merged for term in range_prefixes(r.lo, r.hi)]


def host_terms(nets: tuple[IPNet, ...]) -> list[IPNet] | None:
    """The prefixes of an address list, merged and sorted, or None when it allows any."""
    collapsed = sorted(ipaddress.collapse_addresses(nets))
    if not collapsed or collapsed[0].prefixlen == 0:
        return None
    return collapsed


def dscp_terms(dscp: tuple[int, ...]) -> list[int] | None:
    return sorted(set(dscp)) or None


def match_term_count(m: FlowMatch) -> int:
    """How many value/mask combinations (flow entries) the alternative ``m`` needs."""
    terms: list[Sequence[object] | None] = [
        port_terms(m.src_ports),
        port_terms(m.dst_ports),
        dscp_terms(m.dscp),
        host_terms(m.src_hosts),
        host_terms(m.dst_hosts),
    ]
    return prod(len(t) for t in terms if t is not None)
