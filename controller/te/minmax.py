"""Min-max-utilization assignment of flows to candidate paths, on any topology.

Each item (a flow) picks one of its options (a candidate path, given as a
tuple of link ids); the load of a link is its background plus the demands of
the items whose option uses it; the goal is the smallest possible highest
utilization (load / capacity), and among those, the fewest items off their
previous option. Two methods:

- ``local-search``: items that have a previous option keep it, new ones go
  in largest first to the option with the lowest resulting peak, then the
  bottleneck link is relieved by single moves and two-item swaps while that
  strictly lowers it. Fast, no guarantee.
- ``milp``: the exact mixed-integer program, solved by HiGHS through
  :func:`scipy.optimize.milp`, in two phases (the least peak, then the fewest
  moves at that peak). Exact when it finishes; its size is one binary per
  (item, option), so it is used only up to a size limit.

:func:`solve_assignment` runs the local search, then the MILP when the
problem is small enough, and keeps the MILP answer when it is proven optimal
(which it always is at least as good as: the local-search answer is feasible
for both of its phases). Deterministic for the same input: no randomness, and
the MILP answer is used only when HiGHS proves it optimal (a run cut short
by its limits falls back to the local search). Knows nothing of switches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = [
    "AssignmentProblem",
    "AssignmentResult",
    "solve_assignment",
    "local_search",
    "solve_milp",
    "MILP_MAX_VARIABLES",
]

# Above this many (item, option) binaries the MILP is not tried: measured, a
# 3-tier fabric's 2,000-variable problems solve in well under a second, and
# time grows quickly past ~20,000 (see benchmarks/joint_bench.py).
MILP_MAX_VARIABLES = 1_000
_EPS = 1e-9
_MAX_ROUNDS = 100_000


@dataclass(frozen=True)
class AssignmentProblem:
    """Items to assign: ``options[k]`` are item k's candidates (non-empty link-id tuples).

    ``capacity[e]`` (bits/s, > 0 for every link an option uses) and
    ``background[e]`` (load not from these items) are indexed by link id;
    ``previous[k]`` is the option item k had (-1: none).
    """

    capacity: npt.NDArray[np.float64]
    background: npt.NDArray[np.float64]
    demand: npt.NDArray[np.float64]
    options: Sequence[Sequence[tuple[int, ...]]]
    previous: Sequence[int]


@dataclass(frozen=True)
class AssignmentResult:
    choice: list[int]  # option index per item
    max_utilization: float  # over the links the items use
    moves: int  # items whose choice differs from a previous one
    method: str  # "local-search" or "milp"
    optimal: bool  # proven optimal (the MILP finished)


def _check(p: AssignmentProblem) -> None:
    k = len(p.options)
    if len(p.demand) != k or len(p.previous) != k:
        raise ValueError("demand and previous need one entry per item")
    for i, opts in enumerate(p.options):
        if not opts:
            raise ValueError(f"item {i} has no option")
        for opt in opts:
            for e in opt:
                if not p.capacity[e] > 0:
                    raise ValueError(f"item {i} may use link {e}, whose capacity is not above 0")


def _peak(p: AssignmentProblem, choice: Sequence[int]) -> float:
    load = p.background.astype(np.float64).copy()
    used: set[int] = set()
    for k, o in enumerate(choice):
        for e in p.options[k][o]:
            load[e] += p.demand[k]
            used.add(e)
    if not used:
        return 0.0
    idx = np.fromiter(used, dtype=np.int64)
    return float((load[idx] / p.capacity[idx]).max())


def _moves(p: AssignmentProblem, choice: Sequence[int]) -> int:
    return sum(1 for k, o in enumerate(choice) if p.previous[k] >= 0 and p.previous[k] != o)


class _Search:
    """The local search's state: loads, and which items sit on each link."""

    def __init__(self, p: AssignmentProblem) -> None:
        self.p = p
        self.cap: list[float] = p.capacity.tolist()
        self.load: list[float] = p.background.astype(np.float64).tolist()
        self.demand: list[float] = p.demand.tolist()
        self.choice = [-1] * len(p.options)
        self.on: dict[int, set[int]] = {}

    def util(self, e: int) -> float:
        return self.load[e] / self.cap[e]

    def put(self, k: int, o: int) -> None:
        self.choice[k] = o
        for e in self.p.options[k][o]:
            self.load[e] += self.demand[k]
            self.on.setdefault(e, set()).add(k)

    def take(self, k: int) -> None:
        for e in self.p.options[k][self.choice[k]]:
            self.load[e] -= self.demand[k]
            self.on[e].discard(k)
        self.choice[k] = -1

    def peak_if(self, k: int, o: int) -> float:
        """The highest utilization on option ``o``'s links if item ``k`` moved there."""
        here = self.p.options[k][self.choice[k]] if self.choice[k] >= 0 else ()
        d = self.demand[k]
        return max(
            (self.load[e] + (0.0 if e in here else d)) / self.cap[e] for e in self.p.options[k][o]
        )

    def place_new(self, k: int) -> None:
        best, best_key = 0, (np.inf, np.inf)
        d = self.demand[k]
        for o, opt in enumerate(self.p.options[k]):
            utils = [(self.load[e] + d) / self.cap[e] for e in opt]
            key = (max(utils), sum(utils))
            if key < best_key:
                best, best_key = o, key
        self.put(k, best)

    def bottleneck(self) -> int:
        used = [e for e, items in self.on.items() if items]
        return max(used, key=lambda e: (self.util(e), -e))

    def relieve(self, hot: int) -> bool:
        """One move (or swap) that takes load off ``hot`` without any link reaching its level."""
        top = self.util(hot) - _EPS
        items = sorted(self.on[hot], key=lambda k: (-self.demand[k], k))
        best: tuple[float, int, int] | None = None
        for k in items:
            for o, opt in enumerate(self.p.options[k]):
                if hot in opt:
                    continue
                peak = self.peak_if(k, o)
                if peak < top and (best is None or peak < best[0]):
                    best = (peak, k, o)
        if best is not None:
            _, k, o = best
            self.take(k)
            self.put(k, o)
            return True
        return self._swap(hot, items, top)

    def _swap(self, hot: int, items: list[int], top: float) -> bool:
        """Move item k off ``hot`` after moving one item k2 off the one link that blocks k."""
        for k in items:
            d = self.demand[k]
            here = self.p.options[k][self.choice[k]]
            for opt in self.p.options[k]:
                if hot in opt:
                    continue
                blocked = [
                    e for e in opt if e not in here and (self.load[e] + d) / self.cap[e] >= top
                ]
                if len(blocked) != 1:
                    continue
                b = blocked[0]
                for k2 in sorted(self.on.get(b, ()), key=lambda j: (-self.demand[j], j)):
                    if k2 == k or (self.load[b] - self.demand[k2] + d) / self.cap[b] >= top:
                        continue
                    for o2, opt2 in enumerate(self.p.options[k2]):
                        if b in opt2 or set(opt2) & set(opt):
                            continue
                        if self.peak_if(k2, o2) < top:
                            self.take(k2)
                            self.put(k2, o2)
                            self.take(k)
                            self.put(k, self.p.options[k].index(opt))
                            return True
        return False


def local_search(p: AssignmentProblem) -> AssignmentResult:
    """Keep previous options, add new items largest first, then relieve bottlenecks."""
    _check(p)
    s = _Search(p)
    for k, o in enumerate(p.previous):
        if 0 <= o < len(p.options[k]):
            s.put(k, o)
    for k in sorted(range(len(p.options)), key=lambda j: (-s.demand[j], j)):
        if s.choice[k] < 0:
            s.place_new(k)
    for _ in range(_MAX_ROUNDS):
        if not s.on or not s.relieve(s.bottleneck()):
            break
    return AssignmentResult(
        choice=s.choice,
        max_utilization=_peak(p, s.choice),
        moves=_moves(p, s.choice),
        method="local-search",
        optimal=False,
    )


def solve_milp(p: AssignmentProblem, *, time_limit_s: float = 30.0) -> AssignmentResult | None:
    """The exact answer by HiGHS, or None if it could not prove one within its limits.

    The peak counts only links the items use (as :func:`_peak` does), but a
    link's row bounds the peak by its background whether an item uses it or
    not. So when the least peak found is set by links whose background alone
    reaches it, those links are avoided (their rows dropped, the options
    through them forbidden) and the problem solved again, until no such link
    is left or they cannot be avoided: the least of these peaks is the least
    peak (a choice through an avoided link is at least that link's background).
    """
    _check(p)
    starts = np.cumsum([0, *(len(o) for o in p.options)])
    n = int(starts[-1])
    if n == 0:
        return AssignmentResult([], 0.0, 0, "milp", True)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    link_row: dict[int, int] = {}
    for k, opts in enumerate(p.options):
        for o, opt in enumerate(opts):
            for e in opt:
                r = link_row.setdefault(e, len(link_row))
                rows.append(r)
                cols.append(int(starts[k]) + o)
                vals.append(float(p.demand[k] / p.capacity[e]))
    links = np.fromiter(link_row, dtype=np.int64)
    m = len(links)
    # Per link: sum(demand / capacity * x) - z <= -background / capacity.
    option_rows = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(m, n))
    rows += range(m)
    cols += [n] * m
    vals += [-1.0] * m
    usage = sparse.csr_matrix((vals, (rows, cols)), shape=(m, n + 1))
    floor = -(p.background[links] / p.capacity[links])
    item_of = np.repeat(np.arange(len(p.options)), np.diff(starts))
    pick = sparse.csr_matrix((np.ones(n), (item_of, np.arange(n))), shape=(len(p.options), n + 1))
    integrality = np.r_[np.ones(n), 0.0]
    options = {"time_limit": time_limit_s, "mip_rel_gap": 1e-7, "presolve": True}
    cost = np.zeros(n + 1)
    cost[n] = 1.0
    avoided = np.zeros(m, dtype=bool)
    best: tuple[float, npt.NDArray[np.float64], list[LinearConstraint], Bounds] | None = None
    while True:
        allowed = np.asarray(option_rows[avoided].sum(axis=0)).ravel() == 0
        if not np.all(np.bincount(item_of[allowed], minlength=len(p.options))):
            break  # some item has no option left: the avoided links are unavoidable
        constraints = [
            LinearConstraint(usage, -np.inf, np.where(avoided, np.inf, floor)),
            LinearConstraint(pick, 1.0, 1.0),
        ]
        bounds = Bounds(np.zeros(n + 1), np.r_[allowed.astype(np.float64), np.inf])
        found = milp(
            cost, constraints=constraints, integrality=integrality, bounds=bounds, options=options
        )
        if found.status != 0 or found.x is None:
            return None
        level = float(found.x[n]) * (1 + 1e-7) + 1e-9
        if best is None or level < best[0]:
            best = (level, found.x, constraints, bounds)
        hot = ~avoided & (-floor >= float(found.x[n]) * (1 - 1e-7) - 1e-9)
        if not hot.any():
            break
        avoided |= hot
    assert best is not None  # the first round either returned or kept its answer
    level, x, constraints, bounds = best
    keep = [int(starts[k]) + o for k, o in enumerate(p.previous) if 0 <= o < len(p.options[k])]
    if keep:
        # Phase 2: at the least peak (with a hair of slack for rounding), keep
        # as many items as possible where they were.
        cost = np.zeros(n + 1)
        cost[keep] = -1.0
        second = milp(
            cost,
            constraints=constraints,
            integrality=integrality,
            bounds=Bounds(bounds.lb, np.r_[bounds.ub[:n], level]),
            options=options,
        )
        if second.status != 0 or second.x is None:
            return None
        x = second.x
    choice = [int(np.argmax(x[starts[k] : starts[k + 1]])) for k in range(len(p.options))]
    return AssignmentResult(
        choice=choice,
        max_utilization=_peak(p, choice),
        moves=_moves(p, choice),
        method="milp",
        optimal=True,
    )


def solve_assignment(
    p: AssignmentProblem,
    *,
    milp_max_variables: int = MILP_MAX_VARIABLES,
    milp_time_limit_s: float = 30.0,
) -> AssignmentResult:
    """The local search's answer, replaced by the MILP's when that is small enough and proven."""
    heuristic = local_search(p)
    if sum(len(o) for o in p.options) > milp_max_variables:
        return heuristic
    exact = solve_milp(p, time_limit_s=milp_time_limit_s)
    return heuristic if exact is None else exact
