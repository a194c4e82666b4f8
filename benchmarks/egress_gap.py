"""Bench g: the egress-side gap - an AI flow's spine->leaf link is cut, local repair on and off.

A spine has no loop-free backup toward a leaf whose link failed, so before
local repair the flow's packets were lost until the controller moved it
(50-100 ms). With ``--local-repair true`` the spine's fast-failover group
bounces them back out the port they came in (tagged), and the ingress leaf
sends them via another spine until the controller has moved the flow. Here:
a 2 x 2 x 1 fabric, one RoCEv2 flow paced at 1000 packets/s (so every lost
packet is a millisecond without traffic), its spine's link down to the
destination leaf is cut mid-stream, and the lost packets are counted from
the sink's dated holes around the cut. Each setting gets its own fabricd
and fabric; the link is restored and rediscovered between repetitions.
It measures and reports; it asserts nothing about the numbers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from benchmarks.lab import Flow, Lab, placed_flows, spine_of
from benchmarks.report import loss_in_window, markdown_table, spread
from benchmarks.scenarios import Settings
from controller.devtools.process import wait_discovered

__all__ = ["egress_gap", "markdown_section"]

Log = Callable[[str], None]
ROCE = 4791
UDP_SIZE = 1000
RATE_PPS = 1000  # one lost packet = one millisecond of traffic
WINDOW = (0.2, 2.0)  # seconds before / after the cut whose holes count as its loss


def _one_cut(lab: Lab, sport: int, *, seconds: float, cut_at: float) -> dict[str, Any]:
    flow = Flow((1, 1), (2, 1), "udp", ROCE, sport, RATE_PPS * UDP_SIZE * 8 / 1e6, UDP_SIZE)
    handle = lab.start_flows([flow], duration=seconds, sink_extra=1.5)
    (placed,) = placed_flows(lab.api, [flow])
    spine = spine_of(placed)
    time.sleep(max(0.0, cut_at - 0.5))
    cut = time.time()
    lab.fab.set_link(spine, "leaf2", up=False)
    (result,) = lab.finish(handle, timeout=seconds + 30)
    (moved,) = placed_flows(lab.api, [flow])
    got = result["sink"]["flows"].get("0", {})
    lost = loss_in_window(got, start=cut - WINDOW[0], end=cut + WINDOW[1])
    lab.fab.set_link(spine, "leaf2", up=True)
    return {
        "spine": spine,
        "sent": int(result["sent"]["packets"]),
        "lost": lost,
        "gap_ms": round(lost / RATE_PPS * 1000, 2),
        "max_silence_ms": round(float(got.get("max_gap_s", 0.0)) * 1000, 2),
        "moved_off": spine not in moved.path,
    }


def egress_gap(s: Settings, log: Log) -> dict[str, Any]:
    """Lost packets when the flow's spine->leaf link is cut, local repair on and off."""
    seconds, cut_at = (4.0, 1.5) if s.quick else (5.0, 2.0)
    out: dict[str, Any] = {
        "rate_pps": RATE_PPS,
        "method": f"one UDP 4791 flow leaf1->leaf2 at {RATE_PPS} packets/s; the link from its "
        "spine down to leaf2 is cut; lost = packets missing in holes that began "
        f"{WINDOW[0]:g} s before to {WINDOW[1]:g} s after the cut (the sink dates holes by "
        "send time); gap = lost / rate; max silence = longest pause between arrivals",
    }
    for repair in (True, False):
        key = "with_local_repair" if repair else "without_local_repair"
        rng = random.Random(f"{s.seed}/egress/{repair}")
        reps: list[dict[str, Any]] = []
        flags = ("--local-repair", "true" if repair else "false")
        with Lab(
            s.workdir / f"g-{key}",
            spines=2,
            leaves=2,
            hosts_per_leaf=1,
            bw=s.bw,
            host_bw=None,
            fabricd_flags=flags,
            log=log,
        ) as lab:
            for rep in range(s.reps):
                r = _one_cut(lab, rng.randrange(32768, 60000), seconds=seconds, cut_at=cut_at)
                reps.append(r)
                log(
                    f"  {key} rep {rep + 1}: {r['spine']}->leaf2 cut, {r['lost']} of {r['sent']} "
                    f"lost ({r['gap_ms']:.0f} ms), longest silence {r['max_silence_ms']:.0f} ms"
                )
                wait_discovered(lab.daemon, switches=4, links=8, timeout=20)
                time.sleep(1.5)  # forwarding over the healed link settles
        out[key] = {
            **{f"gap_ms_{k}": v for k, v in spread([r["gap_ms"] for r in reps]).items()},
            "lost_median": spread([r["lost"] for r in reps])["median"],
            "max_silence_ms_median": spread([r["max_silence_ms"] for r in reps])["median"],
            "reps": reps,
        }
    return out


def markdown_section(g: dict[str, Any]) -> list[str]:
    rows = []
    for key in ("with_local_repair", "without_local_repair"):
        r = g[key]
        rows.append(
            [
                "on" if key.startswith("with_") else "off",
                r["gap_ms_n"],
                f"{r['lost_median']:g}",
                f"{r['gap_ms_median']:.1f}",
                f"{r['gap_ms_min']:.1f}-{r['gap_ms_max']:.1f}",
                f"{r['max_silence_ms_median']:.1f}",
            ]
        )
    return [
        f"## g. Egress-side gap (UDP 4791 at {g['rate_pps']} packets/s, its spine->leaf link "
        "is cut)",
        "",
        markdown_table(
            [
                "local repair",
                "reps",
                "lost (median)",
                "gap ms (median)",
                "min-max",
                "max silence ms",
            ],
            rows,
        ),
        "Gap = lost packets / rate. Without local repair the flow waits for the controller "
        "to move it; with it the spine bounces the packets to another spine at once.",
        "",
    ]
