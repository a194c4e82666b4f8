"""The rebalancer's joint round: measured elephants re-placed together when first fit is stuck.

First fit (:func:`controller.te.rebalance.plan_rebalance`) moves the fewest
flows, each to the first path of its own strategy's order that fits. It
corners itself where the repair needs a chain of moves (a flow can leave a hot
link only if another makes room, which needs a third to move...): a ring
whose flows collided keeps its collisions. When first fit leaves flows stuck
on hot links, this module re-solves every movable *elephant* at once with the
joint solver jobs use (:func:`controller.te.joint.rebalance_elephants`: edge
colouring on a 2-tier fabric, min-max search elsewhere), over the measured
load of everything else. An elephant is a flow whose measured rate is at
least :data:`ELEPHANT_SHARE` of the capacity of the narrowest link on its path;
mice, unmeasured flows, held flows (``min_move_interval_s``), pinned flows on
their pinned path and hash-placed flows are background and never move here.

The joint answer is then made frugal and safe: moves are undone, smallest
flow first, wherever the flow's old path stays within the plan's peak (or the
link's threshold); when more moves remain than a round may make, they are
applied in an order where each fits on its own, up to the budget, and the rest
waits for the next round. The joint plan replaces first fit's only if it
lowers the most loaded link (by :data:`PEAK_GAIN`), or keeps it and leaves
fewer links above their threshold.

Plans only; the engineer applies them. No clocks, no randomness.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

from controller.fabric.model import LinkId, Path
from controller.policy.model import Policy
from controller.routing.paths import PathCache
from controller.routing.strategies import FabricView, NetworkView
from controller.te.flowtable import FlowTable, TrackedFlow
from controller.te.joint import PairDemand, rebalance_elephants
from controller.te.rebalance import CONTENTION_SHARE, RebalancePlan, Relocation, _movable

__all__ = ["ELEPHANT_SHARE", "MAX_ELEPHANTS", "elephants", "near", "plan_joint"]

# A flow is an elephant when its measured rate is at least this share of the
# capacity of the narrowest link on its path: a tenth of a link is what one
# collective's flow carries on any fabric worth placing, while mice (RPCs,
# storage chatter, flows still ramping up) stay where they are.
ELEPHANT_SHARE = 0.1
# The joint plan must lower the most loaded link by this much (of its capacity)
# to replace first fit's, or keep it and leave fewer links over threshold.
PEAK_GAIN = 0.01
# At most this many elephants in one joint solve (about half a second of the
# hub): beyond it, the elephants that start or end where the stuck flows do.
MAX_ELEPHANTS = 10_000
_EPS = 1e-9


def elephants(
    table: FlowTable, policy_of: Mapping[int, Policy], view: FabricView, *, now: float
) -> list[TrackedFlow]:
    """Measured elephants this round may move, in flow id order."""
    found = []
    for flow in table.snapshot():
        if not flow.measured or not flow.path.links:
            continue
        policy = policy_of.get(flow.flow_id)
        if policy is None or not _movable(flow, policy, now):
            continue
        narrowest = min(view.capacity_of(lid) for lid in flow.path.links)
        if flow.rate_bps >= ELEPHANT_SHARE * narrowest:
            found.append(flow)
    return found


def near(
    herd: list[TrackedFlow], table: FlowTable, stuck: Iterable[int], limit: int
) -> list[TrackedFlow]:
    """``herd`` if it has at most ``limit`` flows; else the elephants that start or end
    on a switch a stuck flow starts or ends on, the largest first, at most ``limit``."""
    if len(herd) <= limit:
        return herd
    ends: set[int] = set()
    for flow_id in stuck:
        flow = table.get(flow_id)
        if flow is not None:
            ends.update((flow.path.ingress, flow.path.egress))
    close = [f for f in herd if f.path.ingress in ends or f.path.egress in ends]
    close.sort(key=lambda f: (-f.load_bps, f.flow_id))
    return sorted(close[:limit], key=lambda f: f.flow_id)


@dataclass
class _Loads:
    """Estimated load on the links a comparison looks at, as relocations change it."""

    view: FabricView
    load: dict[LinkId, float]
    thresholds: dict[LinkId, float]

    def move(self, flow: TrackedFlow, old: Path, new: Path) -> None:
        was, now = set(old.links), set(new.links)
        for lid in was - now:
            self.load[lid] = self.load.get(lid, 0.0) - flow.load_bps
        for lid in now - was:
            self.load[lid] = self.load.get(lid, 0.0) + flow.load_bps

    def utilization(self, lid: LinkId) -> float:
        return max(0.0, self.load.get(lid, 0.0)) / self.view.capacity_of(lid)

    def fits(self, flow: TrackedFlow, old: Path, new: Path, peak: float) -> bool:
        """``flow`` may go from ``old`` to ``new`` without any link it joins passing
        ``peak`` or, above that, its threshold."""
        own = set(old.links)
        for lid in new.links:
            if lid in own:
                continue
            limit = max(peak, self.thresholds.get(lid, 1.0)) * self.view.capacity_of(lid)
            if self.load.get(lid, 0.0) + flow.load_bps > limit + _EPS:
                return False
        return True

    def score(self, links: Iterable[LinkId]) -> tuple[float, int]:
        """(highest utilization, links above their threshold) over ``links``."""
        utils = [(self.utilization(lid), self.thresholds.get(lid, 1.0)) for lid in links]
        over = sum(1 for u, thr in utils if u > thr + _EPS)
        return round(max((u for u, _ in utils), default=0.0), 9), over


def _alive(view: FabricView, path: Path) -> bool:
    graph, drained = view.graph, view.drained
    for lid in path.links:
        data = graph.get_edge_data(lid.src.dpid, lid.dst.dpid)
        if data is None or data.get("link") != lid or lid in drained:
            return False
    return True


def plan_joint(
    *,
    table: FlowTable,
    policy_of: Mapping[int, Policy],
    view: FabricView,
    extra: Mapping[LinkId, float],
    greedy: RebalancePlan,
    now: float,
    max_moves: int,
    paths: PathCache | None = None,
) -> RebalancePlan | None:
    """The joint plan of this round if it beats first fit's ``greedy`` plan, else None.

    ``view`` is a :class:`NetworkView` or the engine's
    :class:`~controller.routing.fabricstate.FabricState`; ``extra`` the load of
    recent placements counters do not show yet; ``paths`` a path cache of
    ``view.graph`` (needed only on fabrics that are not 2-tier).
    """
    if not greedy.stuck or max_moves <= 0:
        return None
    herd = near(elephants(table, policy_of, view, now=now), table, greedy.stuck, MAX_ELEPHANTS)
    if not herd:
        return None
    base: dict[LinkId, float] = dict(view.load_bps)
    for lid, bps in extra.items():
        base[lid] = base.get(lid, 0.0) + bps
    measured = NetworkView.with_load(view, base)
    current: dict[Hashable, Path] = {f.flow_id: f.path for f in herd}
    pairs = [PairDemand(f.flow_id, f.path.ingress, f.path.egress, f.load_bps) for f in herd]
    plan = rebalance_elephants(pairs, measured, current=current, paths=paths)
    by_id = {f.flow_id: f for f in herd}
    target: dict[int, Path] = {}
    for f in herd:
        path = plan.path_of(f.flow_id)
        if path is not None and path != f.path:
            target[f.flow_id] = path
    if not target:
        return None
    looked_at = set(greedy.hot)
    for f in herd:
        looked_at.update(f.path.links)
    for path in target.values():
        looked_at.update(path.links)
    for r in greedy.relocations:
        looked_at.update(r.path.links)
        if (mover := table.get(r.flow_id)) is not None:
            looked_at.update(mover.path.links)
    thresholds = _thresholds(table, policy_of, looked_at)
    local = {lid: base.get(lid, 0.0) for lid in looked_at}  # every link a move touches
    peak = plan.max_utilization
    target = _frugal(by_id, target, _Loads(view, dict(local), thresholds), peak)
    order = _in_fit_order(by_id, target, _Loads(view, dict(local), thresholds), peak, max_moves)
    if not order:
        return None
    joint = _Loads(view, dict(local), thresholds)
    for k in order:
        joint.move(by_id[k], by_id[k].path, target[k])
    first_fit = _Loads(view, dict(local), thresholds)
    for r in greedy.relocations:
        if (mover := table.get(r.flow_id)) is not None:
            first_fit.move(mover, mover.path, r.path)
    mine, theirs = joint.score(looked_at), first_fit.score(looked_at)
    if not _better(mine, theirs):
        return None
    detail = (
        f"joint re-placement of {len(herd)} elephant(s): peak {mine[0]:.0%}, "
        f"{mine[1]} link(s) over threshold (first fit: {theirs[0]:.0%}, {theirs[1]})"
    )
    moved = set(order)
    still = [i for i in greedy.stuck if i not in moved and _on_hot(table.get(i), joint)]
    return RebalancePlan(
        relocations=tuple(Relocation(k, target[k], detail) for k in order),
        hot=greedy.hot,
        stuck=tuple(still),
        held=greedy.held,
    )


def _better(mine: tuple[float, int], theirs: tuple[float, int]) -> bool:
    """A lower peak by at least :data:`PEAK_GAIN`, or the same peak and fewer links
    over their threshold: smaller gains are not worth the moves."""
    if mine[0] < theirs[0] - PEAK_GAIN:
        return True
    return abs(mine[0] - theirs[0]) <= PEAK_GAIN and mine[1] < theirs[1]


def _on_hot(flow: TrackedFlow | None, loads: _Loads) -> bool:
    """Whether ``flow`` still shares a link above its threshold (alone on a link it
    fills, it congests nobody)."""
    if flow is None:
        return False
    for lid in flow.path.links:
        others = loads.load.get(lid, 0.0) - flow.load_bps
        hot = loads.utilization(lid) > loads.thresholds.get(lid, 1.0) + _EPS
        if hot and others > CONTENTION_SHARE * loads.view.capacity_of(lid):
            return True
    return False


def _frugal(
    flows: Mapping[int, TrackedFlow], target: dict[int, Path], loads: _Loads, peak: float
) -> dict[int, Path]:
    """Undo the moves that are not needed: smallest flow first, a flow goes back to
    its current path when that path is alive and stays within ``peak`` (or the
    links' thresholds) with every other move made."""
    for k, path in target.items():
        loads.move(flows[k], flows[k].path, path)
    kept = dict(target)
    for k in sorted(target, key=lambda k: (flows[k].load_bps, k)):
        flow = flows[k]
        if _alive(loads.view, flow.path) and loads.fits(flow, target[k], flow.path, peak):
            loads.move(flow, target[k], flow.path)
            del kept[k]
    return kept


def _in_fit_order(
    flows: Mapping[int, TrackedFlow],
    target: Mapping[int, Path],
    loads: _Loads,
    peak: float,
    budget: int,
) -> list[int]:
    """The order to make the moves in: each, when its turn comes, fits on its own
    (largest flows first). Moves that only fit together (two flows trading places)
    follow; past the round's ``budget`` only moves that fit on their own are made."""
    order: list[int] = []
    pending = sorted(target, key=lambda k: (-flows[k].load_bps, k))
    progress = True
    while pending and progress and len(order) < budget:
        progress = False
        for k in list(pending):
            if len(order) >= budget:
                break
            if loads.fits(flows[k], flows[k].path, target[k], peak):
                loads.move(flows[k], flows[k].path, target[k])
                order.append(k)
                pending.remove(k)
                progress = True
    if pending and len(target) <= budget:
        order += pending  # the whole plan fits the budget: trades included
    return order


def _thresholds(
    table: FlowTable, policy_of: Mapping[int, Policy], links: Iterable[LinkId]
) -> dict[LinkId, float]:
    """Per link, the smallest congestion threshold among the flows on it (1.0 if none)."""
    out = {}
    for lid in links:
        out[lid] = min(
            (policy_of[i].params.congestion_threshold for i in table.ids_on(lid) if i in policy_of),
            default=1.0,
        )
    return out
