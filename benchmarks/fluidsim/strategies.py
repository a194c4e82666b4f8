"""Where the simulated flows go: the controller's own placement core, and plug-ins.

A :class:`Placer` turns flows into link-index routes, re-places the flows a
failure hits, and forgets finished flows:

- ``ecmp`` and ``least-utilized`` drive the real
  :class:`~controller.te.engineer.TrafficEngineer` over the fabric's
  :class:`~controller.routing.fabricstate.FabricState` (hash ECMP is the
  5-tuple hash of the ``ecmp`` strategy; least-utilized sees the simulated
  link loads as port counters, fed by :meth:`Placer.observe`, plus its own
  not-yet-measured demand);
- ``joint`` places each job's flows at once with the registered joint solver
  (by default the controller's own, :class:`.joint.ControllerJoint`;
  :func:`register_joint` swaps it), re-solves a job a failure hits, and
  places background flows least-utilized;
- ``bound`` is not a strategy: every flow is sprayed over every spine (the
  pooled view of :mod:`.fabric`), which upper-bounds what any placement gets.

Placers only choose routes; the simulator owns time and rates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.fluidsim.fabric import SimFabric
from benchmarks.fluidsim.joint import ControllerJoint
from controller.errors import FailedPrecondition
from controller.fabric.model import FiveTuple, LinkId, Path, PortRef
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.routing.fabricstate import FabricState
from controller.te.engineer import TrafficEngineer

__all__ = [
    "SimFlow",
    "Placer",
    "EngineerPlacer",
    "JointPlacer",
    "PooledBound",
    "JointSolver",
    "register_joint",
    "controller_joint",
    "joint_available",
    "placer_for",
    "STRATEGY_NAMES",
]

STRATEGY_NAMES = ("ecmp", "least-utilized", "joint")


@dataclass(frozen=True)
class SimFlow:
    """One simulated flow: its id, hosts, 5-tuple, job (None for background) and the
    rate the controller plans with."""

    key: int
    src: int
    dst: int
    five_tuple: FiveTuple
    job: int | None
    demand_bps: float


# (flows as (ingress port, egress port, 5-tuple), the fabric state) -> one path
# per flow, in order. The joint solver sees a whole job at once.
JointSolver = Callable[[Sequence[tuple[PortRef, PortRef, FiveTuple]], FabricState], Sequence[Path]]
_joint: JointSolver | None = ControllerJoint()


def register_joint(solver: JointSolver | None) -> None:
    """Plug in another joint job placement, or with None remove it (the controller's
    own is plugged in from the start)."""
    global _joint
    _joint = solver


def controller_joint() -> JointSolver:
    """A fresh instance of the controller's joint placement (to plug back in)."""
    return ControllerJoint()


def joint_available() -> bool:
    return _joint is not None


class Placer:
    """Routes for flows, in the link-index space of :attr:`capacity`."""

    name = "placer"

    def __init__(self, fabric: SimFabric) -> None:
        self.fabric = fabric

    @property
    def capacity(self) -> np.ndarray:
        return self.fabric.capacity

    def place(self, flows: Sequence[SimFlow], *, now: float) -> list[np.ndarray]:
        raise NotImplementedError

    def fail(self, links: Sequence[LinkId], *, now: float) -> dict[int, np.ndarray]:
        """Links went down (the fabric already knows): new routes of the flows moved."""
        raise NotImplementedError

    def remove(self, flows: Sequence[SimFlow]) -> None:
        """Finished flows."""

    def observe(self, link_load: np.ndarray) -> None:
        """Simulated link loads, as port counters would report them."""


def _policy(strategy: Strategy) -> Policy:
    roce = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
    return Policy(name=f"sim-{strategy.value}", priority=100, match=(roce,), strategy=strategy)


class EngineerPlacer(Placer):
    """The controller's traffic engineer, one strategy for every flow."""

    def __init__(self, fabric: SimFabric, strategy: Strategy, *, seed: int) -> None:
        super().__init__(fabric)
        self.name = strategy.value
        self.policy = _policy(strategy)
        self.te = TrafficEngineer(seed=seed)
        self._ids: dict[int, int] = {}  # sim flow key -> engineer flow id
        self._keys: dict[int, SimFlow] = {}  # engineer flow id -> sim flow

    def place(self, flows: Sequence[SimFlow], *, now: float) -> list[np.ndarray]:
        fabric, routes = self.fabric, []
        for flow in flows:
            placed = self.te.place(
                flow.five_tuple,
                dscp=26,
                ingress=fabric.port(flow.src),
                egress=fabric.port(flow.dst),
                policy=self.policy,
                view=fabric.state,
                now=now,
                demand_bps=flow.demand_bps,
            )
            self._ids[flow.key] = placed.flow.flow_id
            self._keys[placed.flow.flow_id] = flow
            routes.append(fabric.links_of(placed.flow.path, flow.src, flow.dst))
        return routes

    def fail(self, links: Sequence[LinkId], *, now: float) -> dict[int, np.ndarray]:
        outcome = self.te.on_links_down(links, self.fabric.state, now)
        moved = {}
        for move in outcome.moves:
            flow = self._keys[move.flow_id]
            moved[flow.key] = self.fabric.links_of(move.new_path, flow.src, flow.dst)
        return moved

    def remove(self, flows: Sequence[SimFlow]) -> None:
        for flow in flows:
            flow_id = self._ids.pop(flow.key, None)
            if flow_id is not None:
                self._keys.pop(flow_id, None)
                self.te.remove(flow_id)

    def observe(self, link_load: np.ndarray) -> None:
        if self.policy.strategy is Strategy.ECMP:
            return  # a hash does not look at load
        state = self.fabric.state
        load = link_load[: state.layout.size]
        state.set_loads({lid: float(load[s]) for lid, s in state.layout.index.items()})


class JointPlacer(EngineerPlacer):
    """Jobs through the registered joint solver; background flows least-utilized."""

    def __init__(self, fabric: SimFabric, *, seed: int) -> None:
        if _joint is None:
            raise FailedPrecondition(
                "joint placement is not plugged in (benchmarks.fluidsim.strategies.register_joint)"
            )
        super().__init__(fabric, Strategy.LEAST_UTILIZED, seed=seed)
        self.name = "joint"
        self.solver: JointSolver = _joint
        self._jobs: dict[int, list[SimFlow]] = {}
        self._job_routes: dict[int, np.ndarray] = {}

    def place(self, flows: Sequence[SimFlow], *, now: float) -> list[np.ndarray]:
        background = [f for f in flows if f.job is None]
        placed = super().place(background, now=now)
        routes = dict(zip((f.key for f in background), placed, strict=True))
        by_job: dict[int, list[SimFlow]] = {}
        for flow in flows:
            if flow.job is not None:
                by_job.setdefault(flow.job, []).append(flow)
        for job, members in by_job.items():
            self._jobs.setdefault(job, []).extend(members)
            routes.update(self._solve(members))
        return [routes[f.key] for f in flows]

    def _solve(self, members: Sequence[SimFlow]) -> Mapping[int, np.ndarray]:
        fabric = self.fabric
        asks = [(fabric.port(f.src), fabric.port(f.dst), f.five_tuple) for f in members]
        paths = self.solver(asks, fabric.state)
        if len(paths) != len(members):
            raise FailedPrecondition(
                f"joint solver gave {len(paths)} paths for {len(members)} flows"
            )
        out = {}
        for flow, path in zip(members, paths, strict=True):
            route = fabric.links_of(path, flow.src, flow.dst)
            self._job_routes[flow.key] = route
            out[flow.key] = route
        return out

    def fail(self, links: Sequence[LinkId], *, now: float) -> dict[int, np.ndarray]:
        moved = super().fail(links, now=now)  # background flows
        lost = {self.fabric.state.layout.slot(lid) for lid in links}
        for members in self._jobs.values():
            if any(lost & set(self._job_routes[f.key].tolist()) for f in members):
                moved.update(self._solve(members))  # the job is placed again, jointly
        return moved

    def remove(self, flows: Sequence[SimFlow]) -> None:
        super().remove([f for f in flows if f.job is None])
        forget = getattr(self.solver, "forget", None)  # a solver that reserves links
        if forget is not None:
            forget(self.fabric.state, [f.five_tuple for f in flows if f.job is not None])
        for flow in flows:
            self._job_routes.pop(flow.key, None)
            if flow.job is not None and flow.job in self._jobs:
                self._jobs[flow.job] = [f for f in self._jobs[flow.job] if f.key != flow.key]


class PooledBound(Placer):
    """Every flow sprayed over every spine: what no placement can beat."""

    name = "bound"

    @property
    def capacity(self) -> np.ndarray:
        return self.fabric.pooled_capacity

    def place(self, flows: Sequence[SimFlow], *, now: float) -> list[np.ndarray]:
        return [self.fabric.pooled_links(f.src, f.dst) for f in flows]

    def fail(self, links: Sequence[LinkId], *, now: float) -> dict[int, np.ndarray]:
        return {}  # pooled capacities already shrank; routes stay


def placer_for(name: str, fabric: SimFabric, *, seed: int) -> Placer:
    if name == "ecmp":
        return EngineerPlacer(fabric, Strategy.ECMP, seed=seed)
    if name == "least-utilized":
        return EngineerPlacer(fabric, Strategy.LEAST_UTILIZED, seed=seed)
    if name == "joint":
        return JointPlacer(fabric, seed=seed)
    if name == "bound":
        return PooledBound(fabric)
    raise FailedPrecondition(f"unknown strategy {name!r}")
