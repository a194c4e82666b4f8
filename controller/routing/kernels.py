"""Compiled scoring of one flow's candidate columns (numba), for the fast path.

Choosing a path between two leaves reads two rows of the fabric state's slot
arrays and takes the column with the lowest key. Written as numpy calls that
is about ten array operations of ~0.5 us each on rows of at most a few dozen
entries, most of it call overhead: a third of a least-utilized placement. This
module does the same arithmetic, in the same order on the same IEEE doubles,
in one compiled loop over the columns.

:func:`pick` is what :func:`controller.routing.fastpath.choose` calls for the
least-utilized and widest strategies whenever the flow's load is not adjusted
by per-link deltas (those are mappings the compiled code cannot read: the
numpy code answers them, with the same arithmetic; a property test holds the
two to the same answers). The first call compiles (or loads from numba's
on-disk cache); :func:`warm` does it ahead of the first flow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = ["pick", "warm"]

_NO_BLOCKS = np.zeros(0, dtype=np.bool_)


@njit(cache=True, nogil=True)
def _pick(  # pragma: no cover - compiled; exercised through pick()
    penalised: Any,
    recent: Any,
    capacity: Any,
    up_start: int,
    up_step: int,
    down_start: int,
    down_step: int,
    n: int,
    demand: float,
    widest: bool,
    rank: Any,
    in_order: bool,
    blocked: Any,
) -> tuple[int, float, int]:
    best = -1
    top = np.inf
    total = np.inf
    finite = 0
    check = blocked.shape[0] > 0
    for j in range(n):
        a = up_start + j * up_step
        b = down_start + j * down_step
        x = penalised[a] + recent[a]
        y = penalised[b] + recent[b]
        if check and (blocked[a] or blocked[b]):
            x = np.inf
        x = max(x, 0.0)
        y = max(y, 0.0)
        residual = min(capacity[a] - x, capacity[b] - y)
        x = (x + demand) / capacity[a]
        y = (y + demand) / capacity[b]
        key = -residual if widest else max(x, y)
        if key == np.inf:
            continue
        finite += 1
        s = x + y
        if key < top or (
            key == top and (s < total or (s == total and not in_order and rank[j] < rank[best]))
        ):
            best, top, total = j, key, s
    return best, top, finite


def pick(
    penalised: np.ndarray,
    recent: np.ndarray,
    capacity: np.ndarray,
    up: slice,
    down: slice,
    n: int,
    demand: float,
    widest: bool,
    rank: np.ndarray,
    in_order: bool,
    blocked: np.ndarray | None,
) -> tuple[int, float, int]:
    """(column, its key, columns with a finite key) among the ``n`` columns of the
    rows ``up`` and ``down`` of the slot arrays; column -1 when none is finite.

    Used load per slot is ``penalised + recent`` (+inf where ``blocked`` at
    either end), floored at 0. The key is the peak utilization with ``demand``
    added (least-utilized) or the negated bottleneck residual before it
    (``widest``); ties go to the lowest sum of the two utilizations, then to the
    lowest ``rank`` (the first column when ``in_order``)."""
    best, top, finite = _pick(
        penalised,
        recent,
        capacity,
        up.start,
        up.step or 1,
        down.start,
        down.step or 1,
        n,
        float(demand),
        widest,
        rank,
        in_order,
        _NO_BLOCKS if blocked is None else blocked,
    )
    return int(best), float(top), int(finite)


def warm() -> None:
    """Compile (or load) the kernel for the argument types the fast path passes."""
    values = np.ones(2)
    rank = np.zeros(1, dtype=np.int64)
    for widest in (False, True):
        pick(values, values, values, slice(0, 1), slice(1, 2), 1, 0.0, widest, rank, True, None)
