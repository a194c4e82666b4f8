"""The traffic engineer: places AI flows and moves them off failures, drains and hot links.

:class:`TrafficEngineer` is the stateful facade the hub calls. It owns the
:class:`~controller.te.flowtable.FlowTable`, the governing policy of every flow,
the recent-placement load that counters do not show yet, and its
:class:`~controller.te.chooser.PathChooser`. Every method takes the fabric as
``view`` and ``now`` and returns plain data (placements, moves, flows left
stranded); the table is updated at once and the caller programs the switches.
``view`` is either a :class:`~controller.routing.strategies.NetworkView` built
for the call, or - what the hub should pass - the one
:class:`~controller.routing.fabricstate.FabricState` it keeps up to date: then
a leaf-to-leaf flow costs array operations on two rows of the state, never a
pass over the fabric. Both make the same decisions.

It must not send anything, read a clock, use unseeded randomness or keep a
reference to a view beyond the call (views are snapshots; a state is read, and
changed only by :meth:`drain` marking links the owner forgot to mark). Only the
hub thread may call it; other threads read :meth:`snapshot` and :meth:`policies`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import numpy as np

from controller.errors import FailedPrecondition, InvalidArgument
from controller.fabric.model import Dpid, FiveTuple, LinkId, Path, PortRef
from controller.policy.model import Policy, Strategy
from controller.routing.fabricstate import FabricState
from controller.routing.paths import DEFAULT_MAX_PATHS, PathCache
from controller.routing.strategies import Choice, FlowRequest, pinned_route
from controller.te.chooser import Network, PathChooser
from controller.te.elephants import plan_joint
from controller.te.flowtable import FlowTable, TrackedFlow
from controller.te.rebalance import congestion_floor, plan_rebalance
from controller.te.recent import RecentLoad
from controller.te.results import MOVE_REASONS, Move, Outcome, Placement, routing_identity

__all__ = ["Placement", "Move", "Outcome", "TrafficEngineer", "MOVE_REASONS"]

_NO_LINKS: frozenset[LinkId] = frozenset()


class TrafficEngineer:
    """Places flows, reacts to link failures and drains, and rebalances hot links."""

    def __init__(
        self,
        *,
        seed: int = 0,
        visibility_s: float = 3.0,
        max_moves_per_round: int = 8,
        default_demand_bps: float = 100e6,
        rate_alpha: float = 0.5,
        max_paths: int = DEFAULT_MAX_PATHS,
        joint_rebalance: bool = True,
    ) -> None:
        """``default_demand_bps`` is the demand assumed for a flow placed without an
        estimate; ``rate_alpha`` the EWMA weight of a new flow-stats sample;
        ``joint_rebalance``: a round whose first fit is stuck re-places the measured
        elephants jointly (:mod:`controller.te.elephants`)."""
        if max_moves_per_round < 0:
            raise InvalidArgument("max_moves_per_round", "must be >= 0")
        if default_demand_bps < 0:
            raise InvalidArgument("default_demand_bps", "must be >= 0")
        if not 0 < rate_alpha <= 1:
            raise InvalidArgument("rate_alpha", "must be in (0, 1]")
        self._seed = seed
        self._max_moves = max_moves_per_round
        self._default_demand = default_demand_bps
        self._alpha = rate_alpha
        self._max_paths = max_paths
        self._joint = joint_rebalance
        self._table = FlowTable()
        self._policy_of: dict[int, Policy] = {}
        self._recent = RecentLoad(visibility_s=0.0)
        self.set_visibility(visibility_s)
        self._chooser = PathChooser(seed=seed, max_paths=max_paths, recent=self._recent)
        self._stranded: set[int] = set()
        self._fell_back: set[int] = set()

    def set_visibility(self, seconds: float) -> None:
        """How long a new flow's demand counts before its rate is measured (~two polls)."""
        if seconds < 0:
            raise InvalidArgument("visibility_s", "must be >= 0")
        self._recent.visibility_s = seconds

    # ----------------------------------------------------------------- reads
    def __len__(self) -> int:
        return len(self._table)

    def snapshot(self) -> tuple[TrackedFlow, ...]:
        """All tracked flows in id order (immutable values)."""
        return self._table.snapshot()

    def flow(self, flow_id: int) -> TrackedFlow | None:
        return self._table.get(flow_id)

    def ingress_switches(self) -> set[Dpid]:
        """Switches where some tracked flow enters the fabric (their counters are polled)."""
        return self._table.ingress_switches()

    def flow_by_five_tuple(self, ft: FiveTuple) -> TrackedFlow | None:
        return self._table.by_five_tuple(ft)

    def flows_on(self, lid: LinkId) -> list[TrackedFlow]:
        return [f for i in sorted(self._table.ids_on(lid)) if (f := self._table.get(i))]

    def policies(self) -> dict[int, Policy]:  # flow id -> its policy, a copy
        return dict(self._policy_of)

    def policy_of(self, flow_id: int) -> Policy | None:
        return self._policy_of.get(flow_id)

    def stranded(self) -> frozenset[int]:
        return frozenset(self._stranded)

    @property
    def extra_load(self) -> Mapping[LinkId, float]:
        """Per-link load of recent placements that counters may not show yet."""
        return self._recent

    def paths_for(self, view: Network) -> PathCache:
        """The path cache of ``view.graph`` (rebuilt, cheaply when possible, on a new graph)."""
        return self._chooser.paths_for(view)

    # ------------------------------------------------------------- placement
    def preview(
        self,
        ft: FiveTuple,
        *,
        ingress: Dpid,
        egress: Dpid,
        policy: Policy,
        view: Network,
        now: float,
        demand_bps: float | None = None,
    ) -> Choice:
        """The path :meth:`place` would choose now, changing nothing (explain, dry run)."""
        self._recent.expire(now)
        demand = self._default_demand if demand_bps is None else demand_bps
        request = FlowRequest(five_tuple=ft, ingress=ingress, egress=egress, demand_bps=demand)
        return self._chooser.choose(request, policy, view, avoid=frozenset())

    def place(
        self,
        ft: FiveTuple,
        *,
        dscp: int,
        ingress: PortRef,
        egress: PortRef,
        policy: Policy,
        view: Network,
        now: float,
        demand_bps: float | None = None,
    ) -> Placement:
        """Choose a path for a new flow and track it.

        A 5-tuple already tracked returns its placement unchanged
        (``created=False``): packet-ins repeat until the rules are in.
        Raises FailedPrecondition when the two switches are not connected.
        """
        if not 0 <= dscp <= 63:
            raise InvalidArgument("dscp", f"must be 0..63, got {dscp}")
        if demand_bps is not None and demand_bps < 0:
            raise InvalidArgument("demand_bps", f"must be >= 0, got {demand_bps}")
        existing = self._table.by_five_tuple(ft)
        if existing is not None:
            return Placement(existing, False, policy.strategy, "already placed")
        self._recent.expire(now)
        demand = self._default_demand if demand_bps is None else demand_bps
        fast = self._chooser.choose_new(ft, ingress.dpid, egress.dpid, demand, policy, view)
        if fast is not None:
            path, reason, slots = fast
            strategy, fell_back = policy.strategy, False
        else:
            request = FlowRequest(ft, ingress.dpid, egress.dpid, demand)
            choice = self._chooser.choose(request, policy, view, avoid=_NO_LINKS)
            path, reason, slots = choice.path, choice.reason, choice.slots
            strategy, fell_back = choice.strategy, choice.fell_back
        flow = TrackedFlow(
            flow_id=self._table.allocate_id(),
            five_tuple=ft,
            dscp=dscp,
            policy=policy.name,
            ingress=ingress,
            egress=egress,
            path=path,
            placed_at=now,
            demand_bps=demand,
            fell_back=fell_back,
        )
        self._table.add(flow)
        self._policy_of[flow.flow_id] = policy
        if fell_back:
            self._fell_back.add(flow.flow_id)
        if slots:  # chosen from the state's arrays: the recent load is lined up
            self._recent.add_slots(path.links, slots, demand, now=now, key=flow.flow_id)
        else:
            self._recent.add(path.links, demand, now=now, key=flow.flow_id)
        return Placement(flow, True, strategy, reason)

    def remove(self, flow_id: int) -> TrackedFlow | None:
        """Forget a flow (expired or no longer governed); returns it, or None if unknown."""
        self._policy_of.pop(flow_id, None)
        self._stranded.discard(flow_id)
        self._fell_back.discard(flow_id)
        return self._table.remove(flow_id)

    def update_rates(self, samples: Mapping[int, float], now: float) -> None:
        """Fold measured per-flow rates (bits/s, from flow stats) into each flow's EWMA;
        the first sample replaces the demand estimate outright."""
        self._recent.expire(now)
        alpha, table = self._alpha, self._table
        for flow_id, bps in samples.items():
            flow = table.get(flow_id)
            if flow is None or bps < 0:
                continue
            if flow.measured:
                rate = alpha * bps + (1 - alpha) * flow.rate_bps
            else:
                rate = bps
                self._recent.settle(flow_id)
            table.set_rate(flow_id, rate)

    # -------------------------------------------------------------- reactions
    def on_links_down(self, links: Iterable[LinkId], view: Network, now: float) -> Outcome:
        """Re-place exactly the flows using a down link (reason "failure").

        Flows with no surviving path stay where they are and are reported as
        stranded; they are retried when links come up and on every rebalance.
        """
        down = frozenset(links)
        self._recent.expire(now)
        affected: set[int] = set()
        for lid in down:
            affected |= self._table.ids_on(lid)
        return self._replace_all(sorted(affected), view, now, reason="failure", avoid=down)

    def on_links_up(self, links: Iterable[LinkId], view: Network, now: float) -> Outcome:
        """Return fell-back pinned flows to their pinned path (reason "policy") and retry
        stranded flows (reason "failure"). Other flows drift onto new links only
        through :meth:`rebalance`. Also the right call after an undrain."""
        del links  # any healed link may have made a pinned path or a detour possible
        self._recent.expire(now)
        # Paths only when a flow waits for its pinned path: with none, a link coming
        # up costs nothing here (a fabric being discovered brings up every link).
        paths = self.paths_for(view) if self._fell_back else None
        moves: list[Move] = []
        for flow_id in sorted(self._fell_back):
            flow = self._table.get(flow_id)
            policy = self._policy_of.get(flow_id)
            if flow is None or policy is None or policy.strategy is not Strategy.PINNED:
                self._fell_back.discard(flow_id)
                continue
            request = self._request(flow)
            assert paths is not None
            route, _ = pinned_route(request, view=view, policy=policy, paths=paths)
            if route is None:
                continue
            if route == flow.path:  # the fallback had chosen the pinned path anyway
                self._table.replace(replace(flow, fell_back=False))
                self._fell_back.discard(flow_id)
                continue
            moves.append(self._move(flow, route, now=now, reason="policy", fell_back=False))
        outcome = self._retry_stranded(view, now)
        return Outcome(moves=(*moves, *outcome.moves), stranded=outcome.stranded)

    def undrain(self, links: Iterable[LinkId], view: Network, now: float) -> Outcome:
        """Links are usable again: the same as :meth:`on_links_up`."""
        return self.on_links_up(links, view, now)

    def drain(self, links: Iterable[LinkId], view: Network, now: float) -> Outcome:
        """Move flows off ``links`` (reason "drain"); ``view`` should already mark them
        drained (they are added if not). Flows with nowhere else to go stay (stuck)."""
        drained = frozenset(links)
        if not drained <= view.drained:
            if isinstance(view, FabricState):
                for lid in drained:  # the owner's state learns the drain it forgot
                    view.set_drained(lid, True)
            else:
                view = replace(view, drained=view.drained | drained)
        self._recent.expire(now)
        affected: set[int] = set()
        for lid in drained:
            affected |= self._table.ids_on(lid)
        return self._replace_all(sorted(affected), view, now, reason="drain", avoid=frozenset())

    def rebalance(
        self,
        view: Network,
        now: float,
        *,
        reason: str = "rebalance",
        hot: Iterable[LinkId] | None = None,
    ) -> Outcome:
        """One round: retry stranded flows and flows left on drained links, then move the
        fewest flows needed off each hot link (see :mod:`controller.te.rebalance`); where
        that first fit is stuck, the measured elephants are re-placed jointly when that
        does better (:mod:`controller.te.elephants`)."""
        if reason not in ("rebalance", "congestion"):
            raise InvalidArgument("reason", f"must be 'rebalance' or 'congestion', got {reason!r}")
        self._recent.expire(now)
        repaired = self._retry_stranded(view, now)
        on_drained: set[int] = set()
        for lid in view.drained:
            on_drained |= self._table.ids_on(lid)
        budget = self._max_moves - len(repaired.moves)
        undrained = self._replace_all(
            sorted(on_drained)[: max(0, budget)], view, now, reason="drain", avoid=frozenset()
        )
        budget -= len(undrained.moves)
        if hot is None:  # with a state, only links above the floor need a look
            hot = self._chooser.loaded_links(view, congestion_floor(self._policy_of))
        plan = plan_rebalance(
            table=self._table,
            policy_of=self._policy_of,
            view=view,
            extra=self._recent,
            ranker=lambda flow, policy, delta: self._chooser.rank(flow, policy, view, delta),
            now=now,
            max_moves=max(0, budget),
            hot=hot,
        )
        if self._joint and plan.stuck:
            joint = plan_joint(
                table=self._table,
                policy_of=self._policy_of,
                view=view,
                extra=self._recent,
                greedy=plan,
                now=now,
                max_moves=max(0, budget),
                paths=self.paths_for(view),
            )
            plan = joint or plan
        moves = [*repaired.moves, *undrained.moves]
        for r in plan.relocations:
            if (flow := self._table.get(r.flow_id)) is not None:
                moves.append(self._move(flow, r.path, now=now, reason=reason, detail=r.detail))
        return Outcome(
            moves=tuple(moves),
            stranded=repaired.stranded,
            stuck=(*undrained.stuck, *plan.stuck),
            held=plan.held,
            hot=plan.hot,
        )

    def policies_changed(
        self,
        book_lookup: Callable[[FiveTuple, int], Policy | None],
        view: Network,
        now: float,
    ) -> tuple[list[Move], list[int]]:
        """Re-place flows whose governing policy changed (reason "policy").

        ``book_lookup(five_tuple, dscp)`` gives the policy that governs a flow
        now. Flows no longer governed by a per-flow policy are returned as ids
        for the caller to :meth:`remove` (they return to default forwarding).
        """
        self._recent.expire(now)
        moves: list[Move] = []
        ungoverned: list[int] = []
        for flow in self._table.snapshot():
            new = book_lookup(flow.five_tuple, flow.dscp)
            if new is None or new.is_catch_all:
                ungoverned.append(flow.flow_id)
                continue
            old = self._policy_of[flow.flow_id]
            self._policy_of[flow.flow_id] = new
            if routing_identity(new) == routing_identity(old):
                continue
            if new.name != flow.policy:
                flow = replace(flow, policy=new.name)
                self._table.replace(flow)
            move = self._reroute(flow, new, view, now, reason="policy", avoid=frozenset())
            if move is not None:
                moves.append(move)
        return moves, ungoverned

    # -------------------------------------------------------------- internals
    def _request(self, flow: TrackedFlow) -> FlowRequest:
        return FlowRequest(
            five_tuple=flow.five_tuple,
            ingress=flow.ingress.dpid,
            egress=flow.egress.dpid,
            demand_bps=flow.load_bps,
        )

    def _reroute(
        self,
        flow: TrackedFlow,
        policy: Policy,
        view: Network,
        now: float,
        *,
        reason: str,
        avoid: frozenset[LinkId],
        blocked: np.ndarray | None = None,
    ) -> Move | None:
        """Choose afresh for a tracked flow: the move, or None if it stays where it is.
        ``blocked`` is ``avoid`` as a slot mask (see PathChooser.blocked_mask)."""
        # Its own load off its path, unless all that path is avoided (a lost spine's
        # flows: no candidate shares a link with it; the compiled scoring answers).
        links = flow.path.links
        own = () if all(lid in avoid for lid in links) else ({k: -flow.load_bps for k in links},)
        try:
            choice = self._chooser.choose(
                self._request(flow), policy, view, avoid=avoid, deltas=own, blocked=blocked
            )
        except FailedPrecondition:
            return None
        crosses_drained = any(lid in view.drained for lid in choice.path.links)
        if crosses_drained and self._chooser.alive(view, flow.path, avoid):
            # Only drained paths are left and the current one still works:
            # hopping between drained links gains nothing.
            return None
        if choice.path == flow.path:
            if choice.fell_back != flow.fell_back:
                self._table.replace(replace(flow, fell_back=choice.fell_back))
                self._track_fallback(flow.flow_id, choice.fell_back)
            return None
        return self._move(
            flow,
            choice.path,
            now=now,
            reason=reason,
            fell_back=choice.fell_back,
            detail=choice.reason,
        )

    def _replace_all(
        self,
        flow_ids: Iterable[int],
        view: Network,
        now: float,
        *,
        reason: str,
        avoid: frozenset[LinkId],
    ) -> Outcome:
        moves: list[Move] = []
        stranded: list[int] = []
        stuck: list[int] = []
        blocked = avoid | view.drained
        mask = self._chooser.blocked_mask(view, avoid)
        for flow_id in flow_ids:
            flow = self._table.get(flow_id)
            policy = self._policy_of.get(flow_id)
            if flow is None or policy is None:
                continue
            move = self._reroute(flow, policy, view, now, reason=reason, avoid=avoid, blocked=mask)
            if move is not None:
                moves.append(move)
                self._stranded.discard(flow_id)
            elif not self._chooser.alive(view, flow.path, avoid):
                stranded.append(flow_id)
                self._stranded.add(flow_id)
            elif any(lid in blocked for lid in flow.path.links):
                # Still on a drained link: nothing else to go to.
                stuck.append(flow_id)
        return Outcome(moves=tuple(moves), stranded=tuple(stranded), stuck=tuple(stuck))

    def _retry_stranded(self, view: Network, now: float) -> Outcome:
        for flow_id in list(self._stranded):
            flow = self._table.get(flow_id)
            if flow is None or self._chooser.alive(view, flow.path, frozenset()):
                self._stranded.discard(flow_id)  # healed in place (or gone)
        return self._replace_all(
            sorted(self._stranded), view, now, reason="failure", avoid=frozenset()
        )

    def _move(
        self,
        flow: TrackedFlow,
        path: Path,
        *,
        now: float,
        reason: str,
        fell_back: bool | None = None,
        detail: str = "",
    ) -> Move:
        moved = self._table.move(flow.flow_id, path, reason=reason, now=now)
        if fell_back is not None and fell_back != moved.fell_back:
            moved = replace(moved, fell_back=fell_back)
            self._table.replace(moved)
        self._track_fallback(flow.flow_id, moved.fell_back)
        old_links, new_links = set(flow.path.links), set(path.links)
        load = flow.load_bps
        self._recent.add([lid for lid in path.links if lid not in old_links], load, now=now)
        self._recent.add([lid for lid in flow.path.links if lid not in new_links], -load, now=now)
        return Move(flow.flow_id, flow.path, path, reason, moved.generation, detail)

    def _track_fallback(self, flow_id: int, fell_back: bool) -> None:
        if fell_back:
            self._fell_back.add(flow_id)
        else:
            self._fell_back.discard(flow_id)
