"""Recent (not yet measured) load kept per slot, lined up with a fabric state's layout."""

from __future__ import annotations

import pytest
from synthetic import leaf_spine

from controller.fabric.model import LinkId, PortRef
from controller.routing.layout import build_layout
from controller.te.recent import RecentLoad

FAB = leaf_spine(2, 3)
LINKS = sorted(attrs["link"] for _, _, attrs in FAB.graph.edges(data=True))
STRAY = LinkId(PortRef(77, 1), PortRef(78, 1))  # a link no layout knows


def test_amounts_survive_binding_and_expire_from_the_new_slots() -> None:
    recent = RecentLoad(visibility_s=2.0)
    a, b = LINKS[0], LINKS[5]
    recent.add([a, b], 5e6, now=0.0, key=1)
    recent.add([b, STRAY], 1e6, now=1.0)
    assert dict(recent) == {a: 5e6, b: 6e6, STRAY: 1e6}
    layout = build_layout(LINKS, edges=LINKS, switches=FAB.names)
    recent.bind(layout)
    assert recent.layout is layout and len(recent.by_slot) == layout.size
    assert recent.by_slot[layout.slot(b)] == 6e6
    assert dict(recent) == {a: 5e6, b: 6e6, STRAY: 1e6}  # the stray link is kept aside
    recent.settle(1)  # flow 1 measured: its estimate leaves both links
    assert dict(recent) == {b: 1e6, STRAY: 1e6}
    recent.expire(3.5)
    assert dict(recent) == {} and len(recent) == 0
    assert recent.get(a, -1.0) == -1.0
    with pytest.raises(KeyError):
        recent[a]


def test_a_later_layout_that_knows_a_stray_link_takes_it_in() -> None:
    recent = RecentLoad(visibility_s=5.0)
    recent.bind(build_layout(LINKS, edges=LINKS, switches=FAB.names))
    recent.add([STRAY, LINKS[1]], 2e6, now=0.0)
    wider = build_layout([*LINKS, STRAY], edges=LINKS, switches=FAB.names)
    recent.bind(wider)
    assert recent.by_slot[wider.slot(STRAY)] == 2e6
    recent.expire(5.0)
    assert not recent.by_slot.any() and dict(recent) == {}


def test_residue_of_adding_and_removing_is_dropped() -> None:
    recent = RecentLoad(visibility_s=1.0)
    recent.add([LINKS[2]], 0.1 + 0.2, now=0.0)
    recent.add([LINKS[2]], -0.3, now=0.0)
    assert LINKS[2] not in recent and len(recent) == 0
