"""Joint placement: paths for all flows of a job (or all elephants) at once.

Per-flow placement decides one flow at a time and can corner itself: on a
leaf-spine where no leaf sends or receives more flows than there are spines,
every flow can have links to itself, yet greedy choices often miss that. This
module places a whole set of (source switch, destination switch, demand)
pairs together, counting the load already on the fabric (measured traffic
and other jobs: the view's ``load_bps`` is taken as background, i.e. load
that is *not* from these pairs; :func:`background_without` removes their own
measured share). It minimises the most loaded link and, among placements
that good, moves the fewest pairs off their ``previous`` paths.

- A 2-tier leaf-spine (every pair's switches connect only to switches that
  connect only to such leaves, and each pair shares a usable spine) is
  solved as a bipartite edge colouring (:mod:`controller.te.leafspine`):
  optimal for flows of one rate on equal links (Koenig).
- Anything else (3-tier, leaves without a common spine, mixed rates) is a
  min-max assignment over each pair's shortest paths
  (:mod:`controller.te.minmax`): local search, and HiGHS's exact MILP when the
  problem is small enough.

Drained links are avoided like :func:`usable_candidates` does (a detour if
one exists, else the drained paths rather than none); links missing from the
view's graph are down. Deterministic for the same inputs. Plain data in and
out: the engine applies the plan (rules, make-before-break), not this module.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from controller.fabric.model import Dpid, LinkId, Path
from controller.routing.paths import PathCache
from controller.routing.strategies import FabricView, NetworkView, usable_candidates
from controller.te.leafspine import NO_SPINE, LeafSpineProblem, solve_leaf_spine
from controller.te.minmax import MILP_MAX_VARIABLES, AssignmentProblem, solve_assignment

__all__ = [
    "PairDemand",
    "PairPlacement",
    "JointPlan",
    "place_jointly",
    "rebalance_elephants",
    "background_without",
    "leaf_spine_layout",
]


@dataclass(frozen=True)
class PairDemand:
    """One flow to place: ``key`` is the caller's name for it (hashable, unique)."""

    key: Hashable
    src: Dpid  # ingress switch (the source host's leaf)
    dst: Dpid  # egress switch
    demand_bps: float


@dataclass(frozen=True)
class PairPlacement:
    key: Hashable
    path: Path | None  # None: no path joins the two switches
    moved: bool  # it had a previous path and now has another


@dataclass(frozen=True)
class JointPlan:
    """Where every pair goes, in the order the pairs were given."""

    placements: tuple[PairPlacement, ...]
    max_utilization: float  # highest (background + placed) / capacity on links the pairs use
    lower_bound: float  # no placement of these pairs does better (0 if not computed)
    method: str  # "colouring", "local-search", "milp", or a combination

    @property
    def moved(self) -> tuple[Hashable, ...]:
        return tuple(p.key for p in self.placements if p.moved)

    @property
    def unplaced(self) -> tuple[Hashable, ...]:
        return tuple(p.key for p in self.placements if p.path is None)

    @cached_property
    def _by_key(self) -> dict[Hashable, PairPlacement]:
        return {p.key: p for p in self.placements}

    def path_of(self, key: Hashable) -> Path | None:
        """The path of pair ``key`` (KeyError if it was not in the plan)."""
        return self._by_key[key].path


@dataclass(frozen=True)
class _Layout:
    leaves: tuple[Dpid, ...]
    spines: tuple[Dpid, ...]


def leaf_spine_layout(view: FabricView, switches: Sequence[Dpid]) -> _Layout | None:
    """Leaves and spines if ``switches`` sit like leaves of a 2-tier fabric, else None.

    That is: no two of ``switches`` are linked, and their neighbours (the
    spines) are neither among ``switches`` nor linked to each other. A leaf
    with hosts on a spine or a spine-to-spine cable fails here. A 3-tier
    fabric passes (its aggregation switches look like spines) but its
    cross-pod pairs share no spine, which the 2-tier solver checks per pair
    before it colours; a job inside one pod is a true 2-tier problem.
    """
    g = view.graph
    leaves = sorted(set(switches))
    spines: set[Dpid] = set()
    for leaf in leaves:
        if leaf not in g:
            return None
        spines.update(g.successors(leaf))
        spines.update(g.predecessors(leaf))
    if spines & set(leaves):
        return None
    for spine in spines:
        if any(n in spines for n in g.successors(spine)):
            return None
    return _Layout(leaves=tuple(leaves), spines=tuple(sorted(spines)))


def background_without(
    view: FabricView, pairs: Sequence[PairDemand], current: Mapping[Hashable, Path]
) -> dict[LinkId, float]:
    """Measured load minus what ``pairs`` themselves put on their ``current`` paths.

    Use it when the view's load was measured while these pairs were flowing,
    so their own traffic is not counted twice (never below 0).
    """
    load = dict(view.load_bps)
    for pair in pairs:
        path = current.get(pair.key)
        if path is None:
            continue
        for lid in path.links:
            load[lid] = max(0.0, load.get(lid, 0.0) - pair.demand_bps)
    return load


def _link_capacity(view: FabricView, a: Dpid, b: Dpid) -> tuple[LinkId | None, float]:
    data = view.graph.get_edge_data(a, b)
    if data is None:
        return None, 0.0
    lid: LinkId = data["link"]
    if lid in view.drained:
        return lid, 0.0
    return lid, view.capacity_of(lid)


def _solve_two_tier(
    pairs: Sequence[PairDemand],
    view: FabricView,
    layout: _Layout,
    previous: Mapping[Hashable, Path],
) -> JointPlan | None:
    leaf_at = {d: i for i, d in enumerate(layout.leaves)}
    spine_at = {d: i for i, d in enumerate(layout.spines)}
    shape = (len(layout.leaves), len(layout.spines))
    up_cap, down_cap = np.zeros(shape), np.zeros(shape)
    up_bg, down_bg = np.zeros(shape), np.zeros(shape)
    up_id: dict[tuple[int, int], LinkId] = {}
    down_id: dict[tuple[int, int], LinkId] = {}
    for leaf, li in leaf_at.items():
        for spine, si in spine_at.items():
            lid, cap = _link_capacity(view, leaf, spine)
            if lid is not None:
                up_id[li, si], up_cap[li, si] = lid, cap
                up_bg[li, si] = view.load_bps.get(lid, 0.0)
            lid, cap = _link_capacity(view, spine, leaf)
            if lid is not None:
                down_id[li, si], down_cap[li, si] = lid, cap
                down_bg[li, si] = view.load_bps.get(lid, 0.0)
    src = np.array([leaf_at[p.src] for p in pairs], dtype=np.int64)
    dst = np.array([leaf_at[p.dst] for p in pairs], dtype=np.int64)
    prev = np.full(len(pairs), NO_SPINE, dtype=np.int64)
    for k, pair in enumerate(pairs):
        path = previous.get(pair.key)
        if path is not None and len(path.switches) == 3 and path.switches[1] in spine_at:
            prev[k] = spine_at[path.switches[1]]
    common = (up_cap[src] > 0) & (down_cap[dst] > 0)
    if ((src != dst) & ~common.any(axis=1)).any():
        return None  # some pair needs more than leaf-spine-leaf (or only drained links)
    problem = LeafSpineProblem(
        up_capacity=up_cap,
        down_capacity=down_cap,
        up_background=up_bg,
        down_background=down_bg,
        src=src,
        dst=dst,
        demand=np.array([p.demand_bps for p in pairs], dtype=np.float64),
        previous=prev,
    )
    solution = solve_leaf_spine(problem)
    placements = []
    for k, pair in enumerate(pairs):
        s = int(solution.spine[k])
        if pair.src == pair.dst:
            path = Path(switches=(pair.src,))
        else:
            spine = layout.spines[s]
            path = Path(
                switches=(pair.src, spine, pair.dst),
                links=(up_id[src[k], s], down_id[dst[k], s]),
            )
        old = previous.get(pair.key)
        placements.append(PairPlacement(pair.key, path, old is not None and old != path))
    return JointPlan(
        placements=tuple(placements),
        max_utilization=solution.max_utilization,
        lower_bound=solution.lower_bound,
        method=solution.method,
    )


def _solve_paths(
    pairs: Sequence[PairDemand],
    view: FabricView,
    previous: Mapping[Hashable, Path],
    paths: PathCache,
    milp_max_variables: int,
) -> JointPlan:
    link_index: dict[LinkId, int] = {}
    candidates: list[list[Path]] = []
    for pair in pairs:
        found, _ = usable_candidates(paths, src=pair.src, dst=pair.dst, view=view)
        candidates.append(found)
        for option in found:
            for lid in option.links:
                link_index.setdefault(lid, len(link_index))
    links = list(link_index)
    todo = [k for k, c in enumerate(candidates) if c and c[0].links]
    problem = AssignmentProblem(
        capacity=np.array([view.capacity_of(lid) for lid in links], dtype=np.float64),
        background=np.array([view.load_bps.get(lid, 0.0) for lid in links], dtype=np.float64),
        demand=np.array([pairs[k].demand_bps for k in todo], dtype=np.float64),
        options=[[tuple(link_index[lid] for lid in p.links) for p in candidates[k]] for k in todo],
        previous=[_index_of(candidates[k], previous.get(pairs[k].key)) for k in todo],
    )
    result = solve_assignment(problem, milp_max_variables=milp_max_variables)
    chosen: dict[int, Path] = {k: candidates[k][result.choice[i]] for i, k in enumerate(todo)}
    placements = []
    for k, pair in enumerate(pairs):
        # Pairs inside one switch have their one-switch path; pairs without any path None.
        placed = chosen.get(k) or (candidates[k][0] if candidates[k] else None)
        old = previous.get(pair.key)
        moved = old is not None and placed is not None and old != placed
        placements.append(PairPlacement(pair.key, placed, moved))
    return JointPlan(
        placements=tuple(placements),
        max_utilization=result.max_utilization,
        lower_bound=0.0,
        method=result.method,
    )


def _index_of(options: list[Path], path: Path | None) -> int:
    if path is None:
        return -1
    try:
        return options.index(path)
    except ValueError:
        return -1


def place_jointly(
    pairs: Sequence[PairDemand],
    view: FabricView,
    *,
    previous: Mapping[Hashable, Path] | None = None,
    paths: PathCache | None = None,
    milp_max_variables: int = MILP_MAX_VARIABLES,
) -> JointPlan:
    """Paths for all ``pairs`` together, minimising the most loaded link.

    ``view.load_bps`` is the background (load not from these pairs);
    ``previous`` maps pair keys to the paths they use now, which are kept
    whenever the optimum allows. ``paths`` (a cache of ``view.graph``) is
    used on fabrics that are not 2-tier.
    """
    keys = [p.key for p in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("pair keys must be unique")
    for p in pairs:
        if not p.demand_bps > 0:
            raise ValueError(f"pair {p.key!r} needs a demand above 0, got {p.demand_bps}")
    previous = previous or {}
    if not pairs:
        return JointPlan((), 0.0, 0.0, "none")
    layout = leaf_spine_layout(view, [s for p in pairs for s in (p.src, p.dst)])
    if layout is not None:
        plan = _solve_two_tier(pairs, view, layout, previous)
        if plan is not None:
            return plan
    cache = paths if paths is not None else PathCache(view.graph)
    return _solve_paths(pairs, view, previous, cache, milp_max_variables)


def rebalance_elephants(
    flows: Sequence[PairDemand],
    view: FabricView,
    *,
    current: Mapping[Hashable, Path],
    paths: PathCache | None = None,
) -> JointPlan:
    """Re-place measured elephant flows jointly (the rebalancer's round).

    ``view.load_bps`` is the measured load *with* these flows on their
    ``current`` paths; their own share is taken out first, so the answer
    counts only the traffic they cannot move. Flows whose path is optimal
    stay; :attr:`JointPlan.moved` lists the relocations to carry out.
    """
    quiet = NetworkView.with_load(view, background_without(view, flows, current))
    return place_jointly(flows, quiet, previous=current, paths=paths)
