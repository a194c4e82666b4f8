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

import networkx as nx

from controller.errors import InvalidArgument
from controller.fabric.model import Dpid, FiveTuple, LinkId, Path, dpid_str
from controller.policy.model import Policy, Strategy
from controller.routing.hashing import flow_bucket, flow_key, path_key, rendezvous_unit
from controller.routing.paths import PathCache

__all__ = [
    "NetworkView",
    "FlowRequest",
    "Choice",
    "usable_candidates",
    "choose_path",
    "rank_paths",
    "pinned_route",
    "path_weight",
]

_NO_EXTRA: Mapping[LinkId, float] = {}


@dataclass(frozen=True)
class NetworkView:
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

    def capacity_of(self, lid: LinkId) -> float:
        cap = self.capacity.get(lid, 0.0)
        return cap if cap > 0 else self.unknown_capacity_bps

    def label(self, dpid: Dpid) -> str:
        return self.names.get(dpid) or dpid_str(dpid)

    @cached_property
    def _dpid_by_name(self) -> dict[str, Dpid]:
        return {name: dpid for dpid, name in self.names.items() if name}

    def dpid_of(self, ref: str) -> Dpid | None:
        """The switch a policy names: by switch name, else as a 16-hex-digit dpid."""
        dpid = self._dpid_by_name.get(ref)
        if dpid is not None:
            return dpid
        if len(ref) == 16:
            try:
                return int(ref, 16)
            except ValueError:
                return None
        return None

    def path_label(self, path: Path) -> str:
        return " -> ".join(self.label(d) for d in path.switches)


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


def usable_candidates(
    paths: PathCache,
    *,
    src: Dpid,
    dst: Dpid,
    view: NetworkView,
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
def _utilization_keys(
    candidates: Sequence[Path], view: NetworkView, extra: Mapping[LinkId, float], demand: float
) -> list[tuple[float, float, int]]:
    """(peak utilization, sum of utilizations, index) per candidate, this flow included."""
    # Bound methods hoisted out of the loop: this runs for every candidate of
    # every placement (64 paths per flow on a 64-spine fabric).
    load_get, extra_get, cap_get = view.load_bps.get, extra.get, view.capacity.get
    unknown = view.unknown_capacity_bps
    keys = []
    for i, path in enumerate(candidates):
        peak = total = 0.0
        for lid in path.links:
            used = load_get(lid, 0.0) + extra_get(lid, 0.0)
            cap = cap_get(lid, 0.0)
            u = ((used if used > 0.0 else 0.0) + demand) / (cap if cap > 0.0 else unknown)
            total += u
            if u > peak:
                peak = u
        keys.append((peak, total, i))
    return keys


def _widest_keys(
    candidates: Sequence[Path], view: NetworkView, extra: Mapping[LinkId, float], demand: float
) -> list[tuple[float, float, int]]:
    """(-bottleneck residual bits/s, sum of utilizations, index) per candidate."""
    load_get, extra_get, cap_get = view.load_bps.get, extra.get, view.capacity.get
    unknown = view.unknown_capacity_bps
    keys = []
    for i, path in enumerate(candidates):
        residual = math.inf
        total = 0.0
        for lid in path.links:
            used = load_get(lid, 0.0) + extra_get(lid, 0.0)
            if used < 0.0:
                used = 0.0
            cap = cap_get(lid, 0.0)
            if cap <= 0.0:
                cap = unknown
            if cap - used < residual:
                residual = cap - used
            total += (used + demand) / cap
        keys.append((-residual, total, i))
    return keys


def path_weight(path: Path, weights: Mapping[Dpid, float]) -> float:
    """Product of the weights of the path's switches (unlisted switches weigh 1)."""
    w = 1.0
    for dpid in path.switches:
        w *= weights.get(dpid, 1.0)
    return w


def _resolve_weights(policy: Policy, view: NetworkView) -> dict[Dpid, float]:
    resolved: dict[Dpid, float] = {}
    for ref, weight in policy.weights:
        dpid = view.dpid_of(ref)
        if dpid is not None:
            resolved[dpid] = weight
    return resolved


def _rendezvous_scores(
    candidates: Sequence[Path], flow: FlowRequest, view: NetworkView, policy: Policy, seed: int
) -> list[tuple[float, int]]:
    """(score, index) for candidates of positive weight; the highest score wins."""
    weights = _resolve_weights(policy, view)
    key = flow_key(flow.five_tuple, seed=seed)
    scores = []
    for i, path in enumerate(candidates):
        w = path_weight(path, weights)
        if w > 0:
            u = rendezvous_unit(key, path_key(path.switches))
            scores.append((-w / math.log(u), i))
    return scores


# ------------------------------------------------------------------- choosing
def choose_path(
    strategy: Strategy,
    candidates: Sequence[Path],
    *,
    flow: FlowRequest,
    view: NetworkView,
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
        fallback = _fallback_of(policy)
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
        return Choice(candidates[0], strategy, False, f"shortest: first of {n} sorted paths")
    if strategy is Strategy.ECMP:
        i = flow_bucket(flow.five_tuple, n, seed=seed)
        return Choice(candidates[i], strategy, False, f"ecmp: hash bucket {i} of {n}")
    if strategy is Strategy.LEAST_UTILIZED:
        peak, _, i = min(_utilization_keys(candidates, view, extra_load, flow.demand_bps))
        reason = f"least-utilized: peak utilization {peak:.0%} (best of {n})"
        return Choice(candidates[i], strategy, False, reason)
    if strategy is Strategy.WIDEST:
        neg_residual, _, i = min(_widest_keys(candidates, view, extra_load, flow.demand_bps))
        reason = f"widest: bottleneck residual {-neg_residual / 1e6:.1f} Mbit/s (best of {n})"
        return Choice(candidates[i], strategy, False, reason)
    if strategy is Strategy.WEIGHTED:
        scores = _rendezvous_scores(candidates, flow, view, policy, seed)
        if not scores:
            i = flow_bucket(flow.five_tuple, n, seed=seed)
            reason = f"weighted: every candidate weighs 0; hashed over all {n}"
            return Choice(candidates[i], strategy, False, reason)
        _, i = max(scores)
        reason = f"weighted: rendezvous over {len(scores)} of {n} paths with weight > 0"
        return Choice(candidates[i], strategy, False, reason)
    raise InvalidArgument("strategy", f"unsupported strategy {strategy!r}")


def rank_paths(
    strategy: Strategy,
    candidates: Sequence[Path],
    *,
    flow: FlowRequest,
    view: NetworkView,
    policy: Policy,
    seed: int,
    extra_load: Mapping[LinkId, float] = _NO_EXTRA,
) -> list[Path]:
    """All ``candidates`` in the order ``strategy`` prefers them (best first).

    ``pinned`` ranks like its fallback: the rebalancer only ranks flows that
    are not on their pinned path. ``weighted`` leaves out weight-0 paths.
    """
    if strategy is Strategy.PINNED:
        strategy = _fallback_of(policy)
    n = len(candidates)
    if n == 0 or strategy is Strategy.SHORTEST:
        return list(candidates)
    if strategy is Strategy.ECMP:
        i = flow_bucket(flow.five_tuple, n, seed=seed)
        return [*candidates[i:], *candidates[:i]]
    if strategy is Strategy.LEAST_UTILIZED:
        keys = sorted(_utilization_keys(candidates, view, extra_load, flow.demand_bps))
        return [candidates[k[2]] for k in keys]
    if strategy is Strategy.WIDEST:
        keys = sorted(_widest_keys(candidates, view, extra_load, flow.demand_bps))
        return [candidates[k[2]] for k in keys]
    if strategy is Strategy.WEIGHTED:
        scores = sorted(_rendezvous_scores(candidates, flow, view, policy, seed), reverse=True)
        return [candidates[i] for _, i in scores]
    raise InvalidArgument("strategy", f"unsupported strategy {strategy!r}")


def _fallback_of(policy: Policy) -> Strategy:
    # A pinned fallback would recurse; validation should reject it, and a
    # deterministic choice is the safest reading if it slips through.
    return Strategy.SHORTEST if policy.fallback is Strategy.PINNED else policy.fallback


# --------------------------------------------------------------------- pinned
def pinned_route(
    flow: FlowRequest,
    *,
    view: NetworkView,
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
