"""Per-flow work is O(path), never O(fabric): a new flow's work does not grow
with the fabric, and a failure's work grows with the flows on the failed
element only, not with all the flows placed.

Timings cannot show this on a shared 2-core machine, and they also grow with
the heap (cache misses) where the work does not. The work itself can be counted:
the Python lines the controller runs for one flow's first packet, from the
packet-in to the confirmed program (placement, rules, tables, notices,
metrics), traced with ``sys.settrace``. The same workload on a 4 x 16 and a
16 x 64 fabric (4 times the spines, 4 times the leaves, 16 times the links)
must cost the same number of lines per flow: one loop over the spines, the
leaves or the links per flow would add at least 12 lines per flow at the larger
size (~650 per flow here). What runs in C (choosing among the spines' columns
in the compiled kernel, dictionary lookups) is not counted: it is one pass over
the candidate paths, which is the decision itself.

Periodic work (the hub's polls, discovery) is per round, not per flow, and is
left out, as in the scale benchmark's setups.

A lost uplink is counted the same way in the traffic engineer (the state
learns the lost links, every flow on them is re-placed): leaf1 sends 200
flows, 20 to 50 of them over the lost uplink, while 1,000 or 10,000 other flows
run between the other leaves. The lines per moved flow must stay the same; a
scan of all flows placed, even at one line each, would add 1,200 lines to the
first reaction and 10,200 to the second (some 25 and 450 per moved flow).
"""

from __future__ import annotations

import random
from collections import Counter

from benchmarks import scale_measure
from benchmarks.flowsetup import lines_per_setup, spread_lab
from benchmarks.scale_measure import LINK_BPS, synthetic
from benchmarks.worklines import counting_lines
from controller.fabric.events import LinkDown
from controller.policy.model import Strategy

WARM = 200  # flows before counting: per-destination caches filled, as on a busy fabric
COUNTED = 200
LEAVES_USED = 4  # flows run between hosts of these leaves only, on every fabric size
OURS = 200  # flows from the leaf whose uplink is lost


def lines_per_flow(spines: int, leaves: int) -> tuple[float, Counter[tuple[str, str]]]:
    """Lines the controller runs per new flow (and by function) on a fabric this size."""
    spread = spread_lab(spines, leaves, warm=WARM, counted=COUNTED, leaves_used=LEAVES_USED)
    lines: Counter[tuple[str, str]] = Counter()
    per_flow = lines_per_setup(spread.lab, spread.absorb, spread.flows, lines)
    te = spread.lab.engine.placer.te
    flows = spread.warmed + spread.flows  # the warm-up's flows were placed too
    assert all(te.flow_by_five_tuple(f.five_tuple) is not None for f in flows)
    return per_flow, lines


def test_a_new_flow_costs_the_same_lines_on_a_fabric_16_times_larger() -> None:
    small, by_function_small = lines_per_flow(4, 16)
    large, by_function_large = lines_per_flow(16, 64)
    assert small > 300  # the whole setup was counted: placement, rules, tables, notices
    grew = {
        key: (by_function_large[key] - by_function_small[key]) / COUNTED
        for key in by_function_small.keys() | by_function_large.keys()
        if by_function_large[key] != by_function_small[key]
    }
    worst = sorted(grew.items(), key=lambda kv: -abs(kv[1]))[:8]
    # Equal up to a stray line in a few flows (a cache filled once more at one size).
    assert abs(large - small) <= 0.002 * small, f"{small:.1f} -> {large:.1f} lines: {worst}"


def lines_per_moved_flow(others: int) -> tuple[float, int]:
    """Lines the traffic engineer runs per moved flow when leaf1's uplink to spine1
    is lost on a 4 x 16 fabric, with 200 least-utilized flows from leaf1 and
    ``others`` between the other leaves (and how many flows moved)."""
    fab = synthetic.leaf_spine(4, 16, capacity_bps=LINK_BPS)
    leaf, spine = fab.leaves[0], fab.spines[0]
    rng = random.Random(7)
    pool = scale_measure.workload(fab, others * 2 + 2_000, rng)
    at = fab.dpid(leaf)
    away = [w for w in pool if at not in (w.src.dpid, w.dst.dpid)][:others]
    ours = [w for w in pool if w.src.dpid == at][:OURS]
    assert len(away) == others and len(ours) == OURS
    placed = scale_measure.place_all(fab, away + ours, Strategy.LEAST_UTILIZED, seed=7)
    te, state = placed.engineer, placed.state
    lost = [fab.link(leaf, spine), fab.link(spine, leaf)]
    on_it = {f.flow_id for lid in lost for f in te.flows_on(lid)}
    now = (others + OURS) * scale_measure.ARRIVAL_S  # right after the last placement
    lines: Counter[tuple[str, str]] = Counter()
    with counting_lines(lines):
        state.apply([LinkDown(time=now, link=lid, reason="port-down") for lid in lost])
        outcome = te.on_links_down(lost, state, now=now)
    moved = {m.flow_id for m in outcome.moves}
    assert moved == on_it and not outcome.stranded  # every flow on it, and only those
    return sum(lines.values()) / len(moved), len(moved)


def test_a_lost_uplink_costs_the_same_lines_with_ten_times_the_flows_elsewhere() -> None:
    few, moved_few = lines_per_moved_flow(1_000)
    many, moved_many = lines_per_moved_flow(10_000)
    assert moved_few >= 20 and moved_many >= 20  # about a quarter of leaf1's 200
    assert abs(many - few) <= 0.05 * few, f"{few:.1f} -> {many:.1f} lines per moved flow"
