"""Whether two port or prefix sets share a value, against brute force.

Guards the interval meet behind :func:`controller.policy.overlap.matches_overlap`:
on random small sets of port ranges (overlapping, adjacent, nested, in any
order, on either side, of any count) two matches on the destination port
overlap exactly when the sets, written out, share a port; likewise for source
prefixes.
"""

from __future__ import annotations

import ipaddress
import random

from controller.policy.model import FlowMatch, PortRange
from controller.policy.overlap import matches_overlap


def random_ranges(rng: random.Random, count: int) -> tuple[PortRange, ...]:
    out = []
    for _ in range(count):
        lo = rng.randrange(0, 60)
        out.append(PortRange(lo, lo + rng.randrange(0, 8)))
    return tuple(out)


def ports_of(ranges: tuple[PortRange, ...]) -> set[int]:
    return {p for r in ranges for p in range(r.lo, r.hi + 1)}


def test_port_sets_meet_exactly_when_they_share_a_port() -> None:
    rng = random.Random(11)
    for _ in range(600):
        a = random_ranges(rng, rng.randrange(1, 5))
        b = random_ranges(rng, rng.randrange(1, 5))
        want = bool(ports_of(a) & ports_of(b))
        ma = FlowMatch(ip_proto=17, dst_ports=a)
        mb = FlowMatch(ip_proto=17, dst_ports=b)
        assert matches_overlap(ma, mb) == want, (a, b)
        assert matches_overlap(mb, ma) == want, (b, a)
        assert matches_overlap(ma, FlowMatch(ip_proto=17)) is True  # any port meets anything


def test_prefix_sets_meet_exactly_when_they_share_an_address() -> None:
    rng = random.Random(12)

    def nets(count: int) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(
            ipaddress.IPv4Network(f"10.0.0.{rng.randrange(0, 64)}/32").supernet(
                new_prefix=rng.choice((26, 28, 30, 32))
            )
            for _ in range(count)
        )

    for _ in range(300):
        a, b = nets(rng.randrange(1, 4)), nets(rng.randrange(1, 4))
        want = bool({x for n in a for x in n} & {x for n in b for x in n})
        assert matches_overlap(FlowMatch(src_hosts=a), FlowMatch(src_hosts=b)) == want, (a, b)
