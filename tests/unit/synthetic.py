"""Synthetic fabrics for unit tests and benchmarks: leaf-spine, 3-tier, asymmetric.

Fabrics are built from switch names and cables with the same model types the
controller uses (the graph comes from ``graph_of``), so routing code sees
exactly what it sees on a live fabric. Ports are numbered per switch in cable
order starting at 1; host ports on a leaf come after its fabric ports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import networkx as nx

from controller.fabric.model import Dpid, FiveTuple, Link, LinkId, PortRef, Switch, graph_of
from controller.routing.strategies import NetworkView

__all__ = ["Fabric", "leaf_spine", "three_tier", "asymmetric", "five_tuple"]

MBIT = 1e6
GBIT = 1e9


@dataclass
class Fabric:
    """A built fabric: its graph, link capacities and switch names."""

    graph: nx.DiGraph
    capacity: dict[LinkId, float]
    names: dict[Dpid, str]
    leaves: list[str]
    spines: list[str]
    middles: list[str] = field(default_factory=list)  # aggregation switches (3-tier)
    _dpids: dict[str, Dpid] = field(default_factory=dict)
    _host_base: dict[str, int] = field(default_factory=dict)

    def dpid(self, name: str) -> Dpid:
        return self._dpids[name]

    def link(self, a: str, b: str) -> LinkId:
        """The directed link a -> b (KeyError if there is none)."""
        lid: LinkId = self.graph.adj[self.dpid(a)][self.dpid(b)]["link"]
        return lid

    def cable(self, a: str, b: str) -> list[LinkId]:
        """Both directions of the cable between a and b."""
        return [self.link(a, b), self.link(b, a)]

    def links_of(self, name: str) -> list[LinkId]:
        """Every directed link that starts or ends at switch ``name``."""
        d = self.dpid(name)
        out = [attrs["link"] for _, _, attrs in self.graph.out_edges(d, data=True)]
        out += [attrs["link"] for _, _, attrs in self.graph.in_edges(d, data=True)]
        return sorted(out)

    def host_port(self, leaf: str, index: int = 0) -> PortRef:
        """A host-facing port of ``leaf`` (index 0, 1, ...)."""
        return PortRef(self.dpid(leaf), self._host_base[leaf] + index)

    def path_names(self, switches: Iterable[Dpid]) -> tuple[str, ...]:
        return tuple(self.names[d] for d in switches)

    def view(
        self,
        *,
        load: Mapping[LinkId, float] | None = None,
        drained: Iterable[LinkId] = (),
        graph: nx.DiGraph | None = None,
    ) -> NetworkView:
        return NetworkView(
            graph=self.graph if graph is None else graph,
            capacity=self.capacity,
            load_bps=dict(load or {}),
            drained=frozenset(drained),
            names=self.names,
        )

    def graph_without(
        self, *, switches: Iterable[str] = (), links: Iterable[LinkId] = ()
    ) -> nx.DiGraph:
        """A new graph (new object = new version) without some switches and links."""
        g = self.graph.copy()
        g.remove_nodes_from([self.dpid(s) for s in switches])
        for lid in links:
            if g.has_edge(lid.src.dpid, lid.dst.dpid):
                g.remove_edge(lid.src.dpid, lid.dst.dpid)
        return g


def _build(
    switches: list[tuple[str, Dpid]],
    cables: list[tuple[str, str, float]],
    *,
    leaves: list[str],
    spines: list[str],
    middles: list[str] | None = None,
) -> Fabric:
    dpids = dict(switches)
    next_port = dict.fromkeys(dpids, 1)
    links: dict[LinkId, Link] = {}
    capacity: dict[LinkId, float] = {}
    for a, b, cap in cables:
        pa = PortRef(dpids[a], next_port[a])
        pb = PortRef(dpids[b], next_port[b])
        next_port[a] += 1
        next_port[b] += 1
        for lid in (LinkId(pa, pb), LinkId(pb, pa)):
            links[lid] = Link(link_id=lid, last_seen=0.0, capacity_bps=cap)
            capacity[lid] = cap
    sws = {d: Switch(dpid=d, name=n) for n, d in switches}
    return Fabric(
        graph=graph_of(sws, links),
        capacity=capacity,
        names={d: n for n, d in switches},
        leaves=leaves,
        spines=spines,
        middles=middles or [],
        _dpids=dpids,
        _host_base={leaf: next_port[leaf] for leaf in leaves},
    )


def leaf_spine(spines: int, leaves: int, *, capacity_bps: float = 10 * GBIT) -> Fabric:
    """Every leaf cabled to every spine; leaf i's uplink p goes to spine p."""
    spine_names = [f"spine{s}" for s in range(1, spines + 1)]
    leaf_names = [f"leaf{i}" for i in range(1, leaves + 1)]
    switches = [(n, 0x1000 + i) for i, n in enumerate(leaf_names, 1)]
    switches += [(n, 0x100000 + s) for s, n in enumerate(spine_names, 1)]
    cables = [(leaf, spine, capacity_bps) for leaf in leaf_names for spine in spine_names]
    return _build(switches, cables, leaves=leaf_names, spines=spine_names)


def three_tier(
    *,
    pods: int,
    leaves_per_pod: int,
    aggs_per_pod: int,
    spines: int,
    capacity_bps: float = 10 * GBIT,
) -> Fabric:
    """Leaves to every aggregation switch of their pod; every aggregation switch to
    every spine. Leaves are named leaf<pod>-<i>, aggregation switches agg<pod>-<a>."""
    leaf_names: list[str] = []
    agg_names: list[str] = []
    switches: list[tuple[str, Dpid]] = []
    cables: list[tuple[str, str, float]] = []
    spine_names = [f"spine{s}" for s in range(1, spines + 1)]
    for p in range(1, pods + 1):
        aggs = [f"agg{p}-{a}" for a in range(1, aggs_per_pod + 1)]
        agg_names += aggs
        switches += [(n, 0x20000 + p * 0x100 + a) for a, n in enumerate(aggs, 1)]
        for i in range(1, leaves_per_pod + 1):
            leaf = f"leaf{p}-{i}"
            leaf_names.append(leaf)
            switches.append((leaf, 0x1000 + p * 0x100 + i))
            cables += [(leaf, agg, capacity_bps) for agg in aggs]
    switches += [(n, 0x100000 + s) for s, n in enumerate(spine_names, 1)]
    cables += [(agg, spine, capacity_bps) for agg in agg_names for spine in spine_names]
    return _build(switches, cables, leaves=leaf_names, spines=spine_names, middles=agg_names)


def asymmetric() -> Fabric:
    """Two spines of different speed and a leaf with a missing cable.

    leaf1..leaf3 reach spine1 at 10 Gbit/s; leaf1 and leaf2 reach spine2 at
    40 Gbit/s; leaf3 has no cable to spine2, so leaf1 <-> leaf3 has one
    shortest path while leaf1 <-> leaf2 has two of unequal capacity.
    """
    switches = [("leaf1", 0x1001), ("leaf2", 0x1002), ("leaf3", 0x1003)]
    switches += [("spine1", 0x100001), ("spine2", 0x100002)]
    cables = [
        ("leaf1", "spine1", 10 * GBIT),
        ("leaf2", "spine1", 10 * GBIT),
        ("leaf3", "spine1", 10 * GBIT),
        ("leaf1", "spine2", 40 * GBIT),
        ("leaf2", "spine2", 40 * GBIT),
    ]
    return _build(switches, cables, leaves=["leaf1", "leaf2", "leaf3"], spines=["spine1", "spine2"])


def five_tuple(i: int, *, proto: int = 17, dst_port: int = 4791) -> FiveTuple:
    """The i-th distinct synthetic flow (distinct source IP and port per i)."""
    return FiveTuple(
        src_ip=f"10.{(i >> 16) & 0xFF}.{(i >> 8) & 0xFF}.{i & 0xFF}",
        dst_ip="10.200.0.1",
        ip_proto=proto,
        src_port=1024 + i % 50000,
        dst_port=dst_port,
    )
