"""Max-min fair rates of flows on links, by progressive filling (water-filling).

Every flow crosses a set of links of known capacity. Rates grow together from
zero; when a link fills, every flow on it stops growing (it has found its
bottleneck), and the others keep growing until each flow is stopped by a full
link or by its own cap. The result is the max-min fair allocation: no flow
can get more without taking from a flow that has less.

A *group* of flows grows as one (all its flows keep the same rate and stop
together): the flows of a synchronised collective step, e.g. a ring
all-reduce, whose step lasts as long as its slowest flow. A flow alone is a
group of one.

Pure numpy over index arrays; nothing here knows about hosts, jobs or time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Allocation", "max_min_rates"]

# A link counts as full once less than this share of its capacity is left:
# float residue of many subtractions must not keep a bottleneck open.
_FULL = 1e-9


@dataclass(frozen=True)
class Allocation:
    """Rates per group (and per flow: each flow has its group's rate) and link loads."""

    group_rate: np.ndarray
    flow_rate: np.ndarray
    link_load: np.ndarray
    rounds: int  # filling rounds (distinct bottleneck levels)


def max_min_rates(
    *,
    flow_links: np.ndarray,
    link_of: np.ndarray,
    group_of: np.ndarray,
    capacity: np.ndarray,
    group_cap: np.ndarray | None = None,
) -> Allocation:
    """Max-min fair rates.

    ``flow_links[k]`` / ``link_of[k]`` list (flow, link) incidences (a flow's
    links, in any order; a flow with no link is capped only by its group
    cap). ``group_of[f]`` is flow f's group (0..G-1, groups numbered densely),
    ``capacity[l]`` each link's capacity (> 0; a link of capacity 0 blocks its
    flows), ``group_cap[g]`` an optional rate limit per group (inf = none).
    A group with no link and no cap would grow forever: its rate is inf.
    """
    n_flows = len(group_of)
    n_groups = int(group_of.max()) + 1 if n_flows else 0
    n_links = len(capacity)
    caps = np.full(n_groups, np.inf) if group_cap is None else group_cap.astype(float)
    if len(caps) != n_groups:
        raise ValueError(f"group_cap has {len(caps)} entries for {n_groups} groups")
    rate = np.zeros(n_groups)
    frozen = np.zeros(n_groups, dtype=bool)
    left = capacity.astype(float).copy()
    full_at = _FULL * np.maximum(capacity, 1.0)
    # Incidences of groups still growing; shrunk as groups stop, so later
    # rounds (there is one per distinct bottleneck level) touch less.
    inc_group = group_of[flow_links]
    inc_link = link_of
    rounds = 0
    while not frozen.all():
        rounds += 1
        # Flows of growing groups on each link: the rate at which it fills.
        users = np.bincount(inc_link, minlength=n_links).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(users > 0, left / users, np.inf)
        step = float(room.min()) if n_links else np.inf
        growing = ~frozen
        step = min(step, float((caps - rate)[growing].min()))
        if step == np.inf:
            rate[growing] = np.inf  # nothing limits these groups
            break
        step = max(step, 0.0)
        rate[growing] += step
        left -= step * users
        full = (users > 0) & (left <= full_at)
        stopped = np.zeros(n_groups, dtype=bool)
        stopped[inc_group[full[inc_link]]] = True
        stopped |= growing & (rate >= caps * (1 - _FULL))
        if not stopped.any():  # float residue: stop the tightest link's groups
            tight = int(np.argmin(np.where(users > 0, left, np.inf)))
            stopped[inc_group[inc_link == tight]] = True
        frozen |= stopped
        keep = ~frozen[inc_group]
        inc_group, inc_link = inc_group[keep], inc_link[keep]
    flow_rate = rate[group_of] if n_flows else np.zeros(0)
    load = np.bincount(link_of, weights=flow_rate[flow_links], minlength=n_links)
    return Allocation(group_rate=rate, flow_rate=flow_rate, link_load=load, rounds=rounds)
