"""The emulator's ceiling: the same traffic on a static optimal placement, no controller logic.

A goodput ratio measured on this emulator mixes two things: how well the
controller placed the flows, and how much one Open vSwitch process on a
shared machine forwards at all. To tell them apart, the demo and the
benchmarks run the same flows once more with every flow pinned to a path
computed up front - a collision-free one whenever the traffic allows it (the
project's own bipartite colouring, :func:`controller.te.leafspine.solve_leaf_spine`,
which is optimal on a 2-tier fabric) - by entries written directly into the
switches with ``ovs-ofctl``. No packet of those flows reaches the controller
and nothing moves them, so what they deliver is what this machine carries:
the ceiling every other ratio is read against.

Why the controller leaves these entries alone (checked in ``controller/flowprog``
and ``controller/engine/tablesync.py``): it only ever sends ADD and
DELETE_STRICT flow-mods for entries it compiled itself (exact match and
priority), its cookies all carry the tag byte 0xFA
(``controller.flowprog.entries.COOKIE_TAG``), and its flow-statistics polls
ask for its own cookie kind only. What would remove a foreign entry is a full
table read followed by a reconcile (when a switch reconnects, after a switch
reported an error, or at the end of a fresh connection's warm-up): the
reconcile deletes everything it did not want, cookie or not. So the entries
here use a cookie outside the controller's tag and a priority no controller
entry uses (above per-flow and job rules, below the local-repair and
LLDP/ARP entries), and every run checks afterwards that all of them are still
installed - if one vanished, the run is an error, not a ceiling.

This module computes placements and writes and removes its own entries; it
starts no traffic and judges no numbers. Only the main thread may call it
(it asks Mininet for port numbers).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from benchmarks.lab import Flow
from controller.te.leafspine import NO_SPINE, LeafSpineProblem, solve_leaf_spine
from mininet_topos.leafspine import host_ip, host_name

__all__ = ["CEILING_COOKIE", "CEILING_PRIORITY", "optimal_spines", "StaticPlacement"]

# Tag byte 0xCE: not the controller's 0xFA, so no cookie-based logic of it matches.
CEILING_COOKIE = 0xCE11_0000_0000_0000
_COOKIE_MASK = 0xFFFF_0000_0000_0000
# Above PRIO_FLOW (40000) and PRIO_JOB (35000), below the local repair's tagged
# entries (50000) and the LLDP/ARP traps (59000+), and used by no controller entry.
CEILING_PRIORITY = 45000


def optimal_spines(
    flows: Sequence[Flow],
    *,
    spines: int,
    leaves: int,
    link_bps: float,
    down: Iterable[tuple[int, int]] = (),
    used_bps: Mapping[tuple[str, str], float] | None = None,
) -> list[int | None]:
    """The spine (1-based) of every flow that minimises the most loaded link; None inside a leaf.

    Paced flows count at their rate, unpaced ones (TCP) all at one rate, so
    the colouring spreads them evenly. ``down`` lists failed (leaf, spine)
    cables; ``used_bps`` maps ``("leaf1", "spine2")`` or ``("spine2", "leaf3")``
    to load that is not these flows' (it counts against the links' room).
    """
    up_cap = np.full((leaves, spines), float(link_bps))
    down_cap = np.full((leaves, spines), float(link_bps))
    for leaf, spine in down:
        up_cap[leaf - 1, spine - 1] = down_cap[leaf - 1, spine - 1] = 0.0
    up_bg = np.zeros((leaves, spines))
    down_bg = np.zeros((leaves, spines))
    for (a, b), bps in (used_bps or {}).items():
        if a.startswith("leaf"):
            up_bg[int(a[4:]) - 1, int(b[5:]) - 1] += bps
        else:
            down_bg[int(b[4:]) - 1, int(a[5:]) - 1] += bps
    problem = LeafSpineProblem(
        up_capacity=up_cap,
        down_capacity=down_cap,
        # A link full of background keeps a sliver of room: the solver then
        # avoids it rather than finding no level at all.
        up_background=np.minimum(up_bg, 0.999 * up_cap),
        down_background=np.minimum(down_bg, 0.999 * down_cap),
        src=np.array([f.src[0] - 1 for f in flows], dtype=np.int64),
        dst=np.array([f.dst[0] - 1 for f in flows], dtype=np.int64),
        demand=np.array([f.rate_mbps * 1e6 or link_bps for f in flows], dtype=np.float64),
        previous=np.full(len(flows), NO_SPINE, dtype=np.int64),
    )
    solution = solve_leaf_spine(problem)
    if solution.unplaced.any():
        raise RuntimeError("a flow's leaves share no working spine: there is no static path")
    return [None if s == NO_SPINE else int(s) + 1 for s in solution.spine]


class StaticPlacement:
    """Entries that pin ``flows`` to ``spines`` on every switch of their paths, while in use.

    A context manager: the entries are written on entry (``ovs-ofctl`` waits
    for the switch to confirm) and removed on exit, also on error. ``fab`` is
    the running :class:`~mininet_topos.harness.LeafSpineFabric`.
    """

    def __init__(self, fab: Any, flows: Sequence[Flow], spines: Sequence[int | None]) -> None:
        if len(flows) != len(spines):
            raise ValueError("one spine (or None) per flow")
        self.fab = fab
        self.entries: dict[str, list[str]] = {}
        for flow, spine in zip(flows, spines, strict=True):
            for switch, out_port in self._hops(flow, spine):
                self.entries.setdefault(switch, []).append(_entry(flow, out_port))

    def _hops(self, flow: Flow, spine: int | None) -> list[tuple[str, int]]:
        src_leaf, dst_leaf = f"leaf{flow.src[0]}", f"leaf{flow.dst[0]}"
        host = host_name(*flow.dst)  # type: ignore[no-untyped-call]
        deliver = (dst_leaf, int(self.fab.port_between(dst_leaf, host)))
        if spine is None:
            return [deliver]
        via = f"spine{spine}"
        return [
            (src_leaf, int(self.fab.port_between(src_leaf, via))),
            (via, int(self.fab.port_between(via, dst_leaf))),
            deliver,
        ]

    @property
    def expected(self) -> int:
        return sum(len(lines) for lines in self.entries.values())

    def __enter__(self) -> StaticPlacement:
        try:
            for switch, lines in self.entries.items():
                _ofctl("add-flows", switch, "-", stdin="\n".join(lines) + "\n")
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def installed(self) -> int:
        """How many of this placement's entries the switches hold now."""
        selector = f"cookie={CEILING_COOKIE:#x}/{_COOKIE_MASK:#x}"
        count = 0
        for switch in self.entries:
            out = _ofctl("dump-flows", switch, selector)
            count += sum(1 for line in out.splitlines() if "priority=" in line)
        return count

    def check(self) -> None:
        """Raise unless every entry is still installed (the controller removed none)."""
        have = self.installed()
        if have != self.expected:
            raise RuntimeError(
                f"{self.expected - have} of {self.expected} static ceiling entries vanished "
                "during the run (a table re-read reconciled them away): not a ceiling"
            )

    def remove(self) -> None:
        selector = f"cookie={CEILING_COOKIE:#x}/{_COOKIE_MASK:#x}"
        for switch in self.entries:
            _ofctl("del-flows", switch, selector, check=False)


def _entry(flow: Flow, out_port: int) -> str:
    return (
        f"table=0,priority={CEILING_PRIORITY},cookie={CEILING_COOKIE:#x},{flow.proto},"
        f"nw_src={host_ip(*flow.src)},nw_dst={host_ip(*flow.dst)},"  # type: ignore[no-untyped-call]
        f"tp_src={flow.sport},tp_dst={flow.port},actions=output:{out_port}"
    )


def _ofctl(command: str, switch: str, *args: str, stdin: str = "", check: bool = True) -> str:
    proc = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", command, switch, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"ovs-ofctl {command} {switch}: {proc.stderr.strip()}")
    return proc.stdout
