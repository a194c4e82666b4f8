"""The rebalancer's plan: which flows leave which hot links, and for which path.

In the spirit of Hedera's global first fit: a link is hot when its estimated
utilization (measured load plus recent, not yet measured placements) exceeds
the smallest congestion threshold among the policies of the flows on it. For
each hot link, hottest first, flows leave largest rate first until the link is
under its threshold; each goes to the first path, in its own strategy's order,
on which it fits without pushing any link above threshold. Flows moved or
placed within their policy's ``min_move_interval_s`` stay (no flapping; the
hold doubles with each move a flow has made), pinned flows on their pinned
path and flows of hash-based strategies stay, and a round moves at most
``max_moves`` flows. Load bookkeeping is simulated as the plan is built, so
one round never over-fills the path it moves flows to.

This module only plans; :class:`controller.te.engineer.TrafficEngineer`
applies the plan to the flow table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from controller.fabric.model import LinkId, Path
from controller.policy.model import Policy, Strategy
from controller.routing.paths import PathCache
from controller.routing.strategies import FabricView, FlowRequest, rank_paths, usable_candidates
from controller.te.flowtable import FlowTable, TrackedFlow
from controller.te.recent import LoadOverlay

__all__ = [
    "Relocation",
    "RebalancePlan",
    "plan_rebalance",
    "Ranker",
    "as_if_moved",
    "congestion_floor",
    "rank_candidates",
]

# (flow, its policy, this round's planned load changes) -> its paths, best first.
Ranker = Callable[[TrackedFlow, Policy, Mapping[LinkId, float]], Iterable[Path]]

# A link below this share of its capacity counts as idle: it takes any one flow.
IDLE_SHARE = 0.05
# A hot link is contended when, besides its largest flow, this share is in use.
CONTENTION_SHARE = 0.1


@dataclass(frozen=True)
class Relocation:
    flow_id: int
    path: Path
    detail: str


@dataclass(frozen=True)
class RebalancePlan:
    relocations: tuple[Relocation, ...]
    hot: tuple[LinkId, ...]  # links found above threshold, hottest first
    stuck: tuple[int, ...]  # flows that should leave a hot link but fit nowhere
    held: tuple[int, ...]  # flows kept by min_move_interval_s


class _Planner:
    """One rebalance round's working state (estimated loads change as flows move)."""

    def __init__(
        self,
        *,
        table: FlowTable,
        policy_of: Mapping[int, Policy],
        view: FabricView,
        extra: Mapping[LinkId, float],
        ranker: Ranker,
    ) -> None:
        self.table = table
        self.policy_of = policy_of
        self.view = view
        self.extra = extra
        self.ranker = ranker
        self.delta: dict[LinkId, float] = {}  # load this round's moves add or remove
        self._thresholds: dict[LinkId, float] = {}

    def load(self, lid: LinkId) -> float:
        measured = self.view.load_bps.get(lid, 0.0) + self.extra.get(lid, 0.0)
        return max(0.0, measured) + self.delta.get(lid, 0.0)

    def utilization(self, lid: LinkId) -> float:
        return self.load(lid) / self.view.capacity_of(lid)

    def threshold(self, lid: LinkId) -> float:
        """Smallest congestion threshold among the flows on ``lid`` (1.0 if none)."""
        thr = self._thresholds.get(lid)
        if thr is None:
            thr = min(
                (self.policy_of[i].params.congestion_threshold for i in self.table.ids_on(lid)),
                default=1.0,
            )
            self._thresholds[lid] = thr
        return thr

    def fits(self, flow: TrackedFlow, path: Path, policy: Policy) -> bool:
        """Whether ``flow`` can join ``path`` without congesting it. An idle link
        always takes one flow: an elephant alone on a link congests nobody."""
        own = set(flow.path.links)
        mine = policy.params.congestion_threshold
        for lid in path.links:
            if lid in own:
                continue
            capacity = self.view.capacity_of(lid)
            load = self.load(lid)
            if load + flow.load_bps > min(self.threshold(lid), mine) * capacity and (
                load > IDLE_SHARE * capacity
            ):
                return False
        return True

    def contended(self, lid: LinkId) -> bool:
        """Hot because flows share it, not because one flow fills it alone."""
        largest = max(
            (f.load_bps for i in self.table.ids_on(lid) if (f := self.table.get(i)) is not None),
            default=0.0,
        )
        return self.load(lid) - largest > CONTENTION_SHARE * self.view.capacity_of(lid)

    def shift(self, links: Iterable[LinkId], bps: float) -> None:
        for lid in links:
            self.delta[lid] = self.delta.get(lid, 0.0) + bps

    def relocate(self, flow: TrackedFlow, path: Path, policy: Policy) -> None:
        old, new = set(flow.path.links), set(path.links)
        for lid in old - new:
            self.delta[lid] = self.delta.get(lid, 0.0) - flow.load_bps
        for lid in new - old:
            self.delta[lid] = self.delta.get(lid, 0.0) + flow.load_bps
            self._thresholds[lid] = min(self.threshold(lid), policy.params.congestion_threshold)

    def ranked(self, flow: TrackedFlow, policy: Policy) -> Iterable[Path]:
        return self.ranker(flow, policy, self.delta)


def congestion_floor(policy_of: Mapping[int, Policy]) -> float:
    """The smallest congestion threshold among the flows' policies (1.0 if none): no
    link below it can be hot."""
    distinct = {id(p): p for p in policy_of.values()}.values()
    return min((p.params.congestion_threshold for p in distinct), default=1.0)


def as_if_moved(flow: TrackedFlow) -> tuple[FlowRequest, dict[LinkId, float]]:
    """The flow as a request to route again, and its own load taken off its current
    path: scored as if it had already left, its own load does not make that path
    look worse than it is."""
    request = FlowRequest(
        five_tuple=flow.five_tuple,
        ingress=flow.path.ingress,
        egress=flow.path.egress,
        demand_bps=flow.load_bps,
    )
    return request, {lid: -flow.load_bps for lid in flow.path.links}


def rank_candidates(
    flow: TrackedFlow,
    policy: Policy,
    *,
    paths: PathCache,
    view: FabricView,
    extra: Mapping[LinkId, float],
    delta: Mapping[LinkId, float],
    seed: int,
) -> list[Path]:
    """Usable, undrained paths for ``flow`` best first by its policy, as if it had
    left its current path, with ``delta`` (planned moves) on top of ``extra``."""
    request, without_self = as_if_moved(flow)
    candidates, _ = usable_candidates(paths, src=request.ingress, dst=request.egress, view=view)
    drained = view.drained
    candidates = [p for p in candidates if not any(lid in drained for lid in p.links)]
    return rank_paths(
        policy.strategy,
        candidates,
        flow=request,
        view=view,
        policy=policy,
        seed=seed,
        extra_load=LoadOverlay(extra, delta, without_self),
    )


# Hash-based strategies keep their paths: an ECMP or weighted policy asks for
# the hash's split, collisions included (failures and drains still move them).
HASHED = frozenset({Strategy.ECMP, Strategy.WEIGHTED})


def hold_down(flow: TrackedFlow, policy: Policy) -> float:
    """Seconds a flow stays put after its last move: ``min_move_interval_s``,
    doubling with every earlier move (capped at 32x) so a flow that keeps being
    moved settles instead of flapping."""
    return float(policy.params.min_move_interval_s * 2 ** min(flow.moves, 5))


def _rebalanced(flow: TrackedFlow, policy: Policy) -> bool:
    """Whether rebalancing may move this flow at all (its policy balances by load)."""
    if policy.strategy is Strategy.PINNED:
        return flow.fell_back and policy.fallback not in HASHED
    return policy.strategy not in HASHED


def _movable(flow: TrackedFlow, policy: Policy, now: float) -> bool:
    if not _rebalanced(flow, policy):
        return False
    return flow.load_bps > 0 and now - flow.settled_at >= hold_down(flow, policy)


def _find_swap(
    planner: _Planner,
    flow: TrackedFlow,
    policy: Policy,
    hot: LinkId,
    *,
    done: set[int],
    now: float,
) -> tuple[TrackedFlow, Path, Path, LinkId] | None:
    """Make room for a stuck flow by first moving one other flow (a depth-2 move).

    Single first-fit moves get stuck where two flows each hold what the other
    needs (e.g. a ring all-reduce whose flows collided on an uplink while the
    free uplink's spine is full towards the destination). Look for a path of
    ``flow`` blocked by exactly one link, and a flow on that link that fits
    elsewhere; on success both relocations are applied to the planner and
    (moved flow, its path, ``flow``'s path, the link freed) is returned.
    """
    own = set(flow.path.links)
    mine = policy.params.congestion_threshold
    for path in planner.ranked(flow, policy):
        if path == flow.path or hot in path.links:
            continue
        blocked = [
            lid
            for lid in path.links
            if lid not in own
            and planner.load(lid) + flow.load_bps
            > min(planner.threshold(lid), mine) * planner.view.capacity_of(lid)
        ]
        if len(blocked) != 1:
            continue
        link = blocked[0]
        holders = [planner.table.get(i) for i in planner.table.ids_on(link) if i not in done]
        for other in sorted(
            (f for f in holders if f is not None and f.flow_id != flow.flow_id),
            key=lambda f: (-f.load_bps, f.flow_id),
        ):
            other_policy = planner.policy_of[other.flow_id]
            if not _movable(other, other_policy, now):
                continue
            for other_path in planner.ranked(other, other_policy):
                if other_path == other.path or link in other_path.links:
                    continue
                saved = (dict(planner.delta), dict(planner._thresholds))
                # The two flows trade places: test the other's new path as if
                # the stuck flow had already left its current one.
                planner.shift(flow.path.links, -flow.load_bps)
                if planner.fits(other, other_path, other_policy):
                    planner.relocate(other, other_path, other_policy)
                    planner.shift(flow.path.links, flow.load_bps)
                    if planner.fits(flow, path, policy):
                        planner.relocate(flow, path, policy)
                        return other, other_path, path, link
                planner.delta, planner._thresholds = saved
    return None


def plan_rebalance(
    *,
    table: FlowTable,
    policy_of: Mapping[int, Policy],
    view: FabricView,
    extra: Mapping[LinkId, float],
    ranker: Ranker,
    now: float,
    max_moves: int,
    hot: Iterable[LinkId] | None = None,
) -> RebalancePlan:
    """Plan one round. ``hot`` restricts the links examined (e.g. the ones telemetry
    reported congested); they still must be above threshold by this estimate.

    ``ranker(flow, policy, delta)`` gives a flow's usable, undrained paths best first
    with ``delta`` (this round's planned load changes) on top of ``extra`` (e.g.
    :meth:`PathChooser.rank`, which falls back to :func:`rank_candidates`)."""
    planner = _Planner(
        table=table,
        policy_of=policy_of,
        view=view,
        extra=extra,
        ranker=ranker,
    )
    if hot is None:
        examined = table.busy_links()
    else:
        examined = [lid for lid in set(hot) if table.count_on(lid)]
    floor = congestion_floor(policy_of)
    hot_links = []
    for lid in examined:
        util = planner.utilization(lid)
        # The floor test is a cheap filter before the per-link threshold.
        if util > floor and util > planner.threshold(lid) and planner.contended(lid):
            hot_links.append((util, lid))
    hot_links.sort(key=lambda item: (-item[0], item[1]))

    relocations: list[Relocation] = []
    stuck: list[int] = []
    held: list[int] = []
    done: set[int] = set()
    for _, lid in hot_links:
        flows = [table.get(i) for i in table.ids_on(lid) if i not in done]
        ordered = sorted(
            (f for f in flows if f is not None), key=lambda f: (-f.load_bps, f.flow_id)
        )
        for flow in ordered:
            if planner.utilization(lid) <= planner.threshold(lid):
                break
            if len(relocations) >= max_moves:
                break
            policy = policy_of[flow.flow_id]
            if not _rebalanced(flow, policy) or flow.load_bps <= 0:
                continue
            if now - flow.settled_at < hold_down(flow, policy):
                held.append(flow.flow_id)
                done.add(flow.flow_id)
                continue
            done.add(flow.flow_id)
            target = next(
                (
                    p
                    for p in planner.ranked(flow, policy)
                    if p != flow.path and lid not in p.links and planner.fits(flow, p, policy)
                ),
                None,
            )
            if target is None:
                swap = None
                if len(relocations) + 2 <= max_moves:
                    swap = _find_swap(planner, flow, policy, lid, done=done, now=now)
                if swap is None:
                    stuck.append(flow.flow_id)
                    continue
                other, other_path, target, blocked = swap
                done.add(other.flow_id)
                relocations.append(
                    Relocation(
                        other.flow_id,
                        other_path,
                        f"makes room on {blocked} for flow {flow.flow_id}",
                    )
                )
            else:
                planner.relocate(flow, target, policy)
            relocations.append(
                Relocation(
                    flow.flow_id,
                    target,
                    f"off {lid} at {planner.utilization(lid):.0%} after the move",
                )
            )
    return RebalancePlan(
        relocations=tuple(relocations),
        hot=tuple(lid for _, lid in hot_links),
        stuck=tuple(stuck),
        held=tuple(held),
    )
