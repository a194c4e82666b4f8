"""The leaf-spine fast path: choose or rank a flow's path from two array rows.

Between two switches of one side of a bipartite fabric every shortest path
goes up to one switch of the other side and down again, so the candidates of
``src -> dst`` are the columns of two rows of the
:class:`~controller.routing.fabricstate.FabricState` arrays: the uplinks of
``src`` and the downlinks into ``dst``, one column per middle switch. This
module scores those columns with the same arithmetic, tie-breaks and reasons
as :func:`~controller.routing.strategies.choose_path` and
:func:`~controller.routing.strategies.rank_paths` apply to the enumerated
paths, so the decisions are identical; a :class:`Path` is built only for the
column chosen. It answers None whenever the general code must decide (no
clean candidate: detours, drained-only or broken pairs) and never handles
``pinned`` routes.

Pure functions over the state's arrays and the caller's not-yet-measured load
per slot; nothing here changes the state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from controller.fabric.model import FiveTuple, LinkId, Path
from controller.policy.model import Policy, Strategy
from controller.routing import kernels
from controller.routing.fabricstate import FabricState, PairRows
from controller.routing.strategies import (
    FlowRequest,
    ecmp_pick,
    fallback_of,
    load_reason,
    rendezvous_scores,
    shortest_reason,
    weighted_pick,
)

__all__ = ["choose", "rank", "path_of", "slots"]

_INF = np.inf


def _column(rows: slice, slot: int) -> int:
    """Which column of the row ``rows`` holds ``slot``, or -1."""
    start: int = rows.start
    step: int = rows.step or 1
    offset = slot - start
    if offset < 0 or slot >= rows.stop or offset % step:
        return -1
    return offset // step


def _used(
    state: FabricState,
    rows: PairRows,
    recent: np.ndarray,
    deltas: Sequence[Mapping[LinkId, float]],
    blocked: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Used load (measured + recent + ``deltas``) per column up and down, in the
    state's scratch rows; +inf where the link may not carry the flow (down,
    drained or ``blocked``)."""
    up_slots, down_slots = rows.up, rows.down
    bufs = state.scratch[rows.side]
    penalised = state.penalised
    up = np.add(penalised[up_slots], recent[up_slots], out=bufs[0])
    down = np.add(penalised[down_slots], recent[down_slots], out=bufs[1])
    if blocked is not None:
        up[blocked[up_slots] | blocked[down_slots]] = _INF
    if deltas:
        _patch(state, rows, recent, deltas, up, down)
    return up, down


def _patch(
    state: FabricState,
    rows: PairRows,
    recent: np.ndarray,
    deltas: Sequence[Mapping[LinkId, float]],
    up: np.ndarray,
    down: np.ndarray,
) -> None:
    seen: set[LinkId] = set()
    index, usable, load = state.layout.index, state.usable, state.load
    for delta in deltas:
        for lid in delta:
            if lid in seen:
                continue
            seen.add(lid)
            slot = index.get(lid, -1)
            if slot < 0 or not usable[slot]:
                continue
            # The same additions, in the same order, as LoadOverlay.get makes.
            extra = float(recent[slot])
            for d in deltas:
                extra += d.get(lid, 0.0)
            col = _column(rows.up, slot)
            if col >= 0 and up[col] != _INF:
                up[col] = load[slot] + extra
            col = _column(rows.down, slot)
            if col >= 0:
                down[col] = load[slot] + extra


def _load_keys(
    strategy: Strategy,
    state: FabricState,
    rows: PairRows,
    up: np.ndarray,
    down: np.ndarray,
    demand: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(primary key, up utilization, down utilization) per column, overwriting
    ``up`` and ``down``: the primary key is the peak utilization (least-utilized)
    or the negated bottleneck residual (widest)."""
    cap_up, cap_down = state.capacity_eff[rows.up], state.capacity_eff[rows.down]
    key = state.scratch[rows.side][2]
    np.maximum(up, 0.0, out=up)
    np.maximum(down, 0.0, out=down)
    if strategy is Strategy.WIDEST:
        np.subtract(cap_up, up, out=key)
        np.minimum(key, cap_down - down, out=key)
        np.negative(key, out=key)
    up += demand
    up /= cap_up
    down += demand
    down /= cap_down
    if strategy is Strategy.LEAST_UTILIZED:
        np.maximum(up, down, out=key)
    return key, up, down


def _tie_break(rows: PairRows, tied: np.ndarray, x: np.ndarray, y: np.ndarray) -> int:
    """Among the ``tied`` columns, the lowest sum of utilizations, then the first in
    candidate order. Overwrites ``tied`` and ``x``."""
    total = np.add(x, y, out=x)
    np.logical_not(tied, out=tied)
    total[tied] = _INF
    best = int(total.argmin())
    if rows.in_order:  # argmin's first index is the first in candidate order
        return best
    ties = np.flatnonzero(total == total[best])
    return int(ties[rows.rank[ties].argmin()])


def _candidates(rows: PairRows, up: np.ndarray, down: np.ndarray, clean: bool) -> np.ndarray:
    """Usable columns in candidate order."""
    if clean:
        return rows.order
    ok = np.isfinite(up) & np.isfinite(down)
    usable: np.ndarray = rows.order[ok[rows.order]]
    return usable


def choose(
    strategy: Strategy,
    state: FabricState,
    rows: PairRows,
    ft: FiveTuple,
    demand: float,
    policy: Policy,
    seed: int,
    recent: np.ndarray,
    deltas: Sequence[Mapping[LinkId, float]] = (),
    blocked: np.ndarray | None = None,
) -> tuple[int, str] | None:
    """(column, reason): the choice ``choose_path`` would make for a flow ``ft`` of
    ``demand`` bits/s among the clean candidates, or None when there is none (the
    general code then looks for detours). Called positionally, once per new flow
    (keyword matching is measurable at 50,000 calls a second)."""
    if strategy is Strategy.LEAST_UTILIZED or strategy is Strategy.WIDEST:
        if deltas:  # mappings: the numpy code patches them in
            return _choose_by_load(strategy, state, rows, demand, recent, deltas, blocked)
        best, top, n = kernels.pick(
            state.penalised,
            recent,
            state.capacity_eff,
            rows.up,
            rows.down,
            len(rows.middles),
            demand,
            strategy is Strategy.WIDEST,
            rows.rank,
            rows.in_order,
            blocked,
        )
        return None if best < 0 else (best, load_reason(strategy, top, n))
    return _choose_by_order(strategy, state, rows, ft, policy, seed, recent, deltas, blocked)


def _choose_by_load(
    strategy: Strategy,
    state: FabricState,
    rows: PairRows,
    demand: float,
    recent: np.ndarray,
    deltas: Sequence[Mapping[LinkId, float]],
    blocked: np.ndarray | None,
) -> tuple[int, str] | None:
    """least-utilized and widest with per-link deltas, in numpy: the same answers
    as :func:`kernels.pick` (held to them by a property test)."""
    up, down = _used(state, rows, recent, deltas, blocked)
    key, x, y = _load_keys(strategy, state, rows, up, down, demand)
    best = int(key.argmin())
    top = float(key[best])
    if top == _INF:
        return None
    tied = np.equal(key, top, out=state.scratch[rows.side][3])
    if np.count_nonzero(tied) > 1:
        best = _tie_break(rows, tied, x, y)
    return best, load_reason(strategy, top, int(np.count_nonzero(np.isfinite(key))))


def _choose_by_order(
    strategy: Strategy,
    state: FabricState,
    rows: PairRows,
    ft: FiveTuple,
    policy: Policy,
    seed: int,
    recent: np.ndarray,
    deltas: Sequence[Mapping[LinkId, float]],
    blocked: np.ndarray | None,
) -> tuple[int, str] | None:
    """shortest, ecmp and weighted: they only need the usable candidates in order."""
    if blocked is None and state.dense_all_usable:
        cands = rows.order  # every column usable: no load to read
    else:
        up, down = _used(state, rows, recent, deltas, blocked)
        cands = _candidates(rows, up, down, False)
    n = len(cands)
    if n == 0:
        return None
    if strategy is Strategy.SHORTEST:
        return int(cands[0]), shortest_reason(n)
    if strategy is Strategy.ECMP:
        i, reason = ecmp_pick(ft, n, seed)
        return int(cands[i]), reason
    if strategy is Strategy.WEIGHTED:
        routes = [(rows.src, rows.middles[j], rows.dst) for j in cands]
        i, reason = weighted_pick(routes, ft, state, policy, seed)
        return int(cands[i]), reason
    return None


def slots(rows: PairRows, column: int) -> tuple[int, int]:
    """The slots of one column's uplink and downlink."""
    return (
        rows.up.start + column * (rows.up.step or 1),
        rows.down.start + column * (rows.down.step or 1),
    )


def path_of(state: FabricState, rows: PairRows, column: int) -> Path:
    """The path of one column: up to its middle switch and down again."""
    up_slot, down_slot = slots(rows, column)
    links = state.layout.links
    up, down = links[up_slot], links[down_slot]
    assert up is not None and down is not None
    # Built without Path's checks: a column's links join src, middle and dst by
    # construction of the layout, and this runs once per placed flow.
    path = object.__new__(Path)
    object.__setattr__(path, "switches", (rows.src, rows.middles[column], rows.dst))
    object.__setattr__(path, "links", (up, down))
    return path


def rank(
    strategy: Strategy,
    state: FabricState,
    rows: PairRows,
    *,
    flow: FlowRequest,
    policy: Policy,
    seed: int,
    recent: np.ndarray,
    deltas: Sequence[Mapping[LinkId, float]] = (),
) -> list[int] | None:
    """The usable columns in the order ``rank_paths`` puts their paths, or None when
    no column is usable."""
    if strategy is Strategy.PINNED:
        strategy = fallback_of(policy)
    up, down = _used(state, rows, recent, deltas, None)
    cands = _candidates(rows, up, down, state.dense_all_usable)
    n = len(cands)
    if n == 0:
        return None
    if strategy is Strategy.SHORTEST:
        return [int(j) for j in cands]
    if strategy is Strategy.ECMP:
        i, _ = ecmp_pick(flow.five_tuple, n, seed)
        return [int(j) for j in (*cands[i:], *cands[:i])]
    if strategy is Strategy.LEAST_UTILIZED or strategy is Strategy.WIDEST:
        key, x, y = _load_keys(strategy, state, rows, up, down, flow.demand_bps)
        order = np.lexsort((rows.rank, x + y, key))
        return [int(j) for j in order if key[j] != _INF]
    if strategy is Strategy.WEIGHTED:
        routes = [(rows.src, rows.middles[j], rows.dst) for j in cands]
        scores = sorted(
            rendezvous_scores(routes, flow.five_tuple, state, policy, seed), reverse=True
        )
        return [int(cands[i]) for _, i in scores]
    return None
