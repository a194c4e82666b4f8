"""An upper bound on the goodput a traffic matrix can get through a fabric.

Benchmarks compare what each strategy achieved with what the fabric could
carry at best. The exact answer is a multi-commodity flow (a linear program);
this module computes, with networkx max flows, the minimum of three relaxations
of it, each an upper bound on the total throughput when every flow may split
over any paths and is capped by its hosts' NICs:

1. *Pooled*: one super-source feeds every sending host's NIC, every receiving
   host's NIC drains into one super-sink, fabric links carry their capacity.
   Shares NICs and links correctly but lets traffic reach the wrong receiver,
   even one on its own leaf, without crossing the fabric.
2. *Per leaf pair*: each (source leaf, destination leaf) group of flows gets
   the whole fabric to itself, capped by its own hosts' NICs. Keeps traffic
   with its destination but ignores competition between groups.
3. *Per leaf*: the flows leaving one leaf, pooled, get the fabric to
   themselves; so do the flows entering one leaf. Each group's total is held
   by that leaf's uplinks (or downlinks), which the pooled relaxation misses
   when receivers sit on every leaf (an all-to-all).

The result is exact when one of the relaxations is tight, e.g. all flows
between one pair of leaves (the textbook 2 spines x 20 Mbit/s, 4 flows case
gives 40 Mbit/s), an all-to-all limited by uplinks, or groups that do not
compete for links or NICs. It is a bound, not a schedule: no real routing is
assumed. Pure computation, no state.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from controller.errors import InvalidArgument
from controller.fabric.model import Dpid, LinkId

__all__ = ["HostDemand", "max_concurrent_throughput"]

_SOURCE = ("source",)
_SINK = ("sink",)


@dataclass(frozen=True)
class HostDemand:
    """One flow from host ``src`` (attached to ``src_leaf``) to host ``dst``."""

    src: str
    dst: str
    src_leaf: Dpid
    dst_leaf: Dpid


def _fabric_network(graph: nx.DiGraph, capacity: Mapping[LinkId, float]) -> nx.DiGraph:
    net = nx.DiGraph()
    net.add_nodes_from(graph.nodes)
    for u, v, lid in graph.edges(data="link"):
        cap = capacity.get(lid, 0.0)
        if not cap > 0:
            raise InvalidArgument(f"capacity[{lid}]", "unknown or zero capacity of a fabric link")
        net.add_edge(u, v, capacity=float(cap))
    return net


def _nic_of(nic_bps: float | Mapping[str, float], host: str) -> float:
    if isinstance(nic_bps, Mapping):
        if host not in nic_bps:
            raise InvalidArgument(f"nic_bps[{host}]", "no NIC speed for this host")
        value = float(nic_bps[host])
    else:
        value = float(nic_bps)
    if not value > 0 or math.isinf(value):
        raise InvalidArgument(f"nic_bps[{host}]", f"must be a positive finite rate, got {value}")
    return value


def _check_leaves(graph: nx.DiGraph, demands: Sequence[HostDemand]) -> None:
    attach: dict[str, Dpid] = {}
    for i, d in enumerate(demands):
        for field_name, host, leaf in (("src", d.src, d.src_leaf), ("dst", d.dst, d.dst_leaf)):
            if leaf not in graph:
                raise InvalidArgument(f"demands[{i}].{field_name}_leaf", f"{leaf:x} not in graph")
            if attach.setdefault(host, leaf) != leaf:
                raise InvalidArgument(
                    f"demands[{i}].{field_name}_leaf", f"host {host!r} is attached to two leaves"
                )


def _pooled(
    fabric: nx.DiGraph, demands: Sequence[HostDemand], nic_bps: float | Mapping[str, float]
) -> float:
    net = fabric.copy()
    for d in demands:
        # Host nodes are tuples so they never clash with integer dpids.
        net.add_edge(_SOURCE, ("tx", d.src), capacity=_nic_of(nic_bps, d.src))
        net.add_edge(("tx", d.src), d.src_leaf)  # no capacity attribute: unbounded
        net.add_edge(d.dst_leaf, ("rx", d.dst))
        net.add_edge(("rx", d.dst), _SINK, capacity=_nic_of(nic_bps, d.dst))
    return float(nx.maximum_flow_value(net, _SOURCE, _SINK))


def _host_matching(demands: Sequence[HostDemand], nic_bps: float | Mapping[str, float]) -> float:
    """Max total rate of ``demands`` if only NICs limited them."""
    net = nx.DiGraph()
    for d in demands:
        net.add_edge(_SOURCE, ("tx", d.src), capacity=_nic_of(nic_bps, d.src))
        net.add_edge(("tx", d.src), ("rx", d.dst))
        net.add_edge(("rx", d.dst), _SINK, capacity=_nic_of(nic_bps, d.dst))
    return float(nx.maximum_flow_value(net, _SOURCE, _SINK))


def _per_leaf_pair(
    fabric: nx.DiGraph, demands: Sequence[HostDemand], nic_bps: float | Mapping[str, float]
) -> float:
    groups: dict[tuple[Dpid, Dpid], list[HostDemand]] = defaultdict(list)
    for d in demands:
        groups[(d.src_leaf, d.dst_leaf)].append(d)
    total = 0.0
    for (src, dst), group in sorted(groups.items()):
        nics = _host_matching(group, nic_bps)
        if src == dst:
            total += nics  # the flows never leave their leaf
            continue
        total += min(nics, float(nx.maximum_flow_value(fabric, src, dst)))
    return total


def _per_leaf(
    fabric: nx.DiGraph,
    demands: Sequence[HostDemand],
    nic_bps: float | Mapping[str, float],
    *,
    by_source: bool,
) -> float:
    groups: dict[Dpid, list[HostDemand]] = defaultdict(list)
    for d in demands:
        groups[d.src_leaf if by_source else d.dst_leaf].append(d)
    return sum(_pooled(fabric, group, nic_bps) for _, group in sorted(groups.items()))


def max_concurrent_throughput(
    graph: nx.DiGraph,
    capacity: Mapping[LinkId, float],
    demands: Sequence[HostDemand],
    *,
    nic_bps: float | Mapping[str, float],
) -> float:
    """Upper bound (bits/s) on the total goodput of ``demands`` through ``graph``.

    ``graph`` is the fabric as :func:`controller.fabric.model.graph_of` builds
    it (remove failed switches or links first), ``capacity`` gives every
    fabric link's capacity in bits/s, ``nic_bps`` every host's NIC speed (one
    number for all, or per host name). See the module docstring for which
    bound this is.

    >>> max_concurrent_throughput(nx.DiGraph(), {}, [], nic_bps=1e9)
    0.0
    """
    if not demands:
        return 0.0
    _check_leaves(graph, demands)
    fabric = _fabric_network(graph, capacity)
    return min(
        _pooled(fabric, demands, nic_bps),
        _per_leaf_pair(fabric, demands, nic_bps),
        _per_leaf(fabric, demands, nic_bps, by_source=True),
        _per_leaf(fabric, demands, nic_bps, by_source=False),
    )
