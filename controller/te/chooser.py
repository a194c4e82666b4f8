"""Path choice for the traffic engineer: the fast path where it applies, the general one else.

A :class:`PathChooser` answers "which path now" and "which paths, best first"
for one flow, over either kind of :data:`Network`: a per-call
:class:`~controller.routing.strategies.NetworkView`, or the long-lived
:class:`~controller.routing.fabricstate.FabricState`. With a state, pairs of
switches on one side of a bipartite fabric (leaf to leaf) are scored from
array rows by :mod:`controller.routing.fastpath`; everything else (views,
``pinned`` policies, detours around drained or failed links, other
topologies) goes through the candidate-path code of
:mod:`controller.routing.strategies` with the same arithmetic, so both make
the same decisions. The not-yet-measured load it scores with is the
engineer's :class:`~controller.te.recent.RecentLoad`, lined up with the
state's slots on first use.

It keeps no flows and changes nothing but its caches; the engineer applies
what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace

import numpy as np

from controller.errors import FailedPrecondition, InvalidArgument
from controller.fabric.model import Dpid, FiveTuple, LinkId, Path
from controller.policy.model import Policy, Strategy
from controller.routing import fastpath, kernels
from controller.routing.fabricstate import FabricState, PairRows
from controller.routing.paths import PathCache
from controller.routing.strategies import (
    Choice,
    FlowRequest,
    NetworkView,
    choose_path,
    usable_candidates,
)
from controller.te.flowtable import TrackedFlow
from controller.te.rebalance import as_if_moved, rank_candidates
from controller.te.recent import LoadOverlay, RecentLoad

__all__ = ["Network", "PathChooser"]

Network = NetworkView | FabricState


class PathChooser:
    """Chooses and ranks paths for one engineer (its seed, path limit and recent load)."""

    def __init__(self, *, seed: int, max_paths: int, recent: RecentLoad) -> None:
        self.seed = seed
        self.max_paths = max_paths
        self.recent = recent
        self._paths: PathCache | None = None
        kernels.warm()  # compiled (or loaded) here, not on the first flow's packet-in

    def paths_for(self, view: Network) -> PathCache:
        """The path cache of ``view.graph`` (rebuilt, cheaply when possible, on a new graph)."""
        if self._paths is None or self._paths.graph is not view.graph:
            self._paths = PathCache.for_graph(
                view.graph, previous=self._paths, max_paths=self.max_paths
            )
        return self._paths

    def _rows(self, view: Network, src: Dpid, dst: Dpid) -> PairRows | None:
        if not isinstance(view, FabricState):
            return None
        rows = view.rows(src, dst)
        if rows is None or len(rows.middles) > self.max_paths:
            return None  # more candidates than this engineer considers: general path
        if self.recent.layout is not rows.layout:
            self.recent.bind(rows.layout)
        return rows

    def choose_new(
        self,
        ft: FiveTuple,
        src: Dpid,
        dst: Dpid,
        demand: float,
        policy: Policy,
        view: Network,
        deltas: Sequence[Mapping[LinkId, float]] = (),
        blocked: np.ndarray | None = None,
    ) -> tuple[Path, str, tuple[int, ...]] | None:
        """The fast path: (path, reason, its links' slots), or None when :meth:`choose`
        must answer. Makes no request or choice objects: this runs for every new flow."""
        if policy.strategy is Strategy.PINNED:
            return None
        rows = self._rows(view, src, dst)
        if rows is None:
            return None
        assert isinstance(view, FabricState)
        recent = self.recent.by_slot
        picked = fastpath.choose(
            policy.strategy, view, rows, ft, demand, policy, self.seed, recent, deltas, blocked
        )
        if picked is None:
            return None
        column, reason = picked
        return fastpath.path_of(view, rows, column), reason, fastpath.slots(rows, column)

    def choose(
        self,
        request: FlowRequest,
        policy: Policy,
        view: Network,
        *,
        avoid: frozenset[LinkId],
        deltas: Sequence[Mapping[LinkId, float]] = (),
        blocked: np.ndarray | None = None,
    ) -> Choice:
        """The path for ``request`` now. ``avoid`` are links known down (``blocked`` the
        same as a slot mask of ``view``, see :meth:`blocked_mask`); ``deltas`` adjust
        the recent load (e.g. the flow's own load taken off its current path).
        Raises FailedPrecondition when no path exists."""
        fast = self.choose_new(
            request.five_tuple,
            request.ingress,
            request.egress,
            request.demand_bps,
            policy,
            view,
            deltas,
            blocked,
        )
        if fast is not None:
            path, reason, slots = fast
            return Choice(path, policy.strategy, False, reason, slots)
        paths = self.paths_for(view)
        candidates, note = usable_candidates(
            paths, src=request.ingress, dst=request.egress, view=view, avoid=avoid
        )
        if not candidates and policy.strategy is not Strategy.PINNED:
            raise FailedPrecondition(note)
        try:
            choice = choose_path(
                policy.strategy,
                candidates,
                flow=request,
                view=view,
                policy=policy,
                seed=self.seed,
                extra_load=LoadOverlay(self.recent, *deltas) if deltas else self.recent,
                paths=paths,
                avoid=avoid,
            )
        except InvalidArgument as exc:
            raise FailedPrecondition(exc.reason) from exc
        if note:
            return replace(choice, reason=f"{choice.reason} ({note})")
        return choice

    def rank(
        self,
        flow: TrackedFlow,
        policy: Policy,
        view: Network,
        delta: Mapping[LinkId, float],
    ) -> Iterable[Path]:
        """Usable, undrained paths for ``flow`` best first by its policy (as if it had
        left its current path), with ``delta`` on top of the recent load (a
        rebalance round's planned moves). Paths are built as they are read."""
        request, without_self = as_if_moved(flow)
        rows = self._rows(view, request.ingress, request.egress)
        if rows is not None:
            assert isinstance(view, FabricState)
            columns = fastpath.rank(
                policy.strategy,
                view,
                rows,
                flow=request,
                policy=policy,
                seed=self.seed,
                recent=self.recent.by_slot,
                deltas=(delta, without_self),
            )
            if columns is not None:
                return _built(view, rows, columns)
        return rank_candidates(
            flow,
            policy,
            paths=self.paths_for(view),
            view=view,
            extra=self.recent,
            delta=delta,
            seed=self.seed,
        )

    def loaded_links(self, view: Network, floor: float) -> list[LinkId] | None:
        """Links of a state whose estimated utilization (measured plus recent load)
        is above ``floor``, found with array operations; None for a view. Only these
        can be hot, so a rebalance round need not look at every busy link."""
        if not isinstance(view, FabricState):
            return None
        layout = view.layout
        self.recent.bind(layout)
        used = np.maximum(view.load + self.recent.by_slot, 0.0)
        util = used / view.capacity_eff
        links = layout.links
        return [lid for s in np.flatnonzero(util > floor) if (lid := links[s]) is not None]

    @staticmethod
    def blocked_mask(view: Network, avoid: frozenset[LinkId]) -> np.ndarray | None:
        """``avoid`` as a slot mask of a state, or None when none of those links could
        be chosen anyway (already down or drained in the state, or not a state)."""
        if not avoid or not isinstance(view, FabricState):
            return None
        index, usable = view.layout.index, view.usable
        slots = [s for lid in avoid if (s := index.get(lid, -1)) >= 0 and usable[s]]
        if not slots:
            return None
        mask = np.zeros(view.layout.size, dtype=bool)
        mask[slots] = True
        return mask

    @staticmethod
    def alive(view: Network, path: Path, avoid: frozenset[LinkId]) -> bool:
        """Whether every link of ``path`` is an up edge of the fabric and not in ``avoid``."""
        if isinstance(view, FabricState):
            return view.path_alive(path, avoid)
        adj = view.graph.adj
        for lid in path.links:
            if lid in avoid:
                return False
            edge = adj.get(lid.src.dpid, {}).get(lid.dst.dpid)
            if edge is None or edge.get("link") != lid:
                return False
        return True


def _built(state: FabricState, rows: PairRows, columns: list[int]) -> Iterator[Path]:
    for column in columns:
        yield fastpath.path_of(state, rows, column)
