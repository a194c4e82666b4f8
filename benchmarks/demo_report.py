"""The demo's report: report.json, report.md and goodput.png from the phases it ran.

Turns what :mod:`benchmarks.demo` collected - each phase's flows and flowgen
reports, the controller's events, per-link utilization samples - into the
three files under the output directory, and returns the Markdown. It
computes sums and ratios of what it is given; it runs and measures nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.lab import Flow
from benchmarks.report import (
    loss_in_window,
    machine_info,
    markdown_table,
    plot_demo,
    utc_now,
    write_json,
)

__all__ = ["Ceiling", "PhaseRun", "goodput_of", "failure_gap", "write_report"]

HIDDEN_EVENTS = ("flow-placed", "flow-expired", "host-learned")  # many, and told elsewhere
GAP_BEFORE_S, GAP_AFTER_S = 0.2, 2.0  # loss counted as the failure's: holes in this window


@dataclass(frozen=True)
class Ceiling:
    """The same traffic on a static optimal placement: what the emulator carries."""

    goodput_bps: float
    bound_bps: float

    @property
    def ratio(self) -> float:
        return self.goodput_bps / self.bound_bps if self.bound_bps else 0.0


@dataclass
class PhaseRun:
    """What one phase produced, before it is turned into the report."""

    name: str
    strategy: str
    flows: list[Flow]
    results: list[dict[str, Any]]
    placed: list[Any]
    final: dict[tuple[int, int], Any]
    start: float
    end: float
    reroutes: dict[str, int]  # moves of this job's flows, by reason (from WatchEvents)
    reroutes_all: dict[str, int]  # fabric_reroutes_total deltas: also older, idle flows
    bound_bps: float
    bound_note: str
    gap: dict[str, Any] | None = None
    ceiling: Ceiling | None = None


def goodput_of(result: dict[str, Any]) -> float:
    """A flow's goodput: TCP from its own sink; UDP its delivered bytes over the offered time."""
    flow: Flow = result["flow"]
    sink = result["sink"]
    if flow.proto == "tcp":
        return float(sink["goodput_bps"])
    got = sink.get("flows", {}).get(str(flow.tag), {})
    seconds = result["sent"]["duration_s"]
    return float(got.get("bytes", 0)) * 8 / seconds if seconds else 0.0


def failure_gap(run: PhaseRun, state: dict[str, Any], *, rate_pps: float) -> dict[str, Any]:
    """Loss around the failure, per affected flow, from the sinks' dated loss records."""
    window = (state["at"] - GAP_BEFORE_S, state["at"] + GAP_AFTER_S)
    per_flow, collateral = [], 0
    for n, r in enumerate(run.results):
        got = r["sink"].get("flows", {}).get(str(r["flow"].tag), {})
        lost = loss_in_window(got, start=window[0], end=window[1])
        if n not in state["affected"]:
            collateral += lost
            continue
        per_flow.append(
            {
                "flow": r["flow"].label,
                "lost_packets": lost,
                "gap_ms": round(lost / rate_pps * 1000, 1),
                "max_gap_ms": round(float(got.get("max_gap_s", 0.0)) * 1000, 1),
                "lost_in_phase": max(0, int(r["sent"]["packets"]) - int(got.get("packets", 0))),
            }
        )
    return {
        "link": f"{state['leaf']}-{state['spine']}",
        "method": "UDP 4791 flows paced at a known rate; lost = packets missing in holes that "
        f"began from {GAP_BEFORE_S:g} s before to {GAP_AFTER_S:g} s after the failure (the sink "
        "dates every hole by sequence number and send time); gap = lost / rate; max gap = the "
        "longest silence between two arrivals at the sink",
        "rate_pps": round(rate_pps, 1),
        "window_s": [GAP_BEFORE_S, GAP_AFTER_S],
        "affected_flows": len(per_flow),
        "lost_packets": sum(p["lost_packets"] for p in per_flow),
        "gap_ms": max((p["gap_ms"] for p in per_flow), default=0.0),
        "max_gap_ms": max((p["max_gap_ms"] for p in per_flow), default=0.0),
        "unaffected_lost_packets": collateral,
        "per_flow": per_flow,
    }


def _phase_doc(run: PhaseRun, t0: float) -> dict[str, Any]:
    got = sum(goodput_of(r) for r in run.results)
    per_flow = []
    for f, r, p in zip(run.flows, run.results, run.placed, strict=True):
        final = run.final.get((f.sport, f.port))
        per_flow.append(
            {
                "flow": f.label,
                "proto": f.proto,
                "dst_port": f.port,
                "src_port": f.sport,
                "goodput_bps": round(goodput_of(r), 1),
                "placed_path": list(p.path),
                "final_path": list(final.path) if final is not None else None,
                "moves": int(final.moves) if final is not None else None,
            }
        )
    ratio = got / run.bound_bps if run.bound_bps else 0.0
    ceiling = run.ceiling
    return {
        "name": run.name,
        "strategy": run.strategy,
        "flows": len(run.flows),
        "goodput_bps": round(got, 1),
        "bound_bps": round(run.bound_bps, 1),
        "ratio": round(ratio, 4),
        "ceiling": {
            "goodput_bps": round(ceiling.goodput_bps, 1),
            "bound_bps": round(ceiling.bound_bps, 1),
            "ratio": round(ceiling.ratio, 4),
        }
        if ceiling
        else None,
        "ratio_vs_ceiling": round(ratio / ceiling.ratio, 4) if ceiling and ceiling.ratio else None,
        "bound_note": run.bound_note,
        "reroutes": run.reroutes,
        "reroutes_all_flows": run.reroutes_all,
        "gap": run.gap,
        "start_s": round(run.start - t0, 2),
        "end_s": round(run.end - t0, 2),
        "per_flow": per_flow,
    }


def _timeline(runs: Sequence[PhaseRun], t0: float) -> list[tuple[float, float]]:
    """The job's summed goodput in 0.1 s bins (from every sink's timeline)."""
    bins: dict[int, float] = {}
    for run in runs:
        seen: set[str] = set()
        for r in run.results:
            sink = r["sink"]
            key = f"{r['flow'].dst}-{r['flow'].proto}-{r['flow'].port}"
            if key in seen or not sink.get("first_time"):
                continue  # a UDP sink shared by flows reports them together
            seen.add(key)
            width = float(sink.get("bin_s", 0.1))
            first = round((sink["first_time"] - t0) / width)
            for n, bps in enumerate(sink["timeline_bps"]):
                bins[first + n] = bins.get(first + n, 0.0) + bps
    if not bins:
        return []
    return [(n * 0.1, bins.get(n, 0.0)) for n in range(min(bins), max(bins) + 1)]


def _rows(phases: Sequence[dict[str, Any]]) -> list[list[object]]:
    """A row per phase; after the last phase that shares a ceiling, the ceiling's row."""
    rows: list[list[object]] = []
    for n, p in enumerate(phases):
        rows.append(
            [
                n + 1,
                p["name"],
                p["strategy"],
                p["flows"],
                round(p["goodput_bps"] / 1e6, 1),
                round(p["bound_bps"] / 1e6, 1),
                round(p["ratio"], 2),
                "-" if p["ratio_vs_ceiling"] is None else round(p["ratio_vs_ceiling"], 2),
                ", ".join(f"{v} {k}" for k, v in p["reroutes"].items()) or "-",
            ]
        )
        c = p["ceiling"]
        if c and (n + 1 == len(phases) or phases[n + 1]["ceiling"] != c):
            rows.append(
                [
                    "",
                    f"*emulator ceiling* ({p['name'].split(',')[0]})",
                    "static optimal",
                    p["flows"],
                    round(c["goodput_bps"] / 1e6, 1),
                    round(c["bound_bps"] / 1e6, 1),
                    round(c["ratio"], 2),
                    1.0,
                    "-",
                ]
            )
    return rows


def _markdown(doc: dict[str, Any]) -> str:
    c, m = doc["config"], doc["machine"]
    table = markdown_table(
        [
            "#",
            "phase",
            "strategy",
            "flows",
            "goodput Mbit/s",
            "bound Mbit/s",
            "ratio",
            "of ceiling",
            "reroutes",
        ],
        _rows(doc["phases"]),
    )
    check = doc.get("ceiling_check")
    said = ""
    if check:
        said = (
            f"Ceiling check at start: {check['flows']} UDP flows paced at {check['rate_mbps']:g} "
            f"Mbit/s on a static optimal placement delivered {check['delivered']:.3f} of what "
            "was sent: "
            + (
                "the emulator carries this link rate on this machine."
                if check["ok"]
                else "**below 0.95: the machine did not carry the link rate (busy?); read every "
                "ratio against its ceiling row.**"
            )
        )
    lines = [
        "# Demo: AI collectives on an emulated leaf-spine",
        "",
        f"{doc['date']}; {c['spines']} spines x {c['leaves']} leaves x {c['hosts_per_leaf']} "
        f"hosts, {c['bw']:g} Mbit/s links and NICs, {c['phase_seconds']:g} s per phase, seed "
        f"{c['seed']}; {m['cpu_model']} ({m['cpu_count']} CPUs), Open vSwitch {m['ovs_version']}.",
        "",
        said,
        "",
        table,
        "Goodput is payload delivered at the receivers; the bound is the fabric's maximum "
        "concurrent throughput for the phase's traffic matrix (links and NICs at the link "
        "speed, which counts Ethernet/IP/TCP headers: a ratio of ~0.95 is line rate). The "
        "*emulator ceiling* rows run the same traffic on a static optimal placement written "
        "into the switches, with no controller logic: what this machine carries. 'Of ceiling' "
        "is a phase's ratio over its ceiling's. The TCP phases are single runs, and TCP over "
        "this emulator's shaped links varies by about a tenth from run to run (its queues are "
        "deep): a phase within ~0.1 of its ceiling is at it; `make bench` (a, f) gives medians.",
        "",
    ]
    for p in doc["phases"]:
        lines.append(f"- **{p['name']}**: bound {p['bound_note']}.")
    gap = next((p["gap"] for p in doc["phases"] if p["gap"]), None)
    if gap:
        lines += [
            "",
            "## Link failure",
            "",
            f"{gap['link']} went down carrying {gap['affected_flows']} AI flows "
            f"({gap['rate_pps']:g} packets/s each): {gap['lost_packets']} packets lost in all, "
            f"worst flow {gap['gap_ms']:g} ms of traffic lost, longest silence "
            f"{gap['max_gap_ms']:g} ms; flows not on the link lost "
            f"{gap['unaffected_lost_packets']} packets meanwhile. Loss counted from "
            f"{gap['window_s'][0]:g} s before to {gap['window_s'][1]:g} s after the failure.",
            "",
        ]
        if gap["per_flow"]:
            lines.append(
                markdown_table(
                    ["flow", "lost packets", "gap ms", "max silence ms"],
                    [
                        [f["flow"], f["lost_packets"], f["gap_ms"], f["max_gap_ms"]]
                        for f in gap["per_flow"]
                    ],
                )
            )
    told = ("flow-rerouted", "link-down", "job-placed", "job-replaced", "job-deleted")
    moves = [e for e in doc["events"] if e["kind"] in told]
    lines += ["", "## What the controller did", ""]
    if not moves:
        lines.append("No reroutes and no link failures.")
    for e in moves:
        a = e["attributes"]
        if e["kind"].startswith("job-"):
            what = e["kind"].removeprefix("job-")
            pairs = f" ({a['pairs']} pairs, rules confirmed)" if "pairs" in a else ""
            lines.append(f"- {e['t_s']:6.1f} s [{e['phase']}] job {e['subject']} {what}{pairs}")
        elif e["kind"] == "flow-rerouted":
            lines.append(
                f"- {e['t_s']:6.1f} s [{e['phase']}] flow {a.get('five_tuple', e['subject'])} "
                f"moved ({e['reason']}): {a.get('from', '?')} => {a.get('path', '?')}"
            )
        else:
            lines.append(f"- {e['t_s']:6.1f} s [{e['phase']}] link {e['subject']} down")
    return "\n".join(lines) + "\n"


def _phase_at(runs: Sequence[PhaseRun], t: float) -> str:
    """The phase running at ``t``, else the nearest one within 1.5 s (a job is placed
    just before its traffic), else "-"."""
    inside = [run for run in runs if run.start <= t <= run.end]
    if inside:
        return inside[0].name
    near = [(min(abs(t - run.start), abs(t - run.end)), run.name) for run in runs]
    best = min(near, default=(float("inf"), "-"))
    return best[1] if best[0] <= 1.5 else "-"


def write_report(
    out: Path,
    *,
    config: dict[str, Any],
    runs: Sequence[PhaseRun],
    marks: Sequence[tuple[float, str, str]],
    events: Sequence[dict[str, Any]],
    link_samples: Sequence[tuple[float, dict[str, float]]],
    title: str,
    ceiling_check: dict[str, Any] | None = None,
) -> str:
    """Write the three files; returns the Markdown. Times in ``marks`` etc. are unix seconds."""
    t0 = runs[0].start if runs else 0.0
    shown = [
        {**e, "t_s": round(e["time"] - t0, 2), "phase": _phase_at(runs, e["time"])}
        for e in events
        if e["kind"] not in HIDDEN_EVENTS
    ]
    doc = {
        "machine": machine_info(),
        "date": utc_now(),
        "config": config,
        "ceiling_check": ceiling_check,
        "phases": [_phase_doc(run, t0) for run in runs],
        "events": shown,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", doc)
    text = _markdown(doc)
    (out / "report.md").write_text(text)
    points = [(t - t0, kind, label) for t, kind, label in marks]
    points += [(e["t_s"], "reroute", e["reason"]) for e in shown if e["kind"] == "flow-rerouted"]
    plot_demo(
        out / "goodput.png",
        goodput=_timeline(runs, t0),
        phases=[(r.name, r.start - t0, r.end - t0) for r in runs],
        marks=sorted(points),
        links=[(t - t0, s) for t, s in link_samples if t >= t0 - 1],
        title=title,
    )
    return text
