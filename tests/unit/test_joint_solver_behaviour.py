"""Joint placement's entry point (controller.te.joint.place_jointly) on small fabrics.

Guards what callers of the joint placement rely on: bad pairs are refused
with a message naming the problem, an empty request is an empty plan, any
positive demand (however small) is placed, a 2-tier fabric is solved by the
leaf-spine colouring whatever its link speeds (with Koenig's bound reported),
and links with no measured load count as idle, not as slightly loaded.
"""

from __future__ import annotations

import re

import pytest
from synthetic import leaf_spine, three_tier

from controller.te.joint import JointPlan, PairDemand, place_jointly

MBIT = 1e6


def test_pair_keys_must_be_unique() -> None:
    fab = leaf_spine(2, 2)
    a, b = fab.dpid("leaf1"), fab.dpid("leaf2")
    pairs = [PairDemand("x", a, b, MBIT), PairDemand("x", b, a, MBIT)]
    with pytest.raises(ValueError, match=r"^pair keys must be unique$"):
        place_jointly(pairs, fab.view())


@pytest.mark.parametrize("demand", [0.0, -1.0])
def test_a_pair_needs_a_demand_above_zero(demand: float) -> None:
    fab = leaf_spine(2, 2)
    a, b = fab.dpid("leaf1"), fab.dpid("leaf2")
    pairs = [PairDemand("ok", a, b, MBIT), PairDemand("idle", a, b, demand)]
    message = f"pair 'idle' needs a demand above 0, got {demand}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        place_jointly(pairs, fab.view())


def test_no_pairs_make_an_empty_plan() -> None:
    fab = leaf_spine(2, 2)
    plan = place_jointly([], fab.view())
    assert plan == JointPlan((), 0.0, 0.0, "none")
    assert plan.moved == () and plan.unplaced == ()


def test_a_demand_below_one_bit_per_second_is_still_placed() -> None:
    for fab in (
        leaf_spine(2, 2, capacity_bps=100 * MBIT),
        three_tier(pods=2, leaves_per_pod=1, aggs_per_pod=1, spines=1, capacity_bps=100 * MBIT),
    ):
        a, b = fab.dpid(fab.leaves[0]), fab.dpid(fab.leaves[-1])
        plan = place_jointly([PairDemand("trickle", a, b, 0.5)], fab.view())
        path = plan.path_of("trickle")
        assert path is not None and path.switches[0] == a and path.switches[-1] == b
        assert plan.max_utilization == pytest.approx(0.5 / (100 * MBIT))


def test_a_two_tier_fabric_is_coloured_with_koenigs_bound() -> None:
    # Four 10 Mbit/s flows leaf1 -> leaf2 over two spines: two per link at best
    # (ceil(4 / 2)), so 20% on 100 Mbit/s links with nothing else on them.
    fab = leaf_spine(2, 3, capacity_bps=100 * MBIT)
    a, b = fab.dpid("leaf1"), fab.dpid("leaf2")
    pairs = [PairDemand(i, a, b, 10 * MBIT) for i in range(4)]
    plan = place_jointly(pairs, fab.view())
    assert plan.method == "colouring"
    assert plan.max_utilization == pytest.approx(0.2, rel=1e-12)
    assert plan.lower_bound == pytest.approx(0.2, abs=1e-9)
    spines = [fab.names[p.path.switches[1]] for p in plan.placements if p.path is not None]
    assert sorted(spines) == ["spine1", "spine1", "spine2", "spine2"]


def test_links_without_measured_load_count_as_idle() -> None:
    # Only leaf1 -> spine1 has a load entry (0); every other link has none. One
    # flow alone on its links: its own share of the link, to the last digit.
    fab = leaf_spine(2, 2, capacity_bps=100 * MBIT)
    a, b = fab.dpid("leaf1"), fab.dpid("leaf2")
    view = fab.view(load={fab.link("leaf1", "spine1"): 0.0})
    plan = place_jointly([PairDemand("x", a, b, 25 * MBIT)], view)
    assert plan.method == "colouring"
    assert plan.max_utilization == pytest.approx(0.25, rel=1e-12)
    assert plan.lower_bound == pytest.approx(0.25, abs=1e-9)


def test_slow_links_are_links_too() -> None:
    # Capacities in small units (1 per link): still a 2-tier fabric, coloured.
    fab = leaf_spine(2, 3, capacity_bps=1.0)
    a, b, c = fab.dpid("leaf1"), fab.dpid("leaf2"), fab.dpid("leaf3")
    pairs = [PairDemand("x", a, b, 0.25), PairDemand("y", a, c, 0.25), PairDemand("z", c, b, 0.25)]
    plan = place_jointly(pairs, fab.view())
    assert plan.method == "colouring" and plan.unplaced == ()
    assert plan.max_utilization == pytest.approx(0.25)
    assert plan.lower_bound == pytest.approx(0.25)
