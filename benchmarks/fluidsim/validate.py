"""The simulator next to the emulator: the same small jobs, the same strategies.

The fabric benchmark measures, on Mininet with Open vSwitch, the summed TCP
goodput over the fabric's bound of two jobs on a 2 spines x 4 leaves x 2 hosts
fabric at 20 Mbit/s: a pair of flows leaf1 -> leaf2, and a ring of 8 flows
whose neighbours sit on different leaves (README, "Numbers"). Here the same
flows (host order, count) are placed by the same controller code with fresh
source ports per run, get max-min fair rates for as long as they run, and are
compared with the pooled bound. The simulator has no TCP and no emulator
ceiling: the emulator reaches about 0.74 of the bound on this fabric even
with every flow on links of its own (TCP, measured), and about 0.95 with two
flows (headers), so its ratios sit below the simulator's by that factor; the
strategies must rank the same.
"""

from __future__ import annotations

import random
import statistics
from typing import Any

import numpy as np

from benchmarks.fluidsim.fabric import build_fabric
from benchmarks.fluidsim.maxmin import max_min_rates
from benchmarks.fluidsim.strategies import SimFlow, placer_for
from benchmarks.scale_measure import synthetic

__all__ = ["EMULATOR", "compare"]

# Medians of the emulator's goodput / bound (8 runs each), as the README quotes them.
EMULATOR = {
    ("pair", "ecmp"): 0.48,
    ("pair", "least-utilized"): 0.96,
    ("ring", "ecmp"): 0.52,
    ("ring", "least-utilized"): 0.79,
}
# The emulator's goodput / bound when no two flows share a link (TCP, measured).
EFFICIENCY = {"pair": 0.95, "ring": 0.74}


def _host(leaf: int, index: int) -> int:
    return (leaf - 1) * 2 + (index - 1)


def _workloads() -> dict[str, list[tuple[int, int]]]:
    order = [_host(leaf, i) for i in (1, 2) for leaf in (1, 2, 3, 4)]
    return {
        "pair": [(_host(1, 1), _host(2, 1)), (_host(1, 2), _host(2, 2))],
        "ring": [(order[k], order[(k + 1) % len(order)]) for k in range(len(order))],
    }


def _goodput(name: str, pairs: list[tuple[int, int]], seed: int) -> float:
    fabric = build_fabric(
        spines=2, leaves=4, hosts_per_leaf=2, link_gbps=0.02, nic_gbps=0.02, synthetic=synthetic
    )
    rng = random.Random(seed)
    order = list(pairs)
    rng.shuffle(order)  # the flows' first packets reach the controller in some order
    flows = [
        SimFlow(k, s, d, fabric.five_tuple(s, d, rng.randrange(32768, 60000)), None, fabric.nic_bps)
        for k, (s, d) in enumerate(order)
    ]
    placer = placer_for(name, fabric, seed=seed)
    routes = placer.place(flows, now=0.0)
    alloc = max_min_rates(
        flow_links=np.repeat(np.arange(len(routes)), [len(r) for r in routes]),
        link_of=np.concatenate(routes),
        group_of=np.arange(len(routes)),
        capacity=placer.capacity,
    )
    return float(alloc.flow_rate.sum())


def compare(*, runs: int = 32) -> dict[str, Any]:
    """Per workload and strategy: simulated median (min, max) over ``runs`` seeds, the
    emulator's median, and whether the strategies rank the same."""
    out: dict[str, Any] = {}
    for work, pairs in _workloads().items():
        rows = {}
        for name in ("ecmp", "least-utilized"):
            ratios = [
                _goodput(name, pairs, seed) / _goodput("bound", pairs, seed)
                for seed in range(1, runs + 1)
            ]
            rows[name] = {
                "simulated_median": round(statistics.median(ratios), 3),
                "simulated_min": round(min(ratios), 3),
                "simulated_max": round(max(ratios), 3),
                "simulated_mean": round(statistics.fmean(ratios), 3),
                "scaled_by_emulator_efficiency": round(
                    statistics.fmean(ratios) * EFFICIENCY[work], 3
                ),
                "emulator_median": EMULATOR[(work, name)],
            }
        sim = rows["least-utilized"]["simulated_mean"] >= rows["ecmp"]["simulated_mean"]
        emu = EMULATOR[(work, "least-utilized")] >= EMULATOR[(work, "ecmp")]
        out[work] = {"strategies": rows, "same_ranking": sim == emu}
    return out
