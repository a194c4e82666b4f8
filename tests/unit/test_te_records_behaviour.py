"""The traffic engineer's records: flow ids, the flow table's errors, recent load.

Flow ids end up in rule cookies and in every API answer, so their allocation
(increasing, skipping ids in use, wrapping past 2**32 - 1 to 1) is checked
across the wrap; recent load is the reservation that keeps two flows placed at
once apart, so when it appears, settles and expires is checked to the second.
"""

from __future__ import annotations

import dataclasses

import pytest
from synthetic import five_tuple, leaf_spine

from controller.errors import AlreadyExists, NotFound
from controller.fabric.model import LinkId, Path, PortRef
from controller.routing.paths import PathCache
from controller.te.flowtable import MAX_FLOW_ID, FlowTable, TrackedFlow
from controller.te.recent import LoadOverlay, RecentLoad

FAB = leaf_spine(2, 2)
PATH = PathCache(FAB.graph).paths(FAB.dpid("leaf1"), FAB.dpid("leaf2"))[0]
UP, DOWN = PATH.links


def flow(flow_id: int, i: int, path: Path = PATH) -> TrackedFlow:
    return TrackedFlow(
        flow_id=flow_id,
        five_tuple=five_tuple(i),
        dscp=0,
        policy="ai",
        ingress=PortRef(path.ingress, 9),
        egress=PortRef(path.egress, 9),
        path=path,
        placed_at=0.0,
        demand_bps=1e6,
    )


# ---------------------------------------------------------------------- flow ids
def test_allocation_skips_ids_in_use() -> None:
    table = FlowTable(first_id=5)
    table.add(flow(5, 1))
    table.add(flow(6, 2))
    assert table.allocate_id() == 7


def test_allocation_wraps_to_one_when_the_last_id_is_taken() -> None:
    table = FlowTable(first_id=MAX_FLOW_ID)
    table.add(flow(MAX_FLOW_ID, 1))
    assert table.allocate_id() == 1
    crowded = FlowTable(first_id=MAX_FLOW_ID - 1)
    crowded.add(flow(MAX_FLOW_ID - 1, 1))
    crowded.add(flow(MAX_FLOW_ID, 2))
    crowded.add(flow(1, 3))
    assert crowded.allocate_id() == 2


# ----------------------------------------------------------------- table errors
def test_table_errors_name_the_flow() -> None:
    table = FlowTable()
    table.add(flow(1, 1))
    with pytest.raises(AlreadyExists) as exists:
        table.add(flow(1, 2))
    assert str(exists.value) == "flow '1' already exists"
    with pytest.raises(AlreadyExists) as same_tuple:
        table.add(flow(2, 1))
    assert str(same_tuple.value) == f"flow '{five_tuple(1)}' already exists"
    with pytest.raises(NotFound) as missing:
        table.replace(flow(3, 3))
    assert str(missing.value) == "flow '3' not found"
    with pytest.raises(NotFound) as gone:
        table.move(4, PATH, reason="failure", now=1.0)
    assert str(gone.value) == "flow '4' not found"
    with pytest.raises(ValueError) as changed:
        table.replace(dataclasses.replace(flow(1, 1), five_tuple=five_tuple(7)))
    assert str(changed.value) == "flow 1: the 5-tuple of a tracked flow cannot change"
    with pytest.raises(ValueError) as moved_in:
        table.replace(dataclasses.replace(flow(1, 1), ingress=PortRef(99, 1)))
    assert str(moved_in.value) == "flow 1: the ingress of a tracked flow cannot change"
    with pytest.raises(NotFound) as unknown:
        table.set_rate(5, 1e6)
    assert str(unknown.value) == "flow '5' not found"
    assert table.ingress_switches() == {flow(1, 1).ingress.dpid}


# ----------------------------------------------------------------- recent load
def test_a_reservation_lasts_exactly_visibility_s() -> None:
    recent = RecentLoad(visibility_s=3.0)
    recent.add(PATH.links, 5e6, now=10.0)
    recent.expire(12.999)
    assert dict(recent) == {UP: 5e6, DOWN: 5e6}
    recent.expire(13.0)
    assert dict(recent) == {} and len(recent) == 0


def test_a_settled_reservation_leaves_nothing_behind_when_it_expires() -> None:
    recent = RecentLoad(visibility_s=3.0)
    recent.add(PATH.links, 5e6, now=0.0, key=7)
    recent.add([UP], 2e6, now=0.0, key=8)
    recent.settle(7)
    assert dict(recent) == {UP: 2e6}
    recent.settle(7)  # twice is harmless
    recent.expire(5.0)
    assert dict(recent) == {} and recent.get(UP) == 0.0 and recent.get(DOWN) == 0.0


def test_with_zero_visibility_nothing_is_reserved() -> None:
    recent = RecentLoad(visibility_s=0.0)
    recent.add(PATH.links, 5e6, now=0.0, key=1)
    assert dict(recent) == {} and recent.visibility_s == 0.0
    with pytest.raises(ValueError) as err:
        RecentLoad(visibility_s=-1.0)
    assert str(err.value) == "visibility_s must be >= 0, got -1.0"


def test_reservations_add_up_and_iterate_like_a_mapping() -> None:
    recent = RecentLoad(visibility_s=3.0)
    recent.add(PATH.links, 5e6, now=0.0)
    recent.add([UP], -2e6, now=0.0)  # a move took 2 Mbit/s off the uplink
    assert sorted(recent) == sorted([UP, DOWN])
    assert recent[UP] == 3e6 and recent.live == {UP: 3e6, DOWN: 5e6}
    recent.add([UP], -3e6, now=0.0)  # back to nothing: the link is forgotten
    assert list(recent) == [DOWN]


def test_a_load_overlay_adds_every_layer_per_link() -> None:
    other = LinkId(PortRef(1, 1), PortRef(2, 2))
    base = {UP: 10.0}
    overlay = LoadOverlay(base, {UP: 5.0, DOWN: 1.0}, {UP: -2.0})
    assert overlay.get(UP) == 13.0 and overlay[UP] == 13.0
    assert overlay.get(DOWN) == 1.0 and overlay[DOWN] == 1.0
    assert overlay.get(other) == 0.0 and overlay.get(other, 4.0) == 4.0
    assert sorted(overlay) == sorted([UP, DOWN]) and len(overlay) == 2
    assert dict(overlay) == {UP: 13.0, DOWN: 1.0}
    with pytest.raises(KeyError) as err:
        overlay[other]
    assert err.value.args == (other,)
    only_base = LoadOverlay({DOWN: 2.0})
    assert only_base[DOWN] == 2.0 and list(only_base) == [DOWN]
