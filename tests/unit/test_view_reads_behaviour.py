"""What every fabric view reads the same way: utilization, and a snapshot with new load.

Guards :meth:`ViewBase.utilization` (measured load plus an extra demand over
the capacity, unknown capacities substituted, never negative; an unmeasured
link is idle) on both view kinds, and :meth:`NetworkView.with_load` (the
snapshot keeps everything of the view but its load: graph, capacities, drains,
switch names and the stand-in for unknown capacities).
"""

from __future__ import annotations

import pytest
from synthetic import GBIT, leaf_spine

from controller.fabric.model import LinkId, PortRef
from controller.routing.fabricstate import FabricState
from controller.routing.strategies import NetworkView
from controller.routing.viewbase import ViewBase


def views() -> list[tuple[ViewBase, LinkId, LinkId]]:
    """Both kinds of view of one fabric: a loaded link (3 of 10 Gbit/s) and an idle one."""
    fab = leaf_spine(2, 2, capacity_bps=10 * GBIT)
    loaded, idle = fab.link("leaf1", "spine1"), fab.link("leaf2", "spine2")
    snapshot = fab.view(load={loaded: 3 * GBIT})
    state = FabricState.from_view(snapshot)
    return [(snapshot, loaded, idle), (state, loaded, idle)]


@pytest.mark.parametrize("which", [0, 1])
def test_utilization_is_load_plus_extra_over_capacity(which: int) -> None:
    view, loaded, idle = views()[which]
    assert view.utilization(idle) == 0.0  # nothing measured: idle, exactly
    assert view.utilization(loaded) == pytest.approx(0.3)
    assert view.utilization(idle, extra_bps=5 * GBIT) == pytest.approx(0.5)
    assert view.utilization(loaded, extra_bps=2 * GBIT) == pytest.approx(0.5)
    assert view.utilization(idle, extra_bps=0.5) == pytest.approx(0.5 / (10 * GBIT))
    # A negative extra (load moving off) never makes a link look better than idle.
    assert view.utilization(loaded, extra_bps=-4 * GBIT) == 0.0
    assert view.utilization(loaded, extra_bps=-1 * GBIT) == pytest.approx(0.2)


def test_utilization_of_an_unknown_link_or_capacity_uses_the_stand_in() -> None:
    stranger = LinkId(PortRef(7, 1), PortRef(8, 1))
    view = NetworkView(graph=leaf_spine(1, 1).graph, unknown_capacity_bps=4e9)
    assert view.utilization(stranger) == 0.0
    assert view.utilization(stranger, extra_bps=1e9) == pytest.approx(0.25)


def test_with_load_keeps_everything_but_the_load() -> None:
    fab = leaf_spine(2, 2)
    lid, other = fab.link("leaf1", "spine1"), fab.link("leaf1", "spine2")
    stranger = LinkId(PortRef(7, 1), PortRef(8, 1))  # no configured capacity
    base = NetworkView(
        graph=fab.graph,
        capacity=fab.capacity,
        load_bps={lid: 1.0},
        drained=frozenset({other}),
        names=fab.names,
        unknown_capacity_bps=2e9,
    )
    for view in (base, FabricState.from_view(base)):
        snap = NetworkView.with_load(view, {lid: 5 * GBIT})
        assert snap.load_bps == {lid: 5 * GBIT}
        assert snap.utilization(lid) == pytest.approx(0.5)
        assert snap.graph is view.graph
        assert snap.drained == frozenset({other})
        assert snap.capacity_of(stranger) == 2e9
        assert snap.utilization(stranger, extra_bps=1e9) == pytest.approx(0.5)
        leaf1 = fab.dpid("leaf1")
        assert snap.label(leaf1) == "leaf1"
        assert snap.dpid_of("spine2") == fab.dpid("spine2")
