"""Undeclared AI flows that per-flow placement corners, repaired by the joint rebalancer.

3 spines x 4 leaves x 3 hosts at 5 Mbit/s; every leaf sends one paced UDP
RoCE flow to each other leaf and receives one from each. With three spines a
collision-free assignment exists (an edge colouring), but placing the flows
one by one in the order below makes first-fit least-utilized put two flows on
one link, and no single move helps afterwards (every other link already
carries one flow). The order is constructed for the controller's tie-break
(the lowest load, then the lowest sum, then the first spine); the test checks
from the controller's own events that the corner happened.

Why the flows run at 45% of a link, not 90%: on this emulator, one shaped port
offered more than its rate stalls the single userspace datapath thread and
with it every flow of the fabric (ENVIRONMENT notes; measured here: all 12
flows lost 30-90% while only two shared a link, and the controller's port
counters then misreport every link). A doubled link at 90% of its rate is hot
for the controller (congestion threshold 80%) and overloads nothing, so the
test measures the controller, not the stall. Judged: within two rebalance
periods of the last placement (and the two port polls that first measure the
flows) no link carries two flows, so at 90% of a link
per flow the placement delivers the bound (>= 95% of it, computed from the
paths the controller reports); and the paced flows lose nothing after that,
from sequence numbers per flow.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.lab import Flow, Lab
from benchmarks.report import loss_in_window
from benchmarks.watch import EventWatcher
from controller.devtools.process import wait_until
from mininet_topos.flowgen import MAX_LOSS_RECORDS

BW = 5.0
RATE = 2.25  # Mbit/s per flow: 45% of a link (see above)
DEMAND = 0.9  # the share of a link each flow would take unpaced, for the bound
SIZE = 1000
SECONDS = 14.0
REBALANCE_S = 2.0  # the ai-training policy's rebalance period
POLL_S = 0.5  # the lab's port polling: a flow's rate is known a poll or two after it starts
LEAVES = 4
# Leaf pairs (1-based) in the order their first packets reach the controller.
CORNER_ORDER = [(3, 2), (4, 3), (1, 2), (3, 4), (2, 4), (3, 1)]
CORNER_ORDER += [(2, 1), (4, 2), (2, 3), (1, 3), (4, 1), (1, 4)]


def _log(line: str) -> None:
    print(line)


def _flows(*, port_base: int = 51000) -> list[Flow]:
    """One flow per ordered leaf pair; each host sends one flow and receives one."""
    out_index = {
        pair: sorted(b for a, b in CORNER_ORDER if a == pair[0]).index(pair[1]) + 1
        for pair in CORNER_ORDER
    }
    in_index = {
        pair: sorted(a for a, b in CORNER_ORDER if b == pair[1]).index(pair[0]) + 1
        for pair in CORNER_ORDER
    }
    return [
        Flow(
            (a, out_index[(a, b)]),
            (b, in_index[(a, b)]),
            "udp",
            4791,
            port_base + n,
            RATE,
            SIZE,
            tag=n,
        )
        for n, (a, b) in enumerate(CORNER_ORDER)
    ]


def _link_use(paths: list[list[str]]) -> dict[tuple[str, str], int]:
    used: dict[tuple[str, str], int] = {}
    for path in paths:
        for hop in itertools.pairwise(path):
            used[hop] = used.get(hop, 0) + 1
    return used


def _shared_links(paths: list[list[str]]) -> int:
    """Directed links that two or more of ``paths`` cross."""
    return sum(1 for n in _link_use(paths).values() if n > 1)


def _share_of_bound(paths: list[list[str]]) -> float:
    """What the placement delivers of the bound when every flow wants DEMAND of a link:
    a flow gets DEMAND, or an equal share of its most crowded link."""
    used = _link_use(paths)
    got = [min(DEMAND, 1.0 / max(used[h] for h in itertools.pairwise(p))) for p in paths]
    return sum(got) / (DEMAND * len(paths))


def _timeline(watcher: EventWatcher, *, since: float, origin: float) -> None:
    """What the controller saw and did, seconds after the last placement: the story
    a failed run needs (a late measurement, or moves that undo each other)."""
    kinds = ("link-congested", "link-cleared", "flow-rerouted")
    for e in watcher.events(since=since):
        if e["kind"] in kinds:
            at = e["attributes"]
            what = f"{at.get('from', '')} => {at['path']}" if "path" in at else e["reason"]
            print(f"  {e['time'] - origin:+6.2f} s {e['kind']} {e['subject']}: {what}")


def _placed_paths(lab: Lab) -> list[list[str]]:
    return [list(f.path) for f in lab.client.list_flows(policy="ai-training")]


@pytest.fixture
def lab(tmp_path: Path):
    with Lab(
        tmp_path / "lab",
        spines=3,
        leaves=LEAVES,
        hosts_per_leaf=3,
        bw=BW,
        host_bw=BW,
        fabricd_flags=("--lldp-interval", "0.5"),
        log=_log,
    ) as running:
        yield running


CORNER_TRIES = 4  # the corner is the setup, not the property judged: retried
STAGGER_S = 0.02  # between senders' starts: keeps their order, spans 0.24 s


def _attempt(lab: Lab, watcher: EventWatcher, flows: list[Flow]) -> dict[str, Any]:
    """One run of the pattern: the first placement, and when (if) no link carries two."""
    since = time.time()
    # Senders start in CORNER_ORDER, STAGGER_S apart: the 12 placements fit between
    # two port polls more often than when each start waits for a shell round trip.
    run = lab.start_flows(flows, duration=SECONDS, together=True, stagger=STAGGER_S)
    wait_until(
        lambda: len(watcher.events(since=since, kind="flow-placed")) >= len(flows),
        timeout=10,
        what="every flow placed",
    )
    placed = sorted(watcher.events(since=since, kind="flow-placed"), key=lambda e: e["time"])
    first = [e["attributes"]["path"].split(" -> ") for e in placed[: len(flows)]]
    last_placed = placed[len(flows) - 1]["time"]
    # Two rebalance periods, plus the two polls that measure the flows' rates
    # at all (measured 2.1-3.2 s on the reference machine; 3.1-3.8 s before the
    # congestion round booked its own retry).
    deadline = last_placed + 2 * REBALANCE_S + 2 * POLL_S
    repaired_at = None
    while _shared_links(first) and time.time() < deadline + 3.0:  # watched past it, to report
        paths = _placed_paths(lab)
        if len(paths) == len(flows) and _shared_links(paths) == 0:
            repaired_at = time.time()
            break
        time.sleep(0.1)
    final = _placed_paths(lab)
    results = lab.finish(run, timeout=SECONDS + 30)
    time.sleep(0.5)
    moves = watcher.events(since=last_placed, kind="flow-rerouted")
    return {
        "first": first,
        "last_placed": last_placed,
        "deadline": deadline,
        "repaired_at": repaired_at,
        "final": final,
        "results": results,
        "moves": moves,
    }


@pytest.mark.timeout(420)
def test_a_cornered_undeclared_pattern_is_repaired_within_two_rebalance_periods(
    lab: Lab,
) -> None:
    # Which path a flow gets depends on the load the controller knows when its
    # first packet comes, and a port poll landing inside the 12 placements can
    # change that: then the order does not corner, and the run is repeated on
    # fresh 5-tuples once the previous flows have expired (their idle timeout).
    watcher = EventWatcher(lab.daemon.grpc_target)
    try:
        for attempt in range(CORNER_TRIES):
            flows = _flows(port_base=51000 + 100 * attempt)
            got = _attempt(lab, watcher, flows)
            cornered = _shared_links(got["first"])
            print(f"\ntry {attempt}: first placement {cornered} shared links")
            if cornered:
                break
            wait_until(lambda: not _placed_paths(lab), timeout=30, what="the flows expired")
    finally:
        watcher.stop()
    first, repaired_at, deadline = got["first"], got["repaired_at"], got["deadline"]
    last_placed, final, results, moves = (
        got["last_placed"],
        got["final"],
        got["results"],
        got["moves"],
    )
    reasons = sorted({m["reason"] for m in moves})
    _timeline(watcher, since=last_placed - 1.0, origin=last_placed)
    print(f"\nfirst placement: {cornered} shared links, {_share_of_bound(first):.3f} of the bound")
    print(f"{len(moves)} moves after it by {reasons}; ", end="")
    print(
        f"repaired {repaired_at - last_placed:.2f} s after the last placement"
        if repaired_at
        else "not repaired"
    )
    assert cornered > 0, (
        f"the constructed order did not corner the placement in {CORNER_TRIES} runs"
    )
    assert _share_of_bound(first) < 0.95, "the corner must cost goodput at full demand"
    assert repaired_at is not None and repaired_at <= deadline, (
        f"a link still carries two flows two rebalance periods after the last placement "
        f"({len(moves)} moves by {reasons})"
    )
    assert _share_of_bound(final) >= 0.95
    # Nothing lost from the repair to the end of sending (sequence numbers per flow).
    start = repaired_at
    end = min(float(r["sent"]["start"]) for r in results) + SECONDS - 0.5
    pps = RATE * 1e6 / (SIZE * 8)
    sent = lost = 0.0
    for r in results:
        sink = r["sink"]["flows"].get(str(r["flow"].tag), {})
        # Loss records are capped (the largest holes kept): a capped record could
        # hide small holes inside the window, so the judgement needs them all.
        assert len(sink.get("losses", ())) < MAX_LOSS_RECORDS, "loss records capped"
        sent += pps * (end - start)
        lost += loss_in_window(sink, start=start, end=end)
    delivered = (sent - lost) / sent
    print(f"after the repair: {delivered:.4f} of what was sent delivered")
    assert delivered >= 0.99, f"{delivered:.4f} delivered after the repair"
    lab.daemon.assert_clean_log()
