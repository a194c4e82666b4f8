"""The fabric's upper bound on a job's goodput, for the emulated leaf-spines we run.

Builds the switch graph of an emulated ``spines x leaves`` fabric the way the
controller sees it (dpids and port numbers as the Mininet topology assigns
them), with every link direction's capacity, minus failed links and minus
what background traffic already uses, and asks
:func:`controller.te.bound.max_concurrent_throughput` for the bound of the
job's flows. Pure computation: it talks to no switch and no controller, so the
number depends on the experiment's design, not on a racy observation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import networkx as nx

from benchmarks.lab import Flow
from controller.fabric.model import LinkId, PortRef
from controller.te.bound import HostDemand, max_concurrent_throughput
from mininet_topos.leafspine import LEAF_DPID_BASE, SPINE_DPID_BASE

__all__ = ["leaf_dpid", "fabric_graph", "job_bound"]

MIN_LEFT_BPS = 1e3  # a link a background flow fills still counts, barely (the bound needs > 0)


def leaf_dpid(leaf: int) -> int:
    return LEAF_DPID_BASE + leaf


def _spine_dpid(spine: int) -> int:
    return SPINE_DPID_BASE + spine


def fabric_graph(
    *,
    spines: int,
    leaves: int,
    hosts_per_leaf: int,
    link_bps: float,
    down: Iterable[tuple[int, int]] = (),
    used_bps: Mapping[tuple[str, str], float] | None = None,
) -> tuple[nx.DiGraph, dict[LinkId, float]]:
    """(graph, capacity) of the fabric.

    ``down`` lists (leaf, spine) cables that failed (both directions go).
    ``used_bps`` maps a direction, ``("leaf1", "spine2")`` or ``("spine2", "leaf3")``,
    to bits/s taken by traffic that is not the job's: the job gets what is left.
    """
    failed = set(down)
    used = dict(used_bps or {})
    graph = nx.DiGraph()
    capacity: dict[LinkId, float] = {}
    for j in range(1, leaves + 1):
        graph.add_node(leaf_dpid(j))
    for k in range(1, spines + 1):
        graph.add_node(_spine_dpid(k))
    for j in range(1, leaves + 1):
        for k in range(1, spines + 1):
            if (j, k) in failed:
                continue
            # Mininet numbers a leaf's host ports first, then one port per spine;
            # a spine's port j faces leaf j.
            leaf_port = PortRef(leaf_dpid(j), hosts_per_leaf + k)
            spine_port = PortRef(_spine_dpid(k), j)
            for lid, names in (
                (LinkId(leaf_port, spine_port), (f"leaf{j}", f"spine{k}")),
                (LinkId(spine_port, leaf_port), (f"spine{k}", f"leaf{j}")),
            ):
                u, v = lid.src.dpid, lid.dst.dpid
                graph.add_edge(u, v, link=lid, port=lid.src.port)
                capacity[lid] = max(MIN_LEFT_BPS, link_bps - used.pop(names, 0.0))
    if used:
        raise ValueError(f"used_bps names links that are not in the fabric: {sorted(used)}")
    return graph, capacity


def job_bound(
    flows: Sequence[Flow],
    *,
    spines: int,
    leaves: int,
    hosts_per_leaf: int,
    link_bps: float,
    nic_bps: float,
    down: Iterable[tuple[int, int]] = (),
    used_bps: Mapping[tuple[str, str], float] | None = None,
) -> float:
    """Upper bound (bits/s) on the summed goodput of ``flows``.

    A host's NIC limit is ``nic_bps``. Paced flows (``rate_mbps`` > 0) also
    cap their hosts at their demand: a host whose flows are all paced is
    limited to the larger of what it sends and what it receives. That is exact
    when each host sends and receives one flow (a ring) and stays an upper
    bound otherwise.
    """
    graph, capacity = fabric_graph(
        spines=spines,
        leaves=leaves,
        hosts_per_leaf=hosts_per_leaf,
        link_bps=link_bps,
        down=down,
        used_bps=used_bps,
    )
    demands = []
    tx: dict[str, float] = {}
    rx: dict[str, float] = {}
    unpaced: set[str] = set()
    for f in flows:
        src, dst = _host(f.src), _host(f.dst)
        demands.append(HostDemand(src, dst, leaf_dpid(f.src[0]), leaf_dpid(f.dst[0])))
        if f.rate_mbps > 0:
            tx[src] = tx.get(src, 0.0) + f.rate_mbps * 1e6
            rx[dst] = rx.get(dst, 0.0) + f.rate_mbps * 1e6
        else:
            unpaced.update((src, dst))
    nics = {
        host: nic_bps if host in unpaced else min(nic_bps, max(tx.get(host, 0), rx.get(host, 0)))
        for d in demands
        for host in (d.src, d.dst)
    }
    return max_concurrent_throughput(graph, capacity, demands, nic_bps=nics)


def _host(ref: tuple[int, int]) -> str:
    return f"l{ref[0]}h{ref[1]}"
