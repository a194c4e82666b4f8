"""Compile a policy's flow match into OpenFlow 1.3 matches.

One :class:`FlowMatch` alternative becomes the cross product of its fields,
each expressed the way OXM can match it: port ranges as the fewest
value/mask prefixes, address lists as merged prefixes, DSCP values one by
one. A packet hits one of the produced matches exactly when
:func:`controller.policy.book.flow_match_contains` says the alternative
matches it; the port and prefix normal forms come from
:mod:`controller.policy.overlap`, which validation also uses to bound the
expansion, so an accepted policy always compiles. This module decides
nothing about priorities, actions or switches.
"""

from __future__ import annotations

import itertools
from math import prod

from controller.errors import InvalidArgument
from controller.flowprog.entries import Match, MatchValue
from controller.policy.model import FlowMatch, IPNet
from controller.policy.overlap import (
    MAX_MATCH_TERMS,
    PORT_MAX,
    dscp_terms,
    host_terms,
    port_terms,
)

__all__ = ["ETH_TYPE_IPV4", "of_matches"]

ETH_TYPE_IPV4 = 0x0800
_L4_FIELDS = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}


def _port_values(m: FlowMatch, *, src: bool) -> list[MatchValue] | None:
    ranges = m.src_ports if src else m.dst_ports
    try:
        terms = port_terms(ranges)
    except ValueError as exc:
        raise InvalidArgument("src_ports" if src else "dst_ports", str(exc)) from None
    if terms is None:
        return None
    return [value if mask == PORT_MAX else (value, mask) for value, mask in terms]


def _host_values(nets: tuple[IPNet, ...]) -> list[MatchValue] | None:
    terms = host_terms(nets)
    if terms is None:
        return None
    return [
        str(n.network_address)
        if n.prefixlen == n.max_prefixlen
        else (str(n.network_address), str(n.netmask))
        for n in terms
    ]


def of_matches(m: FlowMatch, *, in_port: int | None = None) -> list[Match]:
    """The OpenFlow matches whose union is exactly the IPv4 packets ``m`` matches.

    Always matches ``eth_type=0x0800``; ``in_port`` is added when given. The
    order is deterministic. Raises :class:`InvalidArgument` for ports without
    ``ip_proto`` tcp/udp (OpenFlow cannot match them) and when the product
    exceeds 4096 matches.

    >>> from controller.policy.model import PortRange
    >>> [str(x) for x in of_matches(FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)))]
    ['eth_type=2048,ip_proto=17,udp_dst=4791']
    """
    base: dict[str, MatchValue] = {"eth_type": ETH_TYPE_IPV4}
    if in_port is not None:
        base["in_port"] = in_port
    if m.ip_proto is not None:
        base["ip_proto"] = m.ip_proto
    axes: list[tuple[str, list[MatchValue]]] = []
    if m.src_ports or m.dst_ports:
        fields = _L4_FIELDS.get(m.ip_proto) if m.ip_proto is not None else None
        if fields is None:
            raise InvalidArgument("ip_proto", "ports can only be matched with ip_proto tcp or udp")
        for name, values in zip(
            fields, (_port_values(m, src=True), _port_values(m, src=False)), strict=True
        ):
            if values is not None:
                axes.append((name, values))
    dscp = dscp_terms(m.dscp)
    if dscp is not None:
        axes.append(("ip_dscp", list(dscp)))
    for name, nets in (("ipv4_src", m.src_hosts), ("ipv4_dst", m.dst_hosts)):
        values = _host_values(nets)
        if values is not None:
            axes.append((name, values))
    count = prod(len(values) for _, values in axes)
    if count > MAX_MATCH_TERMS:
        raise InvalidArgument(
            "match", f"expands to {count} OpenFlow matches, more than {MAX_MATCH_TERMS}"
        )
    names = [name for name, _ in axes]
    return [
        Match.of(**base, **dict(zip(names, combo, strict=True)))
        for combo in itertools.product(*(values for _, values in axes))
    ]
