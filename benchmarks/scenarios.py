"""The five fabric benchmarks, each on its own fabric that it tears down before returning.

a. goodput/bound per strategy (hash ECMP, least-utilized, widest) over seeds,
   next to the emulator ceiling (the same flows on a static optimal placement);
b. failover gap of a paced RoCEv2 stream with and without fast-failover groups;
c. time from the onset of a hot spot to the controller's congestion reroute;
d. time from ApplyPolicy returning until the data plane follows the new path;
e. new-flow setup latency, end to end (echo probes) and as the controller sees it.

Every function takes the run's :class:`Settings` and a log function and
returns a JSON-ready dict with stable keys. They measure and report; they
assert nothing about the numbers. Choices (ports, which flow) come from
``random.Random`` seeded from the settings.
"""

from __future__ import annotations

import itertools
import json
import random
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bounds import job_bound
from benchmarks.ceiling import StaticPlacement, optimal_spines
from benchmarks.lab import (
    FLOWGEN,
    Flow,
    Lab,
    hashed_sports,
    placed_flows,
    set_strategy,
    spine_of,
)
from benchmarks.report import histogram_quantile, loss_in_window, quantile, spread
from benchmarks.watch import EventWatcher, FirstPacket
from controller.devtools.process import Fabricd, wait_discovered, wait_until
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy

__all__ = [
    "Settings",
    "goodput_ratio",
    "failover_gap",
    "hotspot_reroute",
    "apply_policy_latency",
    "flow_setup_latency",
]

Log = Callable[[str], None]
ROCE = 4791
BACKGROUND_PORT = 5001
UDP_SIZE = 1000
POLL_S = 0.5  # the controller's port-poll interval the labs run with
SETTLE_S = 4.0  # > the controller's 3 s window for load placed but not yet measured
STRATEGIES = (Strategy.ECMP, Strategy.LEAST_UTILIZED, Strategy.WIDEST)


@dataclass(frozen=True)
class Settings:
    workdir: Path
    reps: int
    quick: bool
    seed: int
    bw: float  # Mbit/s of every link (and NIC where shaped)


def _lab(s: Settings, name: str, spines: int, leaves: int, hosts: int, log: Log, **kw: Any) -> Lab:
    return Lab(
        s.workdir / name,
        spines=spines,
        leaves=leaves,
        hosts_per_leaf=hosts,
        bw=s.bw,
        log=log,
        **kw,
    )


def _sports(rng: random.Random) -> Callable[[], int]:
    pool = iter(rng.sample(range(32768, 60000), 5000))
    return lambda: next(pool)


# ----------------------------------------------------------------------------- a
def goodput_ratio(s: Settings, log: Log) -> dict[str, Any]:
    """The same jobs under each strategy: summed TCP goodput over the fabric's bound."""
    seconds = 3.0 if s.quick else 4.0
    spines, leaves, hosts = 2, 4, 2
    order = [(j, i) for i in range(1, hosts + 1) for j in range(1, leaves + 1)]
    workloads = {
        # Two AI flows leaf1 -> leaf2, one from each host: the textbook collision.
        "pair": [((1, 1), (2, 1)), ((1, 2), (2, 2))],
        # A ring all-reduce whose neighbours sit on different leaves.
        "ring": [(order[k], order[(k + 1) % len(order)]) for k in range(len(order))],
    }
    if s.quick:  # a smoke test: every strategy once, on the cheaper job
        del workloads["ring"]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {w: {} for w in workloads}
    bounds: dict[str, float] = {}
    with _lab(s, "a-goodput", spines, leaves, hosts, log, host_bw=s.bw) as lab:
        # Repetitions outside, strategies inside: a slow spell of the shared machine
        # then hits every strategy alike. The emulator ceiling is the same jobs on a
        # static optimal placement.
        for rep in range(s.reps):
            for strategy in ("ceiling", *(st.value for st in STRATEGIES)):
                if strategy != "ceiling":
                    set_strategy(lab.api, Strategy.parse(strategy))
                # Each strategy gets fresh 5-tuples (no rule left over from another run
                # may carry them); the seed makes every run repeatable.
                rng = random.Random(f"{s.seed + rep}/{strategy}")
                sport = _sports(rng)
                for name, pairs in workloads.items():
                    flows = [
                        Flow(src, dst, "tcp", rng.randrange(29500, 29600), sport())
                        for src, dst in pairs
                    ]
                    bound = job_bound(
                        flows,
                        spines=spines,
                        leaves=leaves,
                        hosts_per_leaf=hosts,
                        link_bps=s.bw * 1e6,
                        nic_bps=s.bw * 1e6,
                    )
                    bounds[name] = bound
                    if strategy == "ceiling":
                        goodput, collisions = _ceiling_goodput(lab, flows, seconds, s.bw)
                    else:
                        handle = lab.start_flows(flows, duration=seconds)
                        placed = placed_flows(lab.api, flows, timeout=10)
                        results = lab.finish(handle, timeout=seconds + 30)
                        goodput = sum(float(r["sink"]["goodput_bps"]) for r in results)
                        hops = [h for p in placed for h in itertools.pairwise(p.path)]
                        # Flows placed on a link direction another flow already had
                        # (each such flow halves a link's share: a collision).
                        collisions = len(hops) - len(set(hops))
                    runs[name].setdefault(strategy, []).append(
                        {
                            "seed": s.seed + rep,
                            "goodput_bps": round(goodput, 1),
                            "ratio": round(goodput / bound, 4),
                            "collisions": collisions,
                        }
                    )
                    log(
                        f"  {strategy:>14} seed {s.seed + rep} {name}: "
                        f"{goodput / 1e6:5.1f} of {bound / 1e6:.0f} Mbit/s ({goodput / bound:.2f})"
                    )
                    time.sleep(1.5)  # the links' measured rates decay before the next job
        set_strategy(lab.api, Strategy.LEAST_UTILIZED)
    return {
        "fabric": f"{spines} spines x {leaves} leaves x {hosts} hosts",
        "link_mbps": s.bw,
        "nic_mbps": s.bw,
        "flow_seconds": seconds,
        "workloads": {
            name: {
                "flows": len(workloads[name]),
                "bound_bps": bounds[name],
                "strategies": {
                    strat: {
                        **{f"ratio_{k}": v for k, v in spread([r["ratio"] for r in rs]).items()},
                        "runs": rs,
                    }
                    for strat, rs in runs[name].items()
                },
            }
            for name in workloads
        },
    }


def _ceiling_goodput(lab: Lab, flows: list[Flow], seconds: float, bw: float) -> tuple[float, int]:
    """Summed goodput of ``flows`` pinned by a static optimal placement; its collisions."""
    spines = optimal_spines(flows, spines=lab.spines, leaves=lab.leaves, link_bps=bw * 1e6)
    with StaticPlacement(lab.fab, flows, spines) as placement:
        handle = lab.start_flows(flows, duration=seconds)
        results = lab.finish(handle, timeout=seconds + 30)
        placement.check()
    hops = [(f.src[0], k, f.dst[0]) for f, k in zip(flows, spines, strict=True) if k]
    ups = [(a, k) for a, k, _ in hops]
    downs = [(k, b) for _, k, b in hops]
    collisions = len(ups) - len(set(ups)) + len(downs) - len(set(downs))
    return sum(float(r["sink"]["goodput_bps"]) for r in results), collisions


# ----------------------------------------------------------------------------- b
def _udp_stream(lab: Lab, sport: int, *, rate_mbps: float, seconds: float) -> dict[str, Any]:
    flow = Flow((1, 1), (2, 1), "udp", ROCE, sport, rate_mbps, UDP_SIZE)
    return lab.start_flows([flow], duration=seconds, sink_extra=1.5)


def failover_gap(s: Settings, log: Log) -> dict[str, Any]:
    """A paced RoCEv2 stream loses its uplink: lost packets / rate = the gap."""
    rate_mbps = 8.0
    pps = rate_mbps * 1e6 / (UDP_SIZE * 8)
    seconds, fail_at = (4.0, 1.5) if s.quick else (5.0, 2.0)
    out: dict[str, Any] = {
        "rate_pps": pps,
        "method": "one UDP 4791 stream paced at rate_pps; its uplink goes down; gap = packets "
        "lost in holes that began 0.2 s before to 2 s after the failure / rate; max_silence = "
        "longest pause between arrivals",
    }
    for groups in (True, False):
        key = "with_failover_groups" if groups else "without_failover_groups"
        flags = () if groups else ("--failover-groups", "false")
        rng = random.Random(f"{s.seed}/failover/{groups}")
        reps = []
        with _lab(s, f"b-{key}", 2, 2, 1, log, host_bw=None, fabricd_flags=flags) as lab:
            for rep in range(s.reps):
                handle = _udp_stream(
                    lab, rng.randrange(32768, 60000), rate_mbps=rate_mbps, seconds=seconds
                )
                (placed,) = placed_flows(lab.api, handle["flows"])
                spine = spine_of(placed)
                time.sleep(max(0.0, fail_at - 0.5))
                failed_at = time.time()
                lab.fab.set_link("leaf1", spine, up=False)
                (result,) = lab.finish(handle, timeout=seconds + 30)
                sent = int(result["sent"]["packets"])
                got = result["sink"]["flows"].get("0", {})
                # Only the failure's loss: holes from just before it to 2 s after.
                lost = loss_in_window(got, start=failed_at - 0.2, end=failed_at + 2.0)
                reps.append(
                    {
                        "sent": sent,
                        "lost": lost,
                        "lost_in_stream": max(0, sent - int(got.get("packets", 0))),
                        "gap_ms": round(lost / pps * 1000, 2),
                        "max_silence_ms": round(result["sink"]["max_gap_s"] * 1000, 2),
                    }
                )
                log(f"  {key} rep {rep + 1}: {lost} lost of {sent} ({lost / pps * 1000:.1f} ms)")
                lab.fab.set_link("leaf1", spine, up=True)
                wait_discovered(lab.daemon, switches=4, links=8, timeout=20)
                time.sleep(1.5)  # forwarding over the healed link settles
        out[key] = {
            **{f"gap_ms_{k}": v for k, v in spread([r["gap_ms"] for r in reps]).items()},
            "max_silence_ms_median": spread([r["max_silence_ms"] for r in reps])["median"],
            "reps": reps,
        }
    return out


# ----------------------------------------------------------------------------- c
def _moved(flow_id: str) -> Callable[[dict[str, Any]], bool]:
    def pred(event: dict[str, Any]) -> bool:
        return (
            event["kind"] == "flow-rerouted"
            and event["subject"] == flow_id
            and event["reason"] in ("congestion", "rebalance")
        )

    return pred


def hotspot_reroute(s: Settings, log: Log) -> dict[str, Any]:
    """A background flow lands on the AI flow's spine: how long until the controller moves it."""
    rng = random.Random(f"{s.seed}/hotspot")
    sport = _sports(rng)
    seconds = SETTLE_S + 6.0
    ai_rate = round(0.5 * s.bw, 2)  # half a link: not congested until the background comes
    reps: list[dict[str, Any]] = []
    with _lab(s, "c-hotspot", 2, 2, 2, log, host_bw=None) as lab:
        bg_sports = hashed_sports(lab, (1, 2), (2, 2), port=BACKGROUND_PORT, rng=rng)
        log(f"  background source ports by spine: {bg_sports}")
        watcher = EventWatcher(lab.daemon.grpc_target)
        try:
            for rep in range(s.reps):
                ai = Flow((1, 1), (2, 1), "udp", ROCE, sport(), ai_rate, UDP_SIZE)
                handle = lab.start_flows([ai], duration=seconds, sink_extra=1.5)
                (placed,) = placed_flows(lab.api, [ai])
                # The controller counts a new flow's demand on its path until the counters
                # show it (a few seconds); the hot spot comes after that, on measured load.
                time.sleep(SETTLE_S)
                # Where the flow is now (a rebalancing round may have moved it meanwhile).
                (now_at,) = placed_flows(lab.api, [ai])
                spine = int(spine_of(now_at)[5:])
                if spine not in bg_sports:
                    lab.finish(handle, timeout=seconds + 30)
                    log(f"  rep {rep + 1}: no background port hashes onto spine{spine}; skipped")
                    continue
                bg = Flow((1, 2), (2, 2), "tcp", BACKGROUND_PORT, bg_sports[spine], reset=True)
                # Relief as the data plane sees it: the AI flow's first packet on the
                # other spine after the onset (the event below is the decision; the rules
                # follow it), read on both of that spine's links of the path.
                other = f"spine{3 - spine}"
                sniffs = [
                    FirstPacket(lab.fab.intf_between(other, leaf), sport=ai.sport, dport=ROCE)
                    for leaf in ("leaf1", "leaf2")
                ]
                spawned = time.time()
                try:
                    bg_handle = lab.start_flows(
                        [bg], duration=seconds - SETTLE_S - 1, sink_extra=1.0
                    )
                    (bg_result,) = lab.finish(bg_handle, timeout=seconds + 30)
                    lab.finish(handle, timeout=seconds + 30)
                finally:
                    for sniff in sniffs:
                        sniff.close()
                time.sleep(0.5)  # the last events arrive
                onset = float(bg_result["sent"]["start"])
                # The congestion detector needs two hot samples; a periodic rebalancing
                # round may see the hot link first and move the flow as "rebalance".
                # Only a move after the background's first byte can be a reaction to it.
                fid = str(placed.flow_id)
                moves = [e for e in watcher.events(since=spawned) if _moved(fid)(e)]
                hit = next((e for e in moves if e["time"] >= onset), None)
                early = [e for e in moves if e["time"] < onset]
                latency = round(hit["time"] - onset, 3) if hit else None
                reason = hit["reason"] if hit else None
                seen = min(
                    (t for t in (sn.first_after(onset) for sn in sniffs) if t is not None),
                    default=None,
                )
                moved_at = round(seen - onset, 3) if seen is not None else None
                reps.append(
                    {
                        "spine": spine,
                        "seconds": latency,
                        "data_plane_s": moved_at,
                        "sniffed": [
                            {**sn.diagnostics(), "before_onset": sn.matches_before(onset)}
                            for sn in sniffs
                        ],
                        "reason": reason,
                        "early_moves": len(early),
                    }
                )
                log(
                    f"  rep {rep + 1}: hot spot on spine{spine}, {reason} reroute after {latency} s"
                    f"; first packet on {other} after {moved_at} s"
                )
                time.sleep(3.0)  # the congestion clears before the next hot spot
        finally:
            watcher.stop()
    latencies = [r["seconds"] for r in reps if r["seconds"] is not None]
    relieved = [r["data_plane_s"] for r in reps if r["data_plane_s"] is not None]
    return {
        "method": "AI flow: UDP 4791 at half a link; background: default-policy TCP hashed onto "
        "the AI flow's spine; time from the background sender's start (its clock) to the "
        "controller's first flow-rerouted event for the AI flow (the controller's clock, same "
        "host), reason congestion or rebalance (a periodic round may see the hot link first); "
        "a move before the onset (early_moves) is not a reaction and is not counted; "
        "data_plane_s: to the AI flow's first packet after the onset on the other spine (raw "
        "sockets on its links to both leaves; every rep records what they read)",
        "poll_interval_s": POLL_S,
        **{f"seconds_{k}": v for k, v in spread(latencies).items()},
        **{f"data_plane_s_{k}": v for k, v in spread(relieved).items()},
        "reps": reps,
    }


# ----------------------------------------------------------------------------- d
def apply_policy_latency(s: Settings, log: Log) -> dict[str, Any]:
    """Pin a placed stream to the other spine; time until its packets cross that spine."""
    rng = random.Random(f"{s.seed}/apply")
    sport = _sports(rng)
    reps: list[dict[str, Any]] = []
    with _lab(s, "d-apply", 2, 2, 1, log, host_bw=None) as lab:
        rep = attempts = 0
        while rep < s.reps and attempts < s.reps + 3:
            attempts += 1
            flow = Flow((1, 1), (2, 1), "udp", ROCE, sport(), 8.0, UDP_SIZE)  # 1000 packets/s
            handle = lab.start_flows([flow], duration=5.0, sink_extra=1.0)
            (placed,) = placed_flows(lab.api, [flow])
            other = f"spine{3 - int(spine_of(placed)[5:])}"
            pin = Policy(
                name="bench-pin",
                priority=500,
                match=(
                    FlowMatch(
                        ip_proto=17,
                        src_ports=(PortRange(flow.sport, flow.sport),),
                        dst_ports=(PortRange(ROCE, ROCE),),
                    ),
                ),
                strategy=Strategy.PINNED,
                pinned_path=("leaf1", other, "leaf2"),
            )
            watch = FirstPacket(lab.fab.intf_between(other, "leaf1"), sport=flow.sport, dport=ROCE)
            try:
                time.sleep(1.0)
                # A packet of the stream already on the other spine (a move by the
                # controller meanwhile): the rep would time nothing; it is run again.
                early = watch.seen_at is not None
                called = time.time()
                lab.api.apply_policy(pin)
                returned = time.time()
                seen = None if early else watch.wait(timeout=5.0)
            finally:
                watch.close()
            lab.finish(handle, timeout=30)
            lab.api.delete_policy("bench-pin")
            if early:
                log(f"  the stream crossed {other} before ApplyPolicy: attempt discarded")
                time.sleep(1.0)
                continue
            rep += 1
            reps.append(
                {
                    "apply_rpc_s": round(returned - called, 5),
                    "since_return_s": round(seen - returned, 5) if seen else None,
                    "since_call_s": round(seen - called, 5) if seen else None,
                }
            )
            log(
                f"  rep {rep}: first packet via {other} {reps[-1]['since_call_s']} s after "
                f"ApplyPolicy was called ({reps[-1]['apply_rpc_s']} s in the call)"
            )
            time.sleep(1.0)
        discarded = attempts - rep
    done = [r for r in reps if r["since_call_s"] is not None]
    return {
        "method": "UDP 4791 stream at 1000 packets/s on spine A; a pinned policy (priority "
        "500) sends it via spine B; a raw socket on spine B's interface from leaf1 timestamps "
        "the stream's first packet there (resolution: one packet, 1 ms); seconds = from "
        "ApplyPolicy returning to that packet (negative if the data plane was faster)",
        **{f"seconds_{k}": v for k, v in spread([r["since_return_s"] for r in done]).items()},
        "since_call_s_median": spread([r["since_call_s"] for r in done])["median"],
        "apply_rpc_s_median": spread([r["apply_rpc_s"] for r in reps])["median"],
        "discarded": discarded,
        "reps": reps,
    }


# ----------------------------------------------------------------------------- e
def _setup_histogram(fd: Fabricd) -> dict[float, float]:
    return {
        float(lab["le"]): v
        for lab, v in fd.samples("fabric_flow_setup_seconds_bucket")
        if "le" in lab
    }


def flow_setup_latency(s: Settings, log: Log) -> dict[str, Any]:
    """First packet of a new AI flow until its rules are in place: echo probes, p50/p99."""
    count = 60 if s.quick else 300
    rng = random.Random(f"{s.seed}/setup")
    first_sport = rng.randrange(33000, 60000 - count)
    with _lab(s, "e-setup", 2, 2, 1, log, host_bw=None) as lab:
        fd, fab = lab.daemon, lab.fab
        src, dst = lab.host((1, 1)), lab.host((2, 1))
        report = lab.workdir / "probe.json"
        echo = fab.spawn(dst, f"python3 {FLOWGEN} echo --port {ROCE} --duration {count + 30}")
        time.sleep(0.5)
        before = _setup_histogram(fd)
        count_before = fd.value("fabric_flow_setup_seconds_count")
        sum_before = fd.value("fabric_flow_setup_seconds_sum")
        probe = fab.spawn(
            src,
            f"python3 {FLOWGEN} probe --dst {dst.IP()} --port {ROCE} --count {count} "
            f"--first-sport {first_sport} --interval 0.01 --report {shlex.quote(str(report))}",
        )
        if not fab.wait_pid(probe, timeout=count * 2.5 + 30):
            raise RuntimeError("the probe did not finish")
        wait_until(report.exists, timeout=5, what="the probe's report")
        got = json.loads(report.read_text())
        time.sleep(0.5)
        after = _setup_histogram(fd)
        n = fd.value("fabric_flow_setup_seconds_count") - count_before
        total = fd.value("fabric_flow_setup_seconds_sum") - sum_before
        fab.kill(echo)
    setup = [float(x) for x in got["setup_s"]]
    firsts = [p["first_rtt_s"] for p in got["probes"] if p["first_rtt_s"] and p["second_rtt_s"]]
    seconds = [p["second_rtt_s"] for p in got["probes"] if p["first_rtt_s"] and p["second_rtt_s"]]
    buckets = [(le, after.get(le, 0.0) - before.get(le, 0.0)) for le in after]
    log(
        f"  {got['answered']} of {count} probes answered; setup p50 "
        f"{quantile(setup, 0.5) * 1000:.2f} ms"
        if setup
        else "  no probe answered"
    )
    return {
        "method": "per new UDP 4791 source port: RTT of the first datagram (packet-in, path, "
        "rules, packet-out) minus RTT of a second on the same 5-tuple (rules in place); the echo "
        "returns on default forwarding",
        "probes": count,
        "answered": got["answered"],
        "setup_s_p50": quantile(setup, 0.5) if setup else None,
        "setup_s_p99": quantile(setup, 0.99) if setup else None,
        "setup_s_max": max(setup) if setup else None,
        "first_rtt_s_p50": quantile(firsts, 0.5) if firsts else None,
        "second_rtt_s_p50": quantile(seconds, 0.5) if seconds else None,
        "controller": {
            "metric": "fabric_flow_setup_seconds (packet-in to rules confirmed by barrier)",
            "count": int(n),
            "mean_s": total / n if n else None,
            "p50_s": histogram_quantile(buckets, 0.5),
            "p99_s": histogram_quantile(buckets, 0.99),
        },
    }
