"""Seeded random traffic-engineering workloads whose every decision is recorded.

Drives a :class:`~controller.te.engineer.TrafficEngineer` through placements,
previews, measured rates, a cable failure, a spine failure, drains, rebalance
rounds, links coming back and policy changes, on several synthetic fabrics
(leaf-spine, leaf-spine with shuffled cabling, more spines than ``max_paths``,
asymmetric, 3-tier) with every strategy. :func:`record` returns every decision
as plain JSON data, so a recording made with one implementation of the core
proves that another makes the same decisions (``te_decisions.json`` was
recorded before the placement core moved to dense arrays).

``state=True`` drives the same workload through a
:class:`~controller.routing.fabricstate.FabricState` kept up to date
incrementally, the way the engine keeps one, instead of a fresh
:class:`NetworkView` per call.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from synthetic import GBIT, Fabric, _build, asymmetric, leaf_spine, three_tier

from controller.errors import FailedPrecondition
from controller.fabric.model import FiveTuple, LinkId, Path
from controller.policy.model import FlowMatch, Policy, PolicyParams, Strategy
from controller.te.engineer import TrafficEngineer
from controller.te.results import Outcome

__all__ = ["SCENARIOS", "record", "record_all"]

AI = FlowMatch(ip_proto=17)


def shuffled_leaf_spine(spines: int, leaves: int, *, seed: int) -> Fabric:
    """A leaf-spine whose cables are plugged in random order: each leaf's port order
    towards the spines differs, so candidate order is not spine order."""
    rng = random.Random(seed)
    spine_names = [f"spine{s}" for s in range(1, spines + 1)]
    leaf_names = [f"leaf{i}" for i in range(1, leaves + 1)]
    switches = [(n, 0x1000 + i) for i, n in enumerate(leaf_names, 1)]
    switches += [(n, 0x100000 + s) for s, n in enumerate(spine_names, 1)]
    cables = [(leaf, spine, 10 * GBIT) for leaf in leaf_names for spine in spine_names]
    rng.shuffle(cables)
    return _build(switches, cables, leaves=leaf_names, spines=spine_names)


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Callable[[], Fabric]
    seed: int
    steps: int
    max_paths: int = 64


SCENARIOS = (
    Scenario("ls-2x4", lambda: leaf_spine(2, 4), seed=11, steps=240),
    Scenario("ls-4x8", lambda: leaf_spine(4, 8), seed=12, steps=400),
    Scenario("ls-8x16", lambda: leaf_spine(8, 16, capacity_bps=40 * GBIT), seed=13, steps=500),
    Scenario("ls-16x32", lambda: leaf_spine(16, 32), seed=18, steps=700),
    Scenario("shuffled-6x10", lambda: shuffled_leaf_spine(6, 10, seed=5), seed=14, steps=400),
    Scenario("ls-5x6-max3", lambda: leaf_spine(5, 6), seed=15, steps=300, max_paths=3),
    Scenario("asymmetric", asymmetric, seed=16, steps=240),
    Scenario(
        "3tier",
        lambda: three_tier(pods=2, leaves_per_pod=3, aggs_per_pod=2, spines=2),
        seed=17,
        steps=300,
    ),
)


def _policies(fab: Fabric) -> list[Policy]:
    quick = PolicyParams(congestion_threshold=0.7, clear_threshold=0.5, min_move_interval_s=0.5)
    spine = fab.spines[-1]
    mid = fab.middles[0] if fab.middles else spine
    return [
        Policy("lu", 10, match=(AI,), strategy=Strategy.LEAST_UTILIZED, params=quick),
        Policy("wide", 10, match=(AI,), strategy=Strategy.WIDEST),
        Policy("hash", 10, match=(AI,), strategy=Strategy.ECMP),
        Policy(
            "weigh",
            10,
            match=(AI,),
            strategy=Strategy.WEIGHTED,
            weights=((fab.spines[0], 3.0), (spine, 0.0), (fab.leaves[1], 2.0)),
        ),
        Policy(
            "pin",
            10,
            match=(AI,),
            strategy=Strategy.PINNED,
            pinned_path=(mid,),
            fallback=Strategy.LEAST_UTILIZED,
            params=quick,
        ),
        Policy(
            "pin-w",
            10,
            match=(AI,),
            strategy=Strategy.PINNED,
            pinned_path=(fab.leaves[0], fab.spines[0]),
            fallback=Strategy.WIDEST,
        ),
        Policy("short", 10, match=(AI,), strategy=Strategy.SHORTEST),
    ]


def _ft(i: int, rng: random.Random) -> FiveTuple:
    return FiveTuple(
        src_ip=f"10.1.{i >> 8 & 0xFF}.{i & 0xFF}",
        dst_ip=f"10.2.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        ip_proto=17,
        src_port=rng.randrange(1024, 65536),
        dst_port=4791,
    )


def _path(path: Path) -> list[list[int]]:
    return [[lid.src.dpid, lid.src.port, lid.dst.dpid, lid.dst.port] for lid in path.links] or [
        [path.switches[0]]
    ]


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {
        "moves": [
            [m.flow_id, _path(m.old_path), _path(m.new_path), m.reason, m.generation, m.detail]
            for m in outcome.moves
        ],
        "stranded": list(outcome.stranded),
        "stuck": list(outcome.stuck),
        "held": list(outcome.held),
        "hot": [str(lid) for lid in outcome.hot],
    }


class _Driver:
    """One scenario's engineer, fabric state and the views handed to it."""

    def __init__(self, scenario: Scenario, *, state: bool, joint: bool = False) -> None:
        self.fab = scenario.build()
        self.rng = random.Random(scenario.seed)
        self.te = TrafficEngineer(
            seed=scenario.seed,
            max_moves_per_round=6,
            max_paths=scenario.max_paths,
            joint_rebalance=joint,
        )
        self.all_links = sorted(attrs["link"] for _, _, attrs in self.fab.graph.edges(data=True))
        self.down: set[LinkId] = set()
        self.drained: set[LinkId] = set()
        self.load: dict[LinkId, float] = {}
        self.use_state = state
        self.state: Any = None
        if state:
            from controller.routing.fabricstate import FabricState

            self.state = FabricState.from_view(self.fab.view(), max_paths=scenario.max_paths)

    def view(self) -> Any:
        graph = self.fab.graph_without(links=self.down) if self.down else self.fab.graph
        if self.state is None:
            return self.fab.view(load=self.load, drained=self.drained, graph=graph)
        return self.state

    # State updates the engine would make from port stats, link events and drains.
    def set_load(self, load: dict[LinkId, float]) -> None:
        if self.state is not None:
            self.state.set_loads({lid: load.get(lid, 0.0) for lid in self.all_links})
        self.load = load

    def links_down(self, links: Iterable[LinkId]) -> None:
        links = list(links)
        self.down.update(links)
        if self.state is not None:
            for lid in links:
                self.state.link_down(lid)

    def links_up(self, links: Iterable[LinkId]) -> None:
        links = list(links)
        self.down.difference_update(links)
        if self.state is not None:
            for lid in links:
                self.state.link_up(lid)

    def set_drained(self, links: Iterable[LinkId], drained: bool) -> None:
        for lid in links:
            (self.drained.add if drained else self.drained.discard)(lid)
            if self.state is not None:
                self.state.set_drained(lid, drained)


def _random_load(d: _Driver, share: float) -> dict[LinkId, float]:
    rng = d.rng
    picked = rng.sample(d.all_links, max(1, int(len(d.all_links) * share)))
    return {lid: rng.uniform(0, 1.2) * d.fab.capacity[lid] for lid in picked}


def record(scenario: Scenario, *, state: bool = False, joint: bool = False) -> list[Any]:
    """Every decision of one scenario, in order, as JSON-able data. ``joint``: stuck
    rebalance rounds re-place elephants jointly (the recording was made without)."""
    d = _Driver(scenario, state=state, joint=joint)
    fab, rng, te = d.fab, d.rng, d.te
    pols = _policies(fab)
    hosts = [*fab.leaves, *fab.middles] if fab.middles else list(fab.leaves)
    log: list[Any] = []
    now = 0.0
    for step in range(scenario.steps):
        now += rng.choice((0.0, 0.05, 0.4, 1.1))
        op = rng.random()
        if step % 30 == 29:
            log.append(["phase", step, _phase(d, step // 30, now, pols)])
            continue
        if op < 0.08:
            d.set_load(_random_load(d, rng.choice((0.1, 0.3, 0.7))))
            log.append(["load", step])
        elif op < 0.13 and len(te):
            flows = te.snapshot()
            rates = {
                f.flow_id: rng.uniform(0.01, 1.5) * GBIT
                for f in rng.sample(flows, len(flows) // 2 + 1)
            }
            te.update_rates(rates, now)
            log.append(["rates", step, sorted(rates)])
        elif op < 0.16 and len(te):
            gone = rng.choice(te.snapshot()).flow_id
            log.append(["remove", step, gone, te.remove(gone) is not None])
        elif op < 0.2:
            src, dst = rng.sample(fab.leaves, 2)
            pol = rng.choice(pols)
            try:
                choice = te.preview(
                    _ft(10_000 + step, rng),
                    ingress=fab.dpid(src),
                    egress=fab.dpid(dst),
                    policy=pol,
                    view=d.view(),
                    now=now,
                    demand_bps=rng.uniform(0.1, 2) * GBIT,
                )
                log.append(
                    [
                        "preview",
                        step,
                        _path(choice.path),
                        choice.strategy.value,
                        choice.fell_back,
                        choice.reason,
                    ]
                )
            except FailedPrecondition as exc:
                log.append(["preview-failed", step, str(exc)])
        else:
            src, dst = rng.sample(hosts, 2) if rng.random() < 0.9 else (hosts[0], hosts[0])
            pol = rng.choice(pols)
            demand = rng.choice((None, rng.uniform(0.05, 3) * GBIT))
            try:
                placed = te.place(
                    _ft(step, rng),
                    dscp=26,
                    ingress=fab.host_port(src, rng.randrange(3))
                    if src in fab.leaves
                    else _middle_port(fab, src),
                    egress=fab.host_port(dst, rng.randrange(3))
                    if dst in fab.leaves
                    else _middle_port(fab, dst),
                    policy=pol,
                    view=d.view(),
                    now=now,
                    demand_bps=demand,
                )
                f = placed.flow
                log.append(
                    [
                        "place",
                        step,
                        f.flow_id,
                        _path(f.path),
                        placed.strategy.value,
                        placed.reason,
                        f.fell_back,
                        placed.created,
                    ]
                )
            except FailedPrecondition as exc:
                log.append(["place-failed", step, str(exc)])
    log.append(
        [
            "final",
            [
                [f.flow_id, _path(f.path), f.generation, f.moves, f.fell_back, f.last_move_reason]
                for f in te.snapshot()
            ],
            sorted(te.stranded()),
        ]
    )
    return log


def _middle_port(fab: Fabric, name: str) -> Any:
    from controller.fabric.model import PortRef

    return PortRef(fab.dpid(name), 200)


def _phase(d: _Driver, k: int, now: float, pols: list[Policy]) -> Any:
    """The k-th big event: cable failure, spine failure, drain, rebalance, heal, policies."""
    fab, rng, te = d.fab, d.rng, d.te
    kind = k % 7
    if kind == 0:  # one cable fails
        lid = rng.choice([lid for lid in d.all_links if lid not in d.down])
        cable = [lid, lid.reverse()]
        d.links_down(cable)
        return ["cable-down", _outcome(te.on_links_down(cable, d.view(), now))]
    if kind == 1:  # a whole spine fails
        spine = rng.choice(fab.spines)
        links = [lid for lid in fab.links_of(spine) if lid not in d.down]
        d.links_down(links)
        return ["spine-down", spine, _outcome(te.on_links_down(links, d.view(), now))]
    if kind == 2:  # drain two up links
        alive = [lid for lid in d.all_links if lid not in d.down and lid not in d.drained]
        links = rng.sample(alive, min(2, len(alive)))
        d.set_drained(links, True)
        return ["drain", _outcome(te.drain(links, d.view(), now))]
    if kind == 3:  # rebalance with measured rates and hot spots
        flows = te.snapshot()
        te.update_rates({f.flow_id: rng.uniform(0.2, 2.5) * GBIT for f in flows}, now)
        load: dict[LinkId, float] = {}
        for f in te.snapshot():
            for lid in f.path.links:
                load[lid] = load.get(lid, 0.0) + f.rate_bps
        d.set_load(load)
        hot = rng.choice((None, sorted(load, key=lambda lid: (-load[lid], lid))[:3]))
        reason = "congestion" if hot else "rebalance"
        return ["rebalance", _outcome(te.rebalance(d.view(), now + 5.0, reason=reason, hot=hot))]
    if kind == 4:  # everything heals, drains end
        back = sorted(d.down)
        d.links_up(back)
        up = _outcome(te.on_links_up(back, d.view(), now))
        undrained = sorted(d.drained)
        d.set_drained(undrained, False)
        return ["heal", up, _outcome(te.undrain(undrained, d.view(), now))]
    if kind == 5:  # a policy change: re-place or release
        by_name: Mapping[str, Policy] = {p.name: p for p in pols}
        swap = {
            "lu": replace(by_name["lu"], strategy=Strategy.WIDEST, version=2),
            "hash": replace(by_name["hash"], version=3, description="words"),
            "wide": replace(by_name["wide"], strategy=Strategy.LEAST_UTILIZED, version=4),
        }

        def lookup(ft: FiveTuple, dscp: int) -> Policy | None:
            flow = te.flow_by_five_tuple(ft)
            name = flow.policy if flow else ""
            if flow is not None and flow.flow_id % 11 == 0:
                return None
            return swap.get(name, by_name.get(name))

        moves, gone = te.policies_changed(lookup, d.view(), now)
        for fid in gone:
            te.remove(fid)
        return ["policies", _outcome(Outcome(moves=tuple(moves))), gone]
    # kind 6: a rebalance with default reasons on the current view
    with contextlib.suppress(FailedPrecondition):
        return ["rebalance-plain", _outcome(te.rebalance(d.view(), now))]
    return ["rebalance-plain-failed"]


def record_all(*, state: bool = False) -> dict[str, list[Any]]:
    return {s.name: record(s, state=state) for s in SCENARIOS}


if __name__ == "__main__":  # re-record: python tests/unit/te_workload.py OUT.json
    import gzip
    import json
    import sys

    data = json.dumps(record_all(), sort_keys=True, separators=(",", ":")).encode()
    with open(sys.argv[1], "wb") as out:
        out.write(gzip.compress(data, mtime=0))
