"""The simulated fabric: a leaf-spine, its hosts, and every link as an index.

Switch-to-switch links are numbered by the slots of the controller's own
:class:`~controller.routing.fabricstate.FabricState`, so a path the placement
core chooses turns into link indices without translation; each host adds two
links after them (its NIC towards the leaf and back). The *pooled* view used
for the bound numbers hosts the same way and replaces each leaf's uplinks
(and downlinks) by one link of their summed capacity, as if every flow could
be sprayed over every spine.

Knows capacities and which links are down; never chooses paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controller.fabric.model import FiveTuple, LinkId, Path, PortRef
from controller.routing.fabricstate import FabricState

__all__ = ["SimFabric", "build_fabric", "MAX_HOSTS"]

MAX_HOSTS = 16_384


@dataclass
class SimFabric:
    fab: Any  # the synthetic fabric (graph, names, leaves, spines, host_port)
    state: FabricState
    hosts_per_leaf: int
    link_bps: float
    nic_bps: float
    capacity: np.ndarray  # per link index: fabric slots, then two per host
    pooled_capacity: np.ndarray  # per pooled index: two per host, then up/down per leaf
    down: set[LinkId] = field(default_factory=set)

    @property
    def hosts(self) -> int:
        return len(self.fab.leaves) * self.hosts_per_leaf

    @property
    def host_base(self) -> int:
        return self.state.layout.size

    def leaf_of(self, host: int) -> int:
        return host // self.hosts_per_leaf

    def port(self, host: int) -> PortRef:
        leaf, index = divmod(host, self.hosts_per_leaf)
        port: PortRef = self.fab.host_port(self.fab.leaves[leaf], index)
        return port

    def ip(self, host: int) -> str:
        leaf, index = divmod(host, self.hosts_per_leaf)
        return f"10.{leaf >> 8}.{leaf & 0xFF}.{index + 1}"

    def five_tuple(self, src: int, dst: int, sport: int) -> FiveTuple:
        return FiveTuple(self.ip(src), self.ip(dst), 17, sport, 4791)

    def links_of(self, path: Path, src: int, dst: int) -> np.ndarray:
        """A placed path between two hosts as link indices (NICs included)."""
        index = self.state.layout.index
        fabric = [index[lid] for lid in path.links]
        base = self.host_base
        return np.array([base + 2 * src, *fabric, base + 2 * dst + 1], dtype=np.int64)

    def pooled_links(self, src: int, dst: int) -> np.ndarray:
        """The pooled route between two hosts: NICs and, across leaves, the pooled
        uplinks of the source leaf and downlinks of the destination leaf."""
        hosts = self.hosts
        a, b = self.leaf_of(src), self.leaf_of(dst)
        if a == b:
            return np.array([2 * src, 2 * dst + 1], dtype=np.int64)
        return np.array(
            [2 * src, 2 * hosts + 2 * a, 2 * hosts + 2 * b + 1, 2 * dst + 1], dtype=np.int64
        )

    def fail(self, links: Iterable[LinkId]) -> list[LinkId]:
        """Take links down: capacity 0, the state told, pooled capacities reduced.
        Returns the links that were up."""
        lost = [lid for lid in links if lid not in self.down]
        leaves = {self.fab.dpid(name): i for i, name in enumerate(self.fab.leaves)}
        hosts = self.hosts
        for lid in lost:
            self.down.add(lid)
            self.capacity[self.state.layout.slot(lid)] = 0.0
            self.state.link_down(lid)
            if lid.src.dpid in leaves:  # an uplink of its leaf
                self.pooled_capacity[2 * hosts + 2 * leaves[lid.src.dpid]] -= self.link_bps
            if lid.dst.dpid in leaves:  # a downlink into its leaf
                self.pooled_capacity[2 * hosts + 2 * leaves[lid.dst.dpid] + 1] -= self.link_bps
        return lost

    def spine_links(self, spine: str) -> list[LinkId]:
        links: list[LinkId] = self.fab.links_of(spine)
        return links

    def cable(self, leaf: str, spine: str) -> list[LinkId]:
        cable: list[LinkId] = self.fab.cable(leaf, spine)
        return cable


def build_fabric(
    *,
    spines: int,
    leaves: int,
    hosts_per_leaf: int,
    link_gbps: float,
    nic_gbps: float,
    synthetic: Any,
) -> SimFabric:
    """A full-mesh leaf-spine (``synthetic`` builds it) with hosts on every leaf."""
    link_bps, nic_bps = link_gbps * 1e9, nic_gbps * 1e9
    fab = synthetic.leaf_spine(spines, leaves, capacity_bps=link_bps)
    state = FabricState.from_view(fab.view())
    _ = state.layout  # lays the slots out (and fills the arrays) now
    hosts = leaves * hosts_per_leaf
    capacity = np.concatenate([state.capacity_eff.copy(), np.full(2 * hosts, nic_bps)])
    capacity[: state.layout.size][~state.alive] = 0.0  # empty slots carry nothing
    pooled = np.concatenate([np.full(2 * hosts, nic_bps), np.full(2 * leaves, spines * link_bps)])
    return SimFabric(
        fab=fab,
        state=state,
        hosts_per_leaf=hosts_per_leaf,
        link_bps=link_bps,
        nic_bps=nic_bps,
        capacity=capacity,
        pooled_capacity=pooled,
    )
