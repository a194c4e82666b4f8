"""The flow table: ids, generations and the link index under many changes."""

from __future__ import annotations

import dataclasses
import random

import pytest
from synthetic import five_tuple, leaf_spine

from controller.errors import AlreadyExists, NotFound
from controller.fabric.model import LinkId, Path, PortRef
from controller.routing.paths import PathCache
from controller.te.flowtable import MAX_FLOW_ID, FlowTable, TrackedFlow

FAB = leaf_spine(3, 4)
PATHS = PathCache(FAB.graph)


def path(src: str, dst: str, k: int = 0) -> Path:
    return PATHS.paths(FAB.dpid(src), FAB.dpid(dst))[k]


def tracked(table: FlowTable, i: int, p: Path) -> TrackedFlow:
    flow = TrackedFlow(
        flow_id=table.allocate_id(),
        five_tuple=five_tuple(i),
        dscp=26,
        policy="ai",
        ingress=PortRef(p.ingress, 10),
        egress=PortRef(p.egress, 10),
        path=p,
        placed_at=1.0,
        demand_bps=1e6,
    )
    table.add(flow)
    return flow


def test_lookup_by_id_tuple_and_link() -> None:
    table = FlowTable()
    a = tracked(table, 1, path("leaf1", "leaf2", 0))
    b = tracked(table, 2, path("leaf1", "leaf3", 1))
    assert (a.flow_id, b.flow_id) == (1, 2)
    assert table.get(2) == b and table.by_five_tuple(five_tuple(1)) == a
    assert table.ids_on(FAB.link("leaf1", "spine1")) == {1}
    assert table.ids_on(FAB.link("leaf1", "spine2")) == {2}
    assert table.snapshot() == (a, b)
    with pytest.raises(AlreadyExists):
        table.add(a)
    assert table.remove(1) == a and table.remove(1) is None
    assert table.ids_on(FAB.link("leaf1", "spine1")) == frozenset()
    assert table.by_five_tuple(five_tuple(1)) is None


def test_move_bumps_generation_with_16_bit_wrap_and_reindexes() -> None:
    table = FlowTable()
    flow = tracked(table, 1, path("leaf1", "leaf2", 0))
    table.replace(dataclasses.replace(flow, generation=0xFFFF))
    moved = table.move(flow.flow_id, path("leaf1", "leaf2", 2), reason="congestion", now=5.0)
    assert (moved.generation, moved.moves, moved.last_move_reason) == (0, 1, "congestion")
    assert moved.settled_at == 5.0 and flow.settled_at == 1.0
    assert table.ids_on(FAB.link("leaf1", "spine1")) == frozenset()
    assert table.ids_on(FAB.link("leaf1", "spine3")) == {flow.flow_id}
    with pytest.raises(NotFound):
        table.move(99, path("leaf1", "leaf2"), reason="policy", now=6.0)


def test_move_and_a_measured_rate_keep_every_other_field() -> None:
    table = FlowTable()
    flow = tracked(table, 1, path("leaf1", "leaf2", 0))
    # Every field set to a value of its own, so a field dropped or shifted shows.
    flow = dataclasses.replace(
        flow, rate_bps=7.0, measured=True, fell_back=True, generation=4, moves=2, dscp=46
    )
    table.replace(flow)
    new_path = path("leaf1", "leaf2", 1)
    moved = table.move(flow.flow_id, new_path, reason="drain", now=9.0)
    assert moved == dataclasses.replace(
        flow, path=new_path, generation=5, last_move_at=9.0, moves=3, last_move_reason="drain"
    )
    assert moved.with_rate(3.0) == dataclasses.replace(moved, rate_bps=3.0, measured=True)


def test_ids_increase_skip_used_ids_wrap_and_never_reach_zero() -> None:
    table = FlowTable(first_id=MAX_FLOW_ID - 1)
    first = tracked(table, 1, path("leaf1", "leaf2"))
    second = tracked(table, 2, path("leaf1", "leaf2"))
    third = tracked(table, 3, path("leaf1", "leaf2"))
    assert (first.flow_id, second.flow_id, third.flow_id) == (MAX_FLOW_ID - 1, MAX_FLOW_ID, 1)
    table = FlowTable()
    for i in range(1, 4):
        tracked(table, i, path("leaf1", "leaf2"))
    table.remove(2)
    assert table.allocate_id() == 4  # increasing, not reusing 2 straight away
    wrapped = FlowTable(first_id=MAX_FLOW_ID)
    tracked(wrapped, 1, path("leaf1", "leaf2"))
    tracked(wrapped, 2, path("leaf1", "leaf2"))  # takes 1
    assert wrapped.allocate_id() == 2
    with pytest.raises(ValueError, match="first_id"):
        FlowTable(first_id=0)


def expected_index(table: FlowTable) -> dict[LinkId, set[int]]:
    index: dict[LinkId, set[int]] = {}
    for flow in table.snapshot():
        for lid in flow.path.links:
            index.setdefault(lid, set()).add(flow.flow_id)
    return index


@pytest.mark.parametrize("seed", range(5))
def test_link_index_stays_consistent_under_random_changes(seed: int) -> None:
    rng = random.Random(seed)
    table = FlowTable()
    all_links = [attrs["link"] for _, _, attrs in FAB.graph.edges(data=True)]
    next_tuple = 0
    for _ in range(600):
        op = rng.random()
        ids = [f.flow_id for f in table.snapshot()]
        if op < 0.4 or not ids:
            src, dst = rng.sample(FAB.leaves, 2)
            next_tuple += 1
            tracked(table, next_tuple, path(src, dst, rng.randrange(3)))
        elif op < 0.8:
            flow = table.get(rng.choice(ids))
            assert flow is not None
            src, dst = FAB.names[flow.path.ingress], FAB.names[flow.path.egress]
            table.move(flow.flow_id, path(src, dst, rng.randrange(3)), reason="rebalance", now=1)
        else:
            table.remove(rng.choice(ids))
        if rng.random() < 0.1:
            expected = expected_index(table)
            for lid in all_links:
                assert table.ids_on(lid) == expected.get(lid, set())
            assert set(table.busy_links()) == set(expected)
    expected = expected_index(table)
    assert {lid: set(table.ids_on(lid)) for lid in table.busy_links()} == expected
