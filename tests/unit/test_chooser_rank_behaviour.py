"""The rebalancer's ranking from the state's arrays equals the general ranking.

:meth:`PathChooser.rank` answers from the placement state's leaf x spine rows
when it can (``fastpath.rank``) and otherwise ranks enumerated paths
(``rank_candidates``). Both must give the same paths in the same order for
every strategy, a pinned policy ranking by its fallback, with measured load,
recent load, a round's planned moves, a drained link and a cable down.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest
from synthetic import five_tuple, leaf_spine

from controller.fabric.model import Path, PortRef
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.routing.fabricstate import FabricState
from controller.routing.paths import DEFAULT_MAX_PATHS
from controller.routing.strategies import FlowRequest
from controller.te.chooser import PathChooser
from controller.te.flowtable import TrackedFlow
from controller.te.rebalance import rank_candidates
from controller.te.recent import RecentLoad

UDP = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
SPINES, LEAVES = 6, 4
CASES = [
    (Strategy.SHORTEST, Strategy.LEAST_UTILIZED),
    (Strategy.ECMP, Strategy.LEAST_UTILIZED),
    (Strategy.LEAST_UTILIZED, Strategy.ECMP),
    (Strategy.WIDEST, Strategy.ECMP),
    (Strategy.WEIGHTED, Strategy.ECMP),
    (Strategy.PINNED, Strategy.ECMP),
    (Strategy.PINNED, Strategy.WEIGHTED),
    (Strategy.PINNED, Strategy.WIDEST),
    (Strategy.PINNED, Strategy.PINNED),  # ranks as shortest
]


def _drawer(rng: random.Random, *, few_levels: bool) -> Callable[[], float]:
    """Loads to draw; few distinct ones make the first ranking key tie, so the
    second decides."""
    if few_levels:
        return lambda: rng.choice((1e9, 3e9, 6e9))
    return lambda: rng.uniform(0, 9e9)


def _policy(strategy: Strategy, fallback: Strategy) -> Policy:
    return Policy(
        name="p",
        priority=10,
        match=(UDP,),
        strategy=strategy,
        fallback=fallback,
        weights=(("spine1", 3.0), ("spine2", 0.0), ("spine4", 0.5)),
        pinned_path=("leaf1", "spine3", "leaf2"),
    )


@pytest.mark.parametrize(("strategy", "fallback"), CASES, ids=lambda s: s.value)
def test_fast_ranking_equals_the_general_one(strategy: Strategy, fallback: Strategy) -> None:
    fab = leaf_spine(SPINES, LEAVES)
    policy = _policy(strategy, fallback)
    links = sorted(fab.capacity)
    compared = 0
    for trial in range(12):
        rng = random.Random(trial)
        state = FabricState.from_view(fab.view())
        draw = _drawer(rng, few_levels=trial % 2 == 0)
        state.set_loads({lid: draw() for lid in links})
        if trial % 3:
            state.set_drained(fab.link("leaf1", f"spine{rng.randint(1, SPINES)}"), True)
        if trial % 4 == 1:
            for lid in fab.cable("leaf2", f"spine{rng.randint(1, SPINES)}"):
                state.link_down(lid)
        recent = RecentLoad(visibility_s=3.0)
        chooser = PathChooser(seed=trial, max_paths=DEFAULT_MAX_PATHS, recent=recent)
        if trial % 2:
            recent.add(rng.sample(links, 8), rng.uniform(1e9, 5e9), now=0.0, key=1)
        src, dst = "leaf1", f"leaf{rng.randint(2, LEAVES)}"
        spine = next(
            f"spine{s}"
            for s in range(1, SPINES + 1)
            if state.is_edge(fab.link(src, f"spine{s}"))
            and state.is_edge(fab.link(f"spine{s}", dst))
        )
        flow = TrackedFlow(
            flow_id=7,
            five_tuple=five_tuple(trial),
            dscp=0,
            policy=policy.name,
            ingress=PortRef(fab.dpid(src), 100),
            egress=PortRef(fab.dpid(dst), 100),
            path=Path(
                switches=(fab.dpid(src), fab.dpid(spine), fab.dpid(dst)),
                links=(fab.link(src, spine), fab.link(spine, dst)),
            ),
            placed_at=0.0,
            demand_bps=1e9 if trial % 2 == 0 else rng.uniform(1e8, 4e9),
        )
        delta = {lid: draw() - 1e9 for lid in rng.sample(links, 10)}
        assert state.rows(fab.dpid(src), fab.dpid(dst)) is not None  # the fast path answers
        fast = [p.switches for p in chooser.rank(flow, policy, state, delta)]
        general = rank_candidates(
            flow,
            policy,
            paths=chooser.paths_for(state),
            view=state,
            extra=recent,
            delta=delta,
            seed=trial,
        )
        assert fast == [p.switches for p in general], f"trial {trial}"
        assert fast, f"trial {trial}: nothing ranked"
        compared += len(fast) > 1
    assert compared >= 10


@pytest.mark.parametrize(
    "strategy",
    [Strategy.SHORTEST, Strategy.ECMP, Strategy.LEAST_UTILIZED, Strategy.WIDEST, Strategy.WEIGHTED],
    ids=lambda s: s.value,
)
def test_fast_choice_with_avoided_links_and_deltas_equals_the_general_one(
    strategy: Strategy,
) -> None:
    """A move's choice (links to avoid, the flow's own load taken off) from the arrays
    and from enumerated paths on a view of the same fabric: same path, same reason."""
    fab = leaf_spine(SPINES, LEAVES)
    policy = _policy(strategy, Strategy.ECMP)
    links = sorted(fab.capacity)
    differing = 0
    for trial in range(16):
        rng = random.Random(100 + trial)
        draw = _drawer(rng, few_levels=trial % 2 == 0)
        loads = {lid: draw() for lid in links}
        state = FabricState.from_view(fab.view(load=loads))
        _ = state.layout
        view = fab.view(load=loads)
        src, dst = "leaf1", f"leaf{rng.randint(2, LEAVES)}"
        avoid = frozenset(
            fab.link(src, f"spine{s}") for s in rng.sample(range(1, SPINES + 1), trial % 3)
        )
        deltas = ({lid: draw() - 1e9 for lid in rng.sample(links, 10)},) if trial % 4 else ()
        request = FlowRequest(five_tuple(trial), fab.dpid(src), fab.dpid(dst), 1e9)
        picks = []
        for network, blocked in ((state, PathChooser.blocked_mask(state, avoid)), (view, None)):
            recent = RecentLoad(visibility_s=3.0)
            chooser = PathChooser(seed=trial, max_paths=DEFAULT_MAX_PATHS, recent=recent)
            choice = chooser.choose(
                request, policy, network, avoid=avoid, deltas=deltas, blocked=blocked
            )
            picks.append((choice.path.switches, choice.reason, bool(choice.slots)))
        (fast_path, fast_reason, from_arrays), (path, reason, _) = picks
        assert from_arrays, f"trial {trial}: the state did not answer from its arrays"
        assert (fast_path, fast_reason) == (path, reason), f"trial {trial}"
        assert not set(itertools.pairwise(fast_path)) & {
            (lid.src.dpid, lid.dst.dpid) for lid in avoid
        }
        differing += bool(avoid)
    assert differing >= 8
