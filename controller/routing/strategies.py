"""Routing strategies: pick one path for one flow among its candidate paths.

Given the candidates (all shortest paths, sorted), a :class:`NetworkView` of
measured link load and capacity, and the governing policy, each strategy
returns a :class:`Choice`: the path, whether a pinned policy had to fall back,
and a short reason a person can read. :func:`rank_paths` orders all the
candidates the same way, for the rebalancer's "first path that fits".

Pure functions: no state between calls, no clocks, no unseeded randomness
(hashes are seeded and stable across processes). This module never changes
the fabric or the flow table; the traffic engineer does that with the result.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import networkx as nx
import numpy as np

from controller.errors import InvalidArgument
from controller.fabric.model import Dpid, FiveTuple, LinkId, Path
from controller.policy.model import Policy, Strategy
from controller.routing.hashing import flow_bucket, flow_key, path_key, rendezvous_unit
from controller.routing.paths import PathCache
from controller.routing.scoring import least_utilized_keys, lexi_best, lexi_order, widest_keys
from controller.routing.viewbase import ViewBase

__all__ = [
    "FabricView",
    "NetworkView",
    "FlowRequest",
    "Choice",
    "usable_candidates",
    "choose_path",
    "rank_paths",
    "pinned_route",
    "load_reason",
    "rendezvous_scores",
    "weighted_pick",
    "ecmp_pick",
    "shortest_reason",
    "fallback_of",
]

_NO_EXTRA: Mapping[LinkId, float] = {}


class FabricView(Protocol):
    """What the strategies read about the fabric: a :class:`NetworkView` snapshot or
    the long-lived :class:`~controller.routing.fabricstate.FabricState`."""

    @property
    def graph(self) -> nx.DiGraph: ...
    @property
    def load_bps(self) -> Mapping[LinkId, float]: ...
    @property
    def capacity(self) -> Mapping[LinkId, float]: ...
    @property
    def drained(self) -> frozenset[LinkId]: ...
    @property
    def unknown_capacity_bps(self) -> float: ...
    @property
    def names(self) -> Mapping[Dpid, str]: ...
    def capacity_of(self, lid: LinkId) -> float: ...
    def utilization(self, lid: LinkId, *, extra_bps: float = 0.0) -> float: ...
    def label(self, dpid: Dpid) -> str: ...
    def dpid_of(self, ref: str) -> Dpid | None: ...
    def path_label(self, path: Path) -> str: ...


@dataclass(frozen=True)
class NetworkView(ViewBase):
    """What the strategies may know about the fabric at one instant.

    ``graph`` is :func:`controller.fabric.model.graph_of` output (up links only),
    ``capacity`` and ``load_bps`` are per directed link in bits/s (capacity 0 or
    missing = unknown, then ``unknown_capacity_bps`` stands in so loads still
    compare), ``drained`` links are up but must not carry new placements, and
    ``names`` gives switch names for policies that name switches.
    """

    graph: nx.DiGraph
    capacity: Mapping[LinkId, float] = field(default_factory=dict)
    load_bps: Mapping[LinkId, float] = field(default_factory=dict)
    drained: frozenset[LinkId] = frozenset()
    names: Mapping[Dpid, str] = field(default_factory=dict)
    unknown_capacity_bps: float = 1e9

    @cached_property
    def _by_name(self) -> dict[str, Dpid]:
        return {name: dpid for dpid, name in self.names.items() if name}

    @classmethod
    def with_load(cls, view: FabricView, load_bps: Mapping[LinkId, float]) -> NetworkView:
        """``view`` (a snapshot or the kept state) as a snapshot carrying ``load_bps``."""
        return cls(
            graph=view.graph,
            capacity=view.capacity,
            load_bps=load_bps,
            drained=view.drained,
            names=view.names,
            unknown_capacity_bps=view.unknown_capacity_bps,
        )


@dataclass(frozen=True)
class FlowRequest:
    """A flow to route: its identity, the leaves its hosts hang on, its expected rate."""

    five_tuple: FiveTuple
    ingress: Dpid
    egress: Dpid
    demand_bps: float = 0.0


@dataclass(frozen=True)
class Choice:
    """The chosen path, the strategy that chose it, and why (a short sentence)."""

    path: Path
    strategy: Strategy  # the strategy that actually chose (the fallback if fell_back)
    fell_back: bool
    reason: str
    # The path's link slots in the fabric state that chose it, when the fast path
    # did (saves looking the links up again); not part of the choice's value.
    slots: tuple[int, ...] = field(default=(), compare=False, repr=False)


def usable_candidates(
    paths: PathCache,
    *,
    src: Dpid,
    dst: Dpid,
    view: FabricView,
    avoid: frozenset[LinkId] = frozenset(),
) -> tuple[list[Path], str]:
    """Candidates for ``src -> dst`` without drained links and without ``avoid`` (down).

    Returns (paths, note). When every shortest path crosses a drained link a
    longer detour is tried; when there is none either, the drained paths are
    kept (with a note saying so) rather than blackholing the flow. Links in
    ``avoid`` are never used.
    """
    base = paths.paths(src, dst)
    if not base:
        return [], f"no path from {view.label(src)} to {view.label(dst)}"
    blocked = view.drained | avoid
    if not blocked:
        return base, ""
    clean = [p for p in base if not any(lid in blocked for lid in p.links)]
    if clean:
        return clean, ""
    detour = paths.without(blocked).paths(src, dst)
    if detour:
        return detour, "every shortest path crosses a drained or down link; using a detour"
    alive = paths.without(avoid).paths(src, dst) if avoid else base
    if alive:
        return alive, "every path crosses a drained link; keeping drained links over dropping"
    return [], f"no surviving path from {view.label(src)} to {view.label(dst)}"


# --------------------------------------------------------------------- scoring
def _hop_arrays(
    candidates: Sequence[Path], view: FabricView, extra: Mapping[LinkId, float]
) -> list[tuple[list[int], list[np.ndarray], list[np.ndarray]]]:
    """Per hop count: (candidate indices, used load per hop, capacity per hop).

    Shortest paths all have one length; grouping keeps arbitrary candidate
    lists (e.g. given by a caller) scored exactly like a per-path loop would.
    """
    load_get, extra_get, cap_get = view.load_bps.get, extra.get, view.capacity.get
    unknown = view.unknown_capacity_bps
    groups: dict[int, list[int]] = {}
    for i, path in enumerate(candidates):
        groups.setdefault(len(path.links), []).append(i)
    out = []
    for hops, members in groups.items():
        used = [
            np.fromiter(
                (
                    load_get(lid, 0.0) + extra_get(lid, 0.0)
                    for lid in (candidates[i].links[h] for i in members)
                ),
                dtype=np.float64,
                count=len(members),
            )
            for h in range(hops)
        ]
        caps = []
        for h in range(hops):
            cap = np.fromiter(
                (cap_get(candidates[i].links[h], 0.0) for i in members),
                dtype=np.float64,
                count=len(members),
            )
            cap[~(cap > 0.0)] = unknown
            caps.append(cap)
        out.append((members, used, caps))
    return out


def _load_keys(
    kind: Strategy,
    candidates: Sequence[Path],
    view: FabricView,
    extra: Mapping[LinkId, float],
    demand: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Least-utilized keys (peak, total) or widest keys (-residual, total) per candidate."""
    n = len(candidates)
    primary, secondary = np.zeros(n), np.zeros(n)
    keys = least_utilized_keys if kind is Strategy.LEAST_UTILIZED else widest_keys
    for members, used, caps in _hop_arrays(candidates, view, extra):
        first, second = keys(used, caps, demand, n=len(members))
        primary[members] = first
        secondary[members] = second
    return primary, secondary


def _route_weight(switches: Sequence[Dpid], weights: Mapping[Dpid, float]) -> float:
    w = 1.0
    for dpid in switches:
        w *= weights.get(dpid, 1.0)
    return w


def _resolve_weights(policy: Policy, view: FabricView) -> dict[Dpid, float]:
    resolved: dict[Dpid, float] = {}
    for ref, weight in policy.weights:
        dpid = view.dpid_of(ref)
        if dpid is not None:
            resolved[dpid] = weight
    return resolved


def rendezvous_scores(
    routes: Sequence[Sequence[Dpid]],
    ft: FiveTuple,
    view: FabricView,
    policy: Policy,
    seed: int,
) -> list[tuple[float, int]]:
    """(score, index) for candidate routes (switch sequences) of positive weight;
    the highest score wins."""
    weights = _resolve_weights(policy, view)
    key = flow_key(ft, seed=seed)
    scores = []
    for i, switches in enumerate(routes):
        w = _route_weight(switches, weights)
        if w > 0:
            u = rendezvous_unit(key, path_key(switches))
            scores.append((-w / math.log(u), i))
    return scores


def weighted_pick(
    routes: Sequence[Sequence[Dpid]],
    ft: FiveTuple,
    view: FabricView,
    policy: Policy,
    seed: int,
) -> tuple[int, str]:
    """``weighted``'s choice among ``routes`` (in candidate order) and its reason."""
    n = len(routes)
    scores = rendezvous_scores(routes, ft, view, policy, seed)
    if not scores:
        i = flow_bucket(ft, n, seed=seed)
        return i, f"weighted: every candidate weighs 0; hashed over all {n}"
    _, i = max(scores)
    return i, f"weighted: rendezvous over {len(scores)} of {n} paths with weight > 0"


def ecmp_pick(ft: FiveTuple, n: int, seed: int) -> tuple[int, str]:
    """``ecmp``'s choice among ``n`` candidates and its reason."""
    i = flow_bucket(ft, n, seed=seed)
    return i, f"ecmp: hash bucket {i} of {n}"


def shortest_reason(n: int) -> str:
    return f"shortest: first of {n} sorted paths"


# ------------------------------------------------------------------- choosing
def load_reason(strategy: Strategy, key: float, n: int) -> str:
    """Why a load-aware strategy chose: its winning key (peak utilization, or the
    negated bottleneck residual) among ``n`` candidates."""
    if strategy is Strategy.LEAST_UTILIZED:
        return f"least-utilized: peak utilization {key:.0%} (best of {n})"
    return f"widest: bottleneck residual {-key / 1e6:.1f} Mbit/s (best of {n})"


def choose_path(
    strategy: Strategy,
    candidates: Sequence[Path],
    *,
    flow: FlowRequest,
    view: FabricView,
    policy: Policy,
    seed: int,
    extra_load: Mapping[LinkId, float] = _NO_EXTRA,
    paths: PathCache | None = None,
    avoid: frozenset[LinkId] = frozenset(),
) -> Choice:
    """Pick one of ``candidates`` (sorted, all ``flow.ingress -> flow.egress``).

    ``extra_load`` is load not yet visible in ``view.load_bps`` (recent
    placements); ``paths`` (the cache of ``view.graph``) is used by ``pinned``
    to reach the pinned switches; ``avoid`` are links known down.
    """
    if strategy is Strategy.PINNED:
        route, why = pinned_route(flow, view=view, policy=policy, paths=paths, avoid=avoid)
        if route is not None:
            return Choice(route, Strategy.PINNED, False, f"pinned: {view.path_label(route)}")
        fallback = fallback_of(policy)
        if not candidates:
            raise InvalidArgument(
                "candidates", f"pinned path impossible ({why}) and no candidate to fall back on"
            )
        inner = choose_path(
            fallback,
            candidates,
            flow=flow,
            view=view,
            policy=policy,
            seed=seed,
            extra_load=extra_load,
        )
        reason = f"pinned path impossible ({why}); fell back to {fallback.value}: {inner.reason}"
        return Choice(inner.path, fallback, True, reason)
    if not candidates:
        raise InvalidArgument(
            "candidates",
            f"no candidate path from {view.label(flow.ingress)} to {view.label(flow.egress)}",
        )
    n = len(candidates)
    if strategy is Strategy.SHORTEST:
        return Choice(candidates[0], strategy, False, shortest_reason(n))
    if strategy is Strategy.ECMP:
        i, reason = ecmp_pick(flow.five_tuple, n, seed)
        return Choice(candidates[i], strategy, False, reason)
    if strategy in (Strategy.LEAST_UTILIZED, Strategy.WIDEST):
        first, second = _load_keys(strategy, candidates, view, extra_load, flow.demand_bps)
        i = lexi_best(first, second)
        return Choice(candidates[i], strategy, False, load_reason(strategy, float(first[i]), n))
    if strategy is Strategy.WEIGHTED:
        routes = [p.switches for p in candidates]
        i, reason = weighted_pick(routes, flow.five_tuple, view, policy, seed)
        return Choice(candidates[i], strategy, False, reason)
    raise InvalidArgument("strategy", f"unsupported strategy {strategy!r}")


def rank_paths(
    strategy: Strategy,
    candidates: Sequence[Path],
    *,
    flow: FlowRequest,
    view: FabricView,
    policy: Policy,
    seed: int,
    extra_load: Mapping[LinkId, float] = _NO_EXTRA,
) -> list[Path]:
    """All ``candidates`` in the order ``strategy`` prefers them (best first).

    ``pinned`` ranks like its fallback: the rebalancer only ranks flows that
    are not on their pinned path. ``weighted`` leaves out weight-0 paths.
    """
    if strategy is Strategy.PINNED:
        strategy = fallback_of(policy)
    n = len(candidates)
    if n == 0 or strategy is Strategy.SHORTEST:
        return list(candidates)
    if strategy is Strategy.ECMP:
        i = flow_bucket(flow.five_tuple, n, seed=seed)
        return [*candidates[i:], *candidates[:i]]
    if strategy in (Strategy.LEAST_UTILIZED, Strategy.WIDEST):
        first, second = _load_keys(strategy, candidates, view, extra_load, flow.demand_bps)
        return [candidates[int(k)] for k in lexi_order(first, second)]
    if strategy is Strategy.WEIGHTED:
        routes = [p.switches for p in candidates]
        scores = sorted(
            rendezvous_scores(routes, flow.five_tuple, view, policy, seed), reverse=True
        )
        return [candidates[i] for _, i in scores]
    raise InvalidArgument("strategy", f"unsupported strategy {strategy!r}")


def fallback_of(policy: Policy) -> Strategy:
    # A pinned fallback would recurse; validation should reject it, and a
    # deterministic choice is the safest reading if it slips through.
    return Strategy.SHORTEST if policy.fallback is Strategy.PINNED else policy.fallback


# --------------------------------------------------------------------- pinned
def pinned_route(
    flow: FlowRequest,
    *,
    view: FabricView,
    policy: Policy,
    paths: PathCache | None = None,
    avoid: frozenset[LinkId] = frozenset(),
) -> tuple[Path | None, str]:
    """The policy's pinned path for ``flow``, or (None, what broke).

    The named switches must be consecutive on the path; a shortest path from
    the ingress to the first one is prepended and one from the last one to the
    egress appended. Every link must be up and undrained, and no switch may
    repeat.
    """
    if not policy.pinned_path:
        return None, "the policy names no pinned_path"
    if paths is None or paths.graph is not view.graph:
        paths = PathCache(view.graph)
    graph = view.graph
    named: list[Dpid] = []
    for ref in policy.pinned_path:
        dpid = view.dpid_of(ref)
        if dpid is None or dpid not in graph:
            return None, f"pinned switch {ref!r} is not in the fabric"
        named.append(dpid)
    blocked = view.drained | avoid
    middle: list[LinkId] = []
    for a, b in itertools.pairwise(named):
        edge = graph.adj[a].get(b)
        lid: LinkId | None = None if edge is None else edge["link"]
        if lid is None or lid in avoid:
            return None, f"pinned hop {view.label(a)} -> {view.label(b)} is down"
        if lid in view.drained:
            return None, f"pinned hop {view.label(a)} -> {view.label(b)} is drained"
        middle.append(lid)
    used = set(named)
    if len(used) != len(named):
        return None, "the pinned path repeats a switch"
    head = _connector(paths, flow.ingress, named[0], blocked=blocked, taken=used, join=named[0])
    if head is None:
        return None, (
            f"no usable path from ingress {view.label(flow.ingress)} "
            f"to pinned switch {view.label(named[0])}"
        )
    used.update(head.switches)
    tail = _connector(paths, named[-1], flow.egress, blocked=blocked, taken=used, join=named[-1])
    if tail is None:
        return None, (
            f"no usable path from pinned switch {view.label(named[-1])} "
            f"to egress {view.label(flow.egress)}"
        )
    links = (*head.links, *middle, *tail.links)
    if not links:
        return Path(switches=(named[0],)), ""
    return Path.of_links(links), ""


def _connector(
    paths: PathCache,
    src: Dpid,
    dst: Dpid,
    *,
    blocked: frozenset[LinkId],
    taken: set[Dpid],
    join: Dpid,
) -> Path | None:
    """First shortest path src -> dst avoiding ``blocked`` links and every switch in
    ``taken`` except ``join``, where it meets the pinned segment."""
    if src == dst:
        return Path(switches=(src,))
    for path in paths.paths(src, dst):
        if any(lid in blocked for lid in path.links):
            continue
        if not any(s in taken and s != join for s in path.switches):
            return path
    return None
