"""One new flow's first packet, as the OpenFlow shim and the switches handle it.

The step the scale benchmark times per flow (:func:`first_packet`), the one the
per-flow work is counted on (:func:`lines_per_setup`, and the instructions in
:mod:`benchmarks.instructions`), and the workloads they run: random RoCEv2
flows between hosts of different leaves (:func:`workload`), or the same number
of flows between hosts of a few leaves spread over the fabric, warmed up
(:func:`spread_lab`), so that fabrics of different sizes carry the same work.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.worklines import Lines, counting_lines
from controller.app.clock import Clock
from controller.app.publisher import Publisher
from controller.concurrency.eventbus import EventBus
from controller.devtools.enginedriver import TRAP_COOKIE, EngineDriver, LabHost, udp_frame
from controller.engine.outputs import EngineOutput
from controller.fabric.model import FiveTuple

__all__ = [
    "ARRIVAL_S",
    "NewFlow",
    "SpreadLab",
    "workload",
    "first_packet",
    "lines_per_setup",
    "set_up",
    "check_placed",
    "spread_lab",
]

ARRIVAL_S = 1e-3  # flows arrive 1 ms apart; the hub ticks once per simulated second


@dataclass(frozen=True)
class NewFlow:
    src: LabHost
    dst: LabHost
    five_tuple: FiveTuple
    frame: bytes


def workload(lab: EngineDriver, n: int, rng: random.Random) -> list[NewFlow]:
    """``n`` RoCEv2 flows between random hosts on different leaves (distinct 5-tuples)."""
    hosts = lab.hosts
    seen: set[FiveTuple] = set()
    flows: list[NewFlow] = []
    while len(flows) < n:
        src, dst = rng.sample(hosts, 2)
        if src.port.dpid == dst.port.dpid:
            continue
        ft = FiveTuple(src.ip, dst.ip, 17, rng.randrange(49152, 65536), 4791)
        if ft in seen:
            continue
        seen.add(ft)
        flows.append(NewFlow(src, dst, ft, udp_frame(ft, src_mac=src.mac, dst_mac=dst.mac)))
    return flows


def first_packet(
    lab: EngineDriver, absorb: Callable[[EngineOutput], None], flow: NewFlow, *, now: float
) -> tuple[float, float]:
    """``flow``'s first packet as the shim and the switches handle it: the engine's
    packet-in (its output to ``absorb``, the publisher's), the rules applied to the
    fake switches, each program confirmed. Returns the performance-counter seconds
    of the engine's calls and of the fake switches."""
    engine, fake, clock = lab.engine, lab.fake, time.perf_counter
    at = flow.src.port
    c0 = clock()
    out = engine.packet_in(at.dpid, in_port=at.port, cookie=TRAP_COOKIE, data=flow.frame, now=now)
    absorb(out)
    c1 = clock()
    confirm = 0.0
    for dpid, ops in out.immediate:
        fake.apply_ops(dpid, ops)
    # An urgent program is on one switch: phase by phase is its joined order.
    for program in (*out.urgent, *out.programs):
        fake.apply(program)
        c2 = clock()
        absorb(engine.program_confirmed(program, sent_at=now, now=now))
        confirm += clock() - c2
    c3 = clock()
    return (c1 - c0) + confirm, (c3 - c1) - confirm


def lines_per_setup(
    lab: EngineDriver,
    absorb: Callable[[EngineOutput], None],
    flows: list[NewFlow],
    lines: Lines | None = None,
) -> float:
    """Python lines the controller runs per new flow (:mod:`benchmarks.worklines`),
    over ``flows`` set up after the timed ones the same way (traced, so never
    timed): the work of a setup, which the time per flow mixes with the caches'
    hit rate. ``lines``, if given, gets the count by function."""
    lines = Counter() if lines is None else lines
    with counting_lines(lines):
        set_up(lab, absorb, flows)
    check_placed(lab, flows)
    return round(sum(lines.values()) / max(1, len(flows)), 1)


def set_up(lab: EngineDriver, absorb: Callable[[EngineOutput], None], flows: list[NewFlow]) -> None:
    """``flows``' first packets, :data:`ARRIVAL_S` apart from the lab's clock, which
    then stands after the last, with no tick in between (the benchmark's timed loop
    ticks once per simulated second, so it has its own)."""
    t0 = lab.now
    for i, flow in enumerate(flows):
        first_packet(lab, absorb, flow, now=t0 + i * ARRIVAL_S)
    lab.now = t0 + len(flows) * ARRIVAL_S


def check_placed(lab: EngineDriver, flows: list[NewFlow]) -> None:
    """Every one of ``flows`` is tracked by the traffic engineer, or RuntimeError."""
    te = lab.engine.placer.te
    if any(te.flow_by_five_tuple(f.five_tuple) is None for f in flows):
        raise RuntimeError("a counted flow was not placed")


@dataclass
class SpreadLab:
    """An engine brought up on a fabric, its publisher's absorb, the flows already set
    up (``warmed``) and flows to set up."""

    lab: EngineDriver
    absorb: Callable[[EngineOutput], None]
    flows: list[NewFlow]
    warmed: list[NewFlow]


def spread_lab(
    spines: int,
    leaves: int,
    *,
    warm: int,
    counted: int,
    leaves_used: int = 4,
    seed: int = 5,
    work_clock: Callable[[], float] | None = None,
) -> SpreadLab:
    """A ``spines`` x ``leaves`` fabric brought up (2 hosts per leaf, collector
    policy off), ``warm`` flows between hosts of ``leaves_used`` leaves spread
    over the fabric set up (per-destination caches filled, as on a busy fabric),
    and ``counted`` more such flows to set up: on any fabric size the same
    workload. ``work_clock`` replaces the engine's CPU clock, by which it paces
    its polls and probes (a constant one makes two runs do the same work)."""
    from benchmarks import scale_engine  # it imports this module
    from benchmarks.scale_measure import LINK_BPS, synthetic

    fab = synthetic.leaf_spine(spines, leaves, capacity_bps=LINK_BPS)
    lab = scale_engine.driver_for(fab, hosts_per_leaf=2, seed=seed, heap_policy=False)
    if work_clock is not None:
        lab.engine.work_clock = work_clock
    scale_engine.bring_up(lab)
    absorb = Publisher(lab.engine, bus=EventBus(), metrics=lab.metrics, clock=Clock()).absorb
    everywhere = sorted({h.port.dpid for h in lab.hosts})
    step = len(everywhere) // leaves_used
    used = set(everywhere[::step][:leaves_used])  # spread over the fabric
    all_hosts, lab.hosts = lab.hosts, [h for h in lab.hosts if h.port.dpid in used]
    flows = workload(lab, warm + counted, random.Random(seed))
    lab.hosts = all_hosts
    set_up(lab, absorb, flows[:warm])
    return SpreadLab(lab, absorb, flows[warm:], flows[:warm])
