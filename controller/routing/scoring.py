"""Array scoring of candidate paths: utilization keys, widest keys, lexicographic picks.

One implementation of the load-aware strategies' arithmetic, shared by the
general code (candidate :class:`Path` lists, loads from mappings) and the
leaf-spine fast path (candidates are array rows). A candidate's per-hop
arrays hold, for hop ``h`` of every candidate, the link's ``used`` load
(measured plus not-yet-measured, bits/s, may be negative) and its capacity
(never 0: unknown capacities are substituted before). The arithmetic is done
element by element in the same order as a scalar loop would, so the results
are bit-for-bit those of the scalar definitions:

- least-utilized: ``u = (max(used, 0) + demand) / capacity`` per hop; key
  (peak u, sum of u in hop order, candidate order);
- widest: key (-(min over hops of capacity - max(used, 0)), sum of u, order).

Pure functions over numpy arrays; nothing here knows about links or flows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["utilization", "least_utilized_keys", "widest_keys", "lexi_best", "lexi_order"]


def utilization(used: np.ndarray, capacity: np.ndarray, demand: float) -> np.ndarray:
    """``(max(used, 0) + demand) / capacity`` element-wise, as a new array."""
    u: np.ndarray = np.maximum(used, 0.0)
    u += demand
    u /= capacity
    return u


def least_utilized_keys(
    used: Sequence[np.ndarray], capacity: Sequence[np.ndarray], demand: float, *, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """(peak utilization, sum of utilizations) of ``n`` candidates, one array per hop."""
    peak = np.zeros(n)
    total = np.zeros(n)
    for hop_used, hop_capacity in zip(used, capacity, strict=True):
        u = utilization(hop_used, hop_capacity, demand)
        np.maximum(peak, u, out=peak)
        total += u
    return peak, total


def widest_keys(
    used: Sequence[np.ndarray], capacity: Sequence[np.ndarray], demand: float, *, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """(-bottleneck residual bits/s, sum of utilizations) of ``n`` candidates."""
    residual = np.full(n, np.inf)
    total = np.zeros(n)
    for hop_used, hop_capacity in zip(used, capacity, strict=True):
        pos = np.maximum(hop_used, 0.0)
        np.minimum(residual, hop_capacity - pos, out=residual)
        pos += demand
        pos /= hop_capacity
        total += pos
    return -residual, total


def lexi_best(primary: np.ndarray, secondary: np.ndarray, rank: np.ndarray | None = None) -> int:
    """The index minimising (primary, secondary, rank); ``rank`` None means the index
    itself (candidates already in their order)."""
    best = int(primary.argmin())
    ties = np.flatnonzero(primary == primary[best])
    if len(ties) == 1:
        return best
    tied = secondary[ties]
    ties = ties[tied == tied.min()]
    if len(ties) == 1 or rank is None:
        return int(ties[0])
    return int(ties[rank[ties].argmin()])


def lexi_order(
    primary: np.ndarray, secondary: np.ndarray, rank: np.ndarray | None = None
) -> np.ndarray:
    """Indices sorted by (primary, secondary, rank or index)."""
    last = np.arange(len(primary)) if rank is None else rank
    return np.lexsort((last, secondary, primary))
