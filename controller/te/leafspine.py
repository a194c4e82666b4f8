"""Joint placement on a 2-tier leaf-spine fabric, on dense leaf x spine arrays.

Every flow between two different leaves crosses exactly one spine, so a
placement is a spine per flow: an edge colouring of the leaf-to-leaf demand
multigraph with the spines as colours. For flows of one rate the most loaded
link is minimised by levels: at utilization level ``u`` the link from leaf
``l`` to spine ``s`` has room for ``floor((u * capacity - background) / rate)``
flows; starting from a lower bound (no leaf can spread its flows thinner than
water-filling its links allows) the level rises only when the capacitated
colouring (:mod:`controller.te.kempe`) cannot place every flow. With no
background and equal links this is Koenig's theorem: each link carries at most
``ceil(max leaf degree / spines)`` flows, which is optimal. Flows of mixed
rates go to the general min-max search (:mod:`controller.te.minmax`).

A re-solve starts from the previous spines: a flow keeps its spine while that
spine's links have room at the level, so only flows on lost or over-full
links move, plus the few a Kempe chain swaps. Inputs and outputs are numpy
arrays indexed by small integers (leaf and spine positions); the caller maps
switches to positions. Capacity 0 means the link is missing, down or drained.
Pure computation: no clocks, no randomness, no fabric objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.te.kempe import UNCOLOURED, SlotColouring
from controller.te.minmax import MILP_MAX_VARIABLES, AssignmentProblem, solve_assignment

__all__ = ["LeafSpineProblem", "LeafSpineSolution", "solve_leaf_spine", "NO_SPINE"]

NO_SPINE = -1
# Flow rates within this ratio of each other are treated as one rate (the
# largest), so measured elephants of one collective still colour exactly.
UNIFORM_RATE_RATIO = 1.1
_EPS = 1e-9
# After this many level raises the remaining flows are placed by the general
# search rather than by ever finer levels.
_MAX_LEVELS = 48

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class LeafSpineProblem:
    """The flows to place and the fabric they cross, as arrays.

    ``up_capacity[l, s]``: bits/s from leaf ``l`` to spine ``s`` (0 = unusable);
    ``down_capacity[l, s]``: from spine ``s`` to leaf ``l``; the backgrounds are
    the loads on those links that are not from these flows. Flow ``k`` goes
    from leaf ``src[k]`` to leaf ``dst[k]`` at ``demand[k]`` bits/s and was on
    spine ``previous[k]`` (``NO_SPINE``: new, or inside one leaf).
    """

    up_capacity: FloatArray
    down_capacity: FloatArray
    up_background: FloatArray
    down_background: FloatArray
    src: IntArray
    dst: IntArray
    demand: FloatArray
    previous: IntArray

    @property
    def shape(self) -> tuple[int, int]:
        leaves, spines = self.up_capacity.shape
        return int(leaves), int(spines)


@dataclass(frozen=True)
class LeafSpineSolution:
    """A spine per flow (``NO_SPINE`` inside one leaf or when no spine joins both leaves)."""

    spine: IntArray
    moved: npt.NDArray[np.bool_]  # had a spine before and now has another
    unplaced: npt.NDArray[np.bool_]  # different leaves, but no spine links both
    max_utilization: float  # over the links these flows use, background included
    lower_bound: float  # no placement of these flows does better
    method: str  # "colouring" or the general search's method


def _links_used(p: LeafSpineProblem, spine: IntArray) -> tuple[FloatArray, FloatArray]:
    """Utilization of every up and down link with the flows on ``spine``, and a mask of use."""
    up = p.up_background.copy()
    down = p.down_background.copy()
    on = spine >= 0
    np.add.at(up, (p.src[on], spine[on]), p.demand[on])
    np.add.at(down, (p.dst[on], spine[on]), p.demand[on])
    return up, down


def _max_utilization(p: LeafSpineProblem, spine: IntArray) -> float:
    on = spine >= 0
    if not on.any():
        return 0.0
    up, down = _links_used(p, spine)
    s = spine[on]
    u_up = up[p.src[on], s] / p.up_capacity[p.src[on], s]
    u_down = down[p.dst[on], s] / p.down_capacity[p.dst[on], s]
    return float(max(u_up.max(), u_down.max()))


def _score(p: LeafSpineProblem, spine: IntArray) -> tuple[float, int]:
    """What a placement is judged by: the highest utilization, then the moves."""
    moves = int(((p.previous >= 0) & (spine >= 0) & (spine != p.previous)).sum())
    return round(_max_utilization(p, spine), 9), moves


def _water_level(cap: FloatArray, bg: FloatArray, need: IntArray, rate: float) -> FloatArray:
    """Per row, the least level at which its links have room for ``need`` flows.

    Rows are vertices, columns spines; a level ``u`` gives a link
    ``floor((u * cap - bg) / rate)`` flows. Bisection on all rows at once.
    """
    usable = cap > 0
    safe = np.where(usable, cap, 1.0)
    hi = np.where(usable, (bg + need[:, None] * rate) / safe, 0.0).max(axis=1)
    lo = np.zeros_like(hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        room = np.floor(np.maximum(mid[:, None] * cap - bg, 0.0) / rate + _EPS)
        fits = np.where(usable, room, 0.0).sum(axis=1) >= need
        hi = np.where(fits, mid, hi)
        lo = np.where(fits, lo, mid)
    return np.where(need > 0, hi, 0.0)


def _lower_bound(
    p: LeafSpineProblem, flows: IntArray, common: npt.NDArray[np.bool_], rate: float
) -> float:
    leaves, _ = p.shape
    out_deg = np.bincount(p.src[flows], minlength=leaves)
    in_deg = np.bincount(p.dst[flows], minlength=leaves)
    bound = max(
        float(_water_level(p.up_capacity, p.up_background, out_deg, rate).max(initial=0.0)),
        float(_water_level(p.down_capacity, p.down_background, in_deg, rate).max(initial=0.0)),
    )
    # Each flow alone needs some spine that joins its two leaves.
    src, dst = p.src[flows], p.dst[flows]
    with np.errstate(divide="ignore", invalid="ignore"):
        one_up = (p.up_background[src] + rate) / p.up_capacity[src]
        one_down = (p.down_background[dst] + rate) / p.down_capacity[dst]
    alone = np.where(common[flows], np.maximum(one_up, one_down), np.inf).min(axis=1)
    return max(bound, float(alone.max(initial=0.0)))


def _slots(cap: FloatArray, bg: FloatArray, level: float, rate: float) -> list[list[int]]:
    room = np.floor(np.maximum(level * cap - bg, 0.0) / rate + _EPS)
    return np.where(cap > 0, room, 0).astype(np.int64).tolist()  # type: ignore[no-any-return]


def _next_level(p: LeafSpineProblem, level: float, rate: float) -> float:
    """The least level above ``level`` at which some link gains room for one more flow."""
    best = np.inf
    for cap, bg in ((p.up_capacity, p.up_background), (p.down_capacity, p.down_background)):
        usable = cap > 0
        room = np.floor(np.maximum(level * cap - bg, 0.0) / rate + _EPS)
        nxt = np.where(usable, (bg + (room + 1) * rate) / np.where(usable, cap, 1.0), np.inf)
        best = min(best, float(nxt.min(initial=np.inf)))
    return max(best, level * (1 + 1e-9))


def _colour_at_levels(
    p: LeafSpineProblem, flows: IntArray, rate: float, level: float
) -> tuple[IntArray, IntArray]:
    """Colour ``flows`` at the least level from ``level`` up; returns (spines, uncoloured flows)."""
    # Only leaves with flows become vertices: the colouring's tables grow with
    # vertices x spines x level, and a job often touches few of many leaves.
    left, src = np.unique(p.src[flows], return_inverse=True)
    right, dst = np.unique(p.dst[flows], return_inverse=True)
    edges = list(zip(src.tolist(), dst.tolist(), strict=True))
    prefer = p.previous[flows].tolist()
    current = list(prefer)
    _, spines = p.shape
    for _ in range(_MAX_LEVELS):
        col = SlotColouring(
            edges,
            colours=spines,
            slots_left=_slots(p.up_capacity[left], p.up_background[left], level, rate),
            slots_right=_slots(p.down_capacity[right], p.down_background[right], level, rate),
        )
        # Keep what already holds at this level first (previous spines, then the
        # last attempt's), in flow order; then colour the rest with chains.
        for e, c in enumerate(current):
            if c != UNCOLOURED and col.can_use(e, c):
                col.assign(e, c)
        for e in range(len(edges)):
            if col.colour[e] == UNCOLOURED:
                col.colour_edge(e, prefer=prefer[e])
        current = col.colour
        missing = [e for e, c in enumerate(current) if c == UNCOLOURED]
        if not missing:
            break
        level = _next_level(p, level, rate)
    spine = np.asarray(current, dtype=np.int64)
    return spine, flows[spine == UNCOLOURED]


def _general(
    p: LeafSpineProblem, flows: IntArray, fixed: IntArray, common: npt.NDArray[np.bool_]
) -> tuple[IntArray, str]:
    """Place ``flows`` (the others stay on ``fixed``) by the general min-max search."""
    leaves, spines = p.shape
    # Link ids: up link (l, s) -> l * spines + s; down link (l, s) -> offset + same.
    offset = leaves * spines
    capacity = np.concatenate([p.up_capacity.ravel(), p.down_capacity.ravel()])
    up, down = _links_used(p, np.where(np.isin(np.arange(len(fixed)), flows), NO_SPINE, fixed))
    background = np.concatenate([up.ravel(), down.ravel()])
    options: list[list[tuple[int, ...]]] = []
    previous: list[int] = []
    for k in flows.tolist():
        a, b = int(p.src[k]), int(p.dst[k])
        choices = np.flatnonzero(common[k]).tolist()
        options.append([(a * spines + s, offset + b * spines + s) for s in choices])
        prev = int(fixed[k]) if fixed[k] >= 0 else int(p.previous[k])
        previous.append(choices.index(prev) if prev in choices else -1)
    result = solve_assignment(
        AssignmentProblem(
            capacity=capacity,
            background=background,
            demand=p.demand[flows],
            options=options,
            previous=previous,
        )
    )
    out = fixed.copy()
    for i, k in enumerate(flows.tolist()):
        out[k] = np.flatnonzero(common[k])[result.choice[i]]
    return out, result.method


def solve_leaf_spine(p: LeafSpineProblem) -> LeafSpineSolution:
    """A spine for every flow between two leaves, minimising the most loaded link."""
    k = len(p.src)
    if not (len(p.dst) == len(p.demand) == len(p.previous) == k):
        raise ValueError("src, dst, demand and previous must have one entry per flow")
    if k and not (p.demand > 0).all():
        raise ValueError("every flow needs a demand above 0")
    # common[k, s]: spine s links flow k's source leaf up and destination leaf down.
    common = (p.up_capacity[p.src] > 0) & (p.down_capacity[p.dst] > 0)
    inter = p.src != p.dst
    unplaced = inter & ~common.any(axis=1)
    flows = np.flatnonzero(inter & ~unplaced)
    spine = np.full(k, NO_SPINE, dtype=np.int64)
    method = "colouring"
    bound = 0.0
    if len(flows):
        rates = p.demand[flows]
        if rates.max() <= rates.min() * UNIFORM_RATE_RATIO:
            rate = float(rates.max())
            bound = _lower_bound(p, flows, common, rate)
            coloured, missing = _colour_at_levels(p, flows, rate, bound)
            spine[flows] = coloured
            if len(missing):
                spine, method = _general(p, missing, spine, common)
                method = f"colouring+{method}"
            if _max_utilization(p, spine) > bound + _EPS and len(flows) * p.shape[1] <= (
                MILP_MAX_VARIABLES
            ):
                # Uneven room (down links, background) can leave the colouring
                # above the bound without proof that better is impossible; a
                # small problem gets the exact answer instead.
                exact, how = _general(p, flows, np.full(k, NO_SPINE, dtype=np.int64), common)
                if _score(p, exact) < _score(p, spine):
                    spine, method = exact, how
        else:
            spine, method = _general(p, flows, spine, common)
            bound = _lower_bound(p, flows, common, float(rates.min()))
    moved = (spine >= 0) & (p.previous >= 0) & (spine != p.previous)
    return LeafSpineSolution(
        spine=spine,
        moved=moved,
        unplaced=unplaced,
        max_utilization=_max_utilization(p, spine),
        lower_bound=bound,
        method=method,
    )
