"""``python -m benchmarks`` (``make bench``): fabric benchmarks side by side, one report.

Runs, one after another on this machine, the benchmarks of
:mod:`benchmarks.scenarios` (a: goodput ratio per strategy, b: failover gap
with and without fast-failover groups, c: hot spot to reroute, d: ApplyPolicy
to data plane, e: new-flow setup latency), f: collectives (goodput/bound and
completion time per strategy, :mod:`benchmarks.collectives`), g: the
egress-side gap with and without local repair (:mod:`benchmarks.egress_gap`),
h: takeover after kill -9 of the cluster leader (:mod:`benchmarks.cluster_bench`),
i: flow-mods per second to Open vSwitch (:mod:`benchmarks.flowmod_rate`),
optionally the core scale benchmark (``--scale``), and writes ``bench.json``
(stable keys; a benchmark not run is null) and ``bench.md`` (the tables the
README quotes) with the machine and the UTC date. A benchmark that fails is
recorded under ``errors`` and the others still run; the exit status is then 1.

Links run at 10 Mbit/s by default: one Open vSwitch process on this kind of
machine carries every flow of the fabrics used here at that rate (bench f
measures that ceiling first and says so), so the numbers measure the
controller, not the emulator.

This module only orchestrates and formats: what is measured, and how, is in
the modules named above.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import cluster_bench, collectives, egress_gap, flowmod_rate
from benchmarks.lab import OneLineParser, check_out_dir, preflight, signals_unwind
from benchmarks.report import machine_info, markdown_table, utc_now, write_json
from benchmarks.scenarios import (
    Settings,
    apply_policy_latency,
    failover_gap,
    flow_setup_latency,
    goodput_ratio,
    hotspot_reroute,
)

__all__ = ["BENCHMARKS", "BenchConfig", "parse_args", "main"]

# letter -> (report key, title, function)
BENCHMARKS: dict[str, tuple[str, str, Callable[[Settings, Callable[[str], None]], Any]]] = {
    "a": ("goodput_ratio", "goodput ratio per strategy", goodput_ratio),
    "b": ("failover_gap", "failover gap with and without fast-failover groups", failover_gap),
    "c": ("hotspot_reroute", "hot spot to reroute", hotspot_reroute),
    "d": ("apply_policy", "ApplyPolicy to data plane", apply_policy_latency),
    "e": ("flow_setup", "new-flow setup latency", flow_setup_latency),
    "f": (
        "collectives",
        "collectives: goodput/bound and CCT per strategy",
        collectives.collectives,
    ),
    "g": ("egress_gap", "egress-side gap with and without local repair", egress_gap.egress_gap),
    "h": ("takeover", "takeover after kill -9 of the leader", cluster_bench.takeover),
    "i": ("flowmod_rate", "flow-mods per second to Open vSwitch", flowmod_rate.flowmod_rate),
}
# The Markdown of the newer benchmarks lives with them.
SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "collectives": collectives.markdown_section,
    "egress_gap": egress_gap.markdown_section,
    "takeover": cluster_bench.markdown_section,
    "flowmod_rate": flowmod_rate.markdown_section,
}


@dataclass(frozen=True)
class BenchConfig:
    out: Path
    only: tuple[str, ...]
    reps: int | None  # None: the defaults per benchmark
    quick: bool
    scale: bool
    seed: int
    bw: float


def parse_args(argv: Sequence[str] | None) -> BenchConfig:
    p = OneLineParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("out/bench"), help="output directory")
    p.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    p.add_argument(
        "--reps", type=int, default=None, help="repetitions of each benchmark (h: kills)"
    )
    p.add_argument("--quick", action="store_true", help="1 repetition, short runs (smoke test)")
    p.add_argument("--scale", action="store_true", help="also run benchmarks.scale_core")
    p.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    p.add_argument("--bw", type=float, default=10.0, help="link speed, Mbit/s")
    a = p.parse_args(argv)
    names = {key: letter for letter, (key, _, _) in BENCHMARKS.items()}
    only = []
    for item in (x.strip() for x in a.only.split(",") if x.strip()):
        letter = item if item in BENCHMARKS else names.get(item.replace("-", "_"))
        if letter is None:
            p.error(
                f"--only {item!r}: unknown benchmark; one of "
                + ", ".join(f"{k} ({v[0]})" for k, v in BENCHMARKS.items())
            )
        only.append(letter)
    if a.reps is not None and not 1 <= a.reps <= 100:
        p.error(f"--reps {a.reps}: need 1-100")
    if not 1 <= a.bw <= 100:
        p.error(f"--bw {a.bw:g}: need 1-100 Mbit/s")
    check_out_dir(p, a.out)
    return BenchConfig(
        out=a.out,
        only=tuple(sorted(set(only))) or tuple(BENCHMARKS),
        reps=a.reps,
        quick=a.quick,
        scale=a.scale,
        seed=a.seed,
        bw=float(a.bw),
    )


def _reps(cfg: BenchConfig, letter: str) -> int:
    if cfg.reps is not None:
        return cfg.reps
    if cfg.quick:
        # Two hot spots: one can miss when a rebalancing round moved the flow just before.
        # Two kills: the second one kills the node that restarted as a standby.
        return 2 if letter in "ch" else 1
    return {"a": 8, "b": 3, "c": 5, "d": 5, "e": 1, "f": 3, "g": 3, "h": 10, "i": 3}[letter]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# Fabric benchmarks",
        "",
        f"{doc['date']}; {m['cpu_model']}, {m['cpu_count']} CPUs, "
        f"{m['memory_bytes'] / 2**30:.1f} GiB, {m['platform']}, Open vSwitch "
        f"{m['ovs_version']} (userspace datapath), links shaped to {doc['config']['bw_mbps']:g} "
        f"Mbit/s; seed {doc['config']['seed']}{', quick run' if doc['quick'] else ''}.",
        "",
    ]
    a = doc["goodput_ratio"]
    if a:
        rows = []
        for name, w in a["workloads"].items():
            ceiling = w["strategies"].get("ceiling", {}).get("ratio_median")
            for strat, r in w["strategies"].items():
                rows.append(
                    [
                        f"{name} ({w['flows']} flows)",
                        "emulator ceiling" if strat == "ceiling" else strat,
                        round(w["bound_bps"] / 1e6, 1),
                        _num(r["ratio_median"]),
                        _num(r["ratio_median"] / ceiling if ceiling else None),
                        f"{_num(r['ratio_min'])}-{_num(r['ratio_max'])}",
                        f"{_num(r['ratio_q1'])}-{_num(r['ratio_q3'])}",
                        r["ratio_n"],
                    ]
                )
        lines += [
            f"## a. Goodput / bound per strategy ({a['fabric']}, {a['flow_seconds']:g} s TCP "
            "flows on the ai-training ports)",
            "",
            markdown_table(
                [
                    "job",
                    "strategy",
                    "bound Mbit/s",
                    "median",
                    "of ceiling",
                    "min-max",
                    "IQR",
                    "runs",
                ],
                rows,
            ),
            "The bound is the fabric's max concurrent throughput (links and NICs at the link "
            "speed, headers included, so ~0.95 is line rate). The emulator ceiling is the same "
            "flows on a static optimal placement written into the switches (no controller "
            "logic): what this machine carries; 'of ceiling' = median / the ceiling's median.",
            "",
        ]
    b = doc["failover_gap"]
    if b:
        rows = [
            [
                "yes" if key.startswith("with_") else "no",
                len(b[key]["reps"]),
                _num(b[key]["gap_ms_median"], ".1f"),
                f"{_num(b[key]['gap_ms_min'], '.1f')}-{_num(b[key]['gap_ms_max'], '.1f')}",
                _num(b[key]["max_silence_ms_median"], ".1f"),
            ]
            for key in ("with_failover_groups", "without_failover_groups")
        ]
        lines += [
            f"## b. Failover gap (UDP 4791 at {b['rate_pps']:.0f} packets/s, its uplink fails)",
            "",
            markdown_table(
                ["fast-failover groups", "reps", "gap ms (median)", "min-max", "max silence ms"],
                rows,
            ),
            "Gap = lost packets / rate.",
            "",
        ]
    c, d = doc["hotspot_reroute"], doc["apply_policy"]
    if c or d:
        rows = []
        if c:
            rows.append(
                [
                    "hot spot onset to the controller's reroute",
                    c["seconds_n"],
                    _ms(c["seconds_median"]),
                    f"{_ms(c['seconds_min'])}-{_ms(c['seconds_max'])}",
                ]
            )
            rows.append(
                [
                    "hot spot onset to the AI flow's first packet on the other spine",
                    c["data_plane_s_n"],
                    _ms(c["data_plane_s_median"]),
                    f"{_ms(c['data_plane_s_min'])}-{_ms(c['data_plane_s_max'])}",
                ]
            )
        if d:
            rows.append(
                [
                    "ApplyPolicy returned to data plane on the new spine",
                    d["seconds_n"],
                    _ms(d["seconds_median"]),
                    f"{_ms(d['seconds_min'])}-{_ms(d['seconds_max'])}",
                ]
            )
        lines += [
            "## c, d. Reaction times",
            "",
            markdown_table(["what", "reps", "median ms", "min-max ms"], rows),
        ]
        if c:
            lines.append(f"Port polling every {c['poll_interval_s']:g} s; {c['method']}.")
        if d:
            lines.append(
                f"ApplyPolicy itself took {_ms(d['apply_rpc_s_median'])} ms (median); from the "
                f"call to the first packet on the new spine {_ms(d['since_call_s_median'])} ms. "
                "The first packet on the new spine is timestamped by a raw socket there."
            )
        lines.append("")
    e = doc["flow_setup"]
    if e:
        ctl = e["controller"]
        lines += [
            "## e. New-flow setup latency",
            "",
            markdown_table(
                ["measured", "flows", "p50 ms", "p99 ms"],
                [
                    [
                        "end to end (first RTT - second RTT)",
                        e["answered"],
                        _ms(e["setup_s_p50"]),
                        _ms(e["setup_s_p99"]),
                    ],
                    [
                        "controller: packet-in to barrier (histogram)",
                        ctl["count"],
                        _ms(ctl["p50_s"]),
                        _ms(ctl["p99_s"]),
                    ],
                ],
            ),
            f"{e['answered']} of {e['probes']} probes answered; median RTT with rules in place "
            f"{_ms(e['second_rtt_s_p50'])} ms.",
            "",
        ]
    for key, section in SECTIONS.items():
        if doc[key]:
            lines += section(doc[key])
    sc = doc["scale_core"]
    if sc:
        lines += ["## Core scale", "", "See `scale_core.md` next to this file.", ""]
    if doc["errors"]:
        lines += ["## Errors", ""] + [f"- {k}: {v}" for k, v in doc["errors"].items()] + [""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    preflight("python -m benchmarks", "bench")
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:4.0f}s] {text}", flush=True)

    cfg.out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "machine": machine_info(),
        "date": utc_now(),
        "quick": cfg.quick,
        "config": {
            "only": list(cfg.only),
            "reps": {k: _reps(cfg, k) for k in cfg.only},
            "seed": cfg.seed,
            "bw_mbps": cfg.bw,
            "scale": cfg.scale,
        },
        **{key: None for key, _, _ in BENCHMARKS.values()},
        "scale_core": None,
        "errors": {},
    }
    log(f"bench: {', '.join(cfg.only)}; seed {cfg.seed}; out {cfg.out}")
    try:
        with signals_unwind():
            for letter in cfg.only:
                key, title, run = BENCHMARKS[letter]
                settings = Settings(
                    workdir=cfg.out / "work",
                    reps=_reps(cfg, letter),
                    quick=cfg.quick,
                    seed=cfg.seed,
                    bw=cfg.bw,
                )
                log(f"{letter}. {title} ({settings.reps} rep(s)) ...")
                t = time.monotonic()
                try:
                    doc[key] = run(settings, log)
                except Exception as exc:
                    traceback.print_exc()
                    doc["errors"][key] = f"{type(exc).__name__}: {exc}"
                    log(f"{letter}. failed: {exc}")
                else:
                    doc[key]["seconds"] = round(time.monotonic() - t, 1)
            if cfg.scale:
                from benchmarks import scale_core

                log("scale: benchmarks.scale_core ...")
                rc = scale_core.main(["--out", str(cfg.out), *(["--quick"] if cfg.quick else [])])
                path = cfg.out / "scale_core.json"
                if rc == 0 and path.exists():
                    doc["scale_core"] = json.loads(path.read_text())
                else:
                    doc["errors"]["scale_core"] = f"exited with {rc}"
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    write_json(cfg.out / "bench.json", doc)
    text = markdown(doc)
    (cfg.out / "bench.md").write_text(text)
    log(f"wrote {cfg.out / 'bench.json'} and {cfg.out / 'bench.md'}")
    print()
    print(text)
    return 1 if doc["errors"] else 0
