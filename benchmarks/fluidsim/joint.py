"""The controller's joint job placement as the simulator's ``joint`` strategy.

:class:`ControllerJoint` is the solver :mod:`.strategies` plugs in: all flows
of a job go to :func:`controller.te.joint.place_jointly` at once, as the
engine's job manager does for a declared job. Every flow asks for a link's
capacity (a job declared without ``demand_mbps``). The load a job must share
links with is, per link, the larger of the measured load that is not its own
and what the other running jobs reserved (jobs placed at the same instant have
no measured load yet): the job manager's own rule. When a failure makes the
simulator re-solve a job, the paths the job had are passed as the previous
placement, so pairs keep their paths where the new optimum allows.

It remembers each fabric state's paths (weakly: a finished run's state and
its paths go together) until the simulator reports flows finished.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterable, Sequence

from controller.errors import FailedPrecondition
from controller.fabric.model import FiveTuple, LinkId, Path, PortRef
from controller.routing.fabricstate import FabricState
from controller.routing.strategies import NetworkView
from controller.te.joint import PairDemand, place_jointly

__all__ = ["ControllerJoint"]


class ControllerJoint:
    """Paths for one job's flows, placed together by the controller's joint solver."""

    def __init__(self) -> None:
        self._paths: weakref.WeakKeyDictionary[FabricState, dict[FiveTuple, Path]] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(
        self, flows: Sequence[tuple[PortRef, PortRef, FiveTuple]], state: FabricState
    ) -> list[Path]:
        demand = max(state.capacity.values(), default=state.unknown_capacity_bps)
        pairs = [PairDemand(ft, src.dpid, dst.dpid, demand) for src, dst, ft in flows]
        known = self._paths.setdefault(state, {})
        previous: dict[Hashable, Path] = {ft: known[ft] for _, _, ft in flows if ft in known}
        view = _background(state, known, own=set(previous), demand=demand)
        plan = place_jointly(pairs, view, previous=previous)
        paths = []
        for _, _, ft in flows:
            path = plan.path_of(ft)
            if path is None:
                raise FailedPrecondition(f"no path for {ft} in the joint placement")
            known[ft] = path
            paths.append(path)
        return paths

    def forget(self, state: FabricState, flows: Iterable[FiveTuple]) -> None:
        """Flows that finished: their paths reserve nothing any more."""
        known = self._paths.get(state)
        if known is not None:
            for ft in flows:
                known.pop(ft, None)


def _background(
    state: FabricState, known: dict[FiveTuple, Path], *, own: set[Hashable], demand: float
) -> NetworkView:
    """Per link, max(measured load minus the job's own, other jobs' reservations)."""
    measured = dict(state.load_bps)
    reserved: dict[LinkId, float] = {}
    for ft, path in known.items():
        for lid in path.links:
            if ft in own:
                measured[lid] = max(0.0, measured.get(lid, 0.0) - demand)
            else:
                reserved[lid] = reserved.get(lid, 0.0) + demand
    load = {lid: max(bps, reserved.get(lid, 0.0)) for lid, bps in measured.items()}
    for lid, bps in reserved.items():
        load.setdefault(lid, bps)
    return NetworkView.with_load(state, load)
