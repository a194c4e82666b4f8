"""Bench i: how fast rules reach real Open vSwitch - a large job applied, flow-mods per second.

A large fabric the emulator holds (4 spines x 16 leaves x 4 hosts: 20
switches, 64 hosts, up in ~35 s with every host learned; no traffic is
needed) and one job: all-to-all among every host (4,032 pairs, each a rule
at its ingress leaf - the spines and the egress leaf carry it by their host
routes - plus the leaves' failover groups: ~4,100 mods). ``ApplyJob``
returns only when every switch confirmed the job's rules with a barrier, so
the whole call - validation, joint placement, storing, compiling, sending
and the barriers - is the time a scheduler waits. Counted from the
controller's own metric ``fabric_openflow_messages_sent_total`` (flow-mods
and group-mods sent during the call) and checked on the switches (the
job-cookie entries ``ovs-ofctl`` finds afterwards). A dry run of the same job
first times the decision alone (validation and placement, nothing sent).
CPU seconds of fabricd and of ovs-vswitchd during the call (from
``/proc``) say which side limits the rate. DeleteJob returns once the job is
stored as deleted, before its rules go, so it is timed until ``ovs-ofctl``
finds none of them on any switch (polled every 0.1 s; one poll reads every
switch, so the delete time is a little long and the dumps add to
ovs-vswitchd's CPU then).

Read-only towards everything it did not start: it reads ovs-vswitchd's pid
file and ``/proc`` counters, nothing more. It asserts nothing about numbers.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.lab import Lab
from benchmarks.report import markdown_table, spread
from benchmarks.scenarios import Settings
from benchmarks.watch import EventWatcher
from controller.api.client import FabricClient
from controller.api.convert_jobs import job_to_proto
from controller.devtools.process import Fabricd, wait_discovered, wait_until
from controller.flowprog.entries import Cookie, CookieKind
from controller.jobs.model import Job, Pattern
from controller.policy.model import FlowMatch, PortRange
from mininet_topos.leafspine import host_ip

__all__ = ["flowmod_rate", "markdown_section", "ONOS_PATHS_PER_S"]

Log = Callable[[str], None]
ONOS_PATHS_PER_S = 18_800  # ONOS, HotSDN'14: the anchor the scale issue quotes
OVS_PID_FILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")
JOB_COOKIE = f"{Cookie(CookieKind.JOB).encode():#x}/0xffff000000000000"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FULL_FABRIC = (4, 16, 4)  # spines, leaves, hosts per leaf


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of ``pid`` so far (None if unknown)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _ovs_pid() -> int | None:
    try:
        return int(OVS_PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


def _sent(fd: Fabricd) -> dict[str, float]:
    return {lab["type"]: v for lab, v in fd.samples("fabric_openflow_messages_sent_total")}


def _job_entries(switches: list[str]) -> int:
    count = 0
    for sw in switches:
        out = subprocess.run(
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", sw, f"cookie={JOB_COOKIE}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        count += sum(1 for line in out.splitlines() if "priority=" in line)
    return count


def _timed(
    fd: Fabricd, call: Callable[[], Any], *, ovs: int | None
) -> tuple[float, dict[str, int], dict[str, float | None]]:
    """(seconds, OpenFlow messages sent by type, CPU seconds used) of one call."""
    before = _sent(fd)
    cpu = (_cpu_s(fd.proc.pid), _cpu_s(ovs))
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    after = _sent(fd)
    cpu_after = (_cpu_s(fd.proc.pid), _cpu_s(ovs))
    sent = {k: int(v - before.get(k, 0.0)) for k, v in after.items() if v > before.get(k, 0.0)}
    used = {
        name: round(b - a, 3) if a is not None and b is not None else None
        for name, a, b in zip(("fabricd", "ovs_vswitchd"), cpu, cpu_after, strict=True)
    }
    return seconds, sent, used


def _one_job(
    lab: Lab, client: FabricClient, job: Job, *, switches: list[str], ovs: int | None
) -> dict[str, Any]:
    """Dry run, apply, check, delete one job; what each took and what was sent."""
    fd = lab.daemon
    msg = job_to_proto(job)
    placed: list[Any] = []

    def dry() -> None:
        client.apply_job(msg, dry_run=True)

    def apply() -> None:
        placed.append(client.apply_job(msg))

    def delete() -> None:
        # DeleteJob returns once stored; the rules go after it. Timed until the
        # switches hold none of them (polled; one poll reads every switch).
        client.delete_job(job.name)
        wait_until(
            lambda: _job_entries(switches) == 0,
            timeout=120,
            interval=0.25,
            what="every job rule removed from the switches",
        )

    watcher = EventWatcher(fd.grpc_target)
    try:
        since = time.time()
        dry_s, _, _ = _timed(fd, dry, ovs=ovs)
        apply_s, sent, cpu = _timed(fd, apply, ovs=ovs)
        entries = _job_entries(switches)
        del_s, del_sent, del_cpu = _timed(fd, delete, ovs=ovs)
        time.sleep(0.3)  # the last events arrive
        # A link the controller saw fail while nothing failed: its liveness (LLDP)
        # expired while it was busy. Counted, because it changes what was placed.
        false_downs = len(watcher.events(since=since, kind="link-down"))
    finally:
        watcher.stop()
    mods = sent.get("FlowMod", 0) + sent.get("GroupMod", 0)
    del_mods = del_sent.get("FlowMod", 0) + del_sent.get("GroupMod", 0)
    pairs_placed = int(placed[0].pairs_placed)
    return {
        "pairs": job.pair_count,
        "pairs_placed": pairs_placed,
        "link_downs_seen": false_downs,
        "valid": pairs_placed == job.pair_count and entries == sent.get("FlowMod", 0),
        "dry_run_s": round(dry_s, 4),
        "apply_s": round(apply_s, 4),
        "flow_mods": sent.get("FlowMod", 0),
        "group_mods": sent.get("GroupMod", 0),
        "barriers": sent.get("BarrierRequest", 0),
        "entries_on_switches": entries,
        "mods_per_s": round(mods / apply_s, 1),
        "paths_per_s": round(job.pair_count / apply_s, 1),
        "cpu_s": cpu,
        "delete_s": round(del_s, 4),
        "delete_flow_mods": del_sent.get("FlowMod", 0),
        "delete_mods": del_mods,
        "delete_cpu_s": del_cpu,
    }


def flowmod_rate(s: Settings, log: Log) -> dict[str, Any]:
    """All-to-all among every host of a large fabric as one job: rules confirmed per second."""
    spines, leaves, hosts = (2, 4, 2) if s.quick else FULL_FABRIC
    switches = [f"spine{k}" for k in range(1, spines + 1)]
    switches += [f"leaf{j}" for j in range(1, leaves + 1)]
    ranks = tuple(
        host_ip(j, i)  # type: ignore[no-untyped-call]
        for j in range(1, leaves + 1)
        for i in range(1, hosts + 1)
    )
    reps: list[dict[str, Any]] = []
    ovs = _ovs_pid()
    with (
        Lab(
            s.workdir / "i-flowmods",
            spines=spines,
            leaves=leaves,
            hosts_per_leaf=hosts,
            bw=s.bw,
            host_bw=None,
            log=log,
        ) as lab,
        FabricClient(lab.daemon.grpc_target, timeout=300) as client,
    ):
        for rep in range(s.reps):
            # Every link known up before each job, so every pair has its paths.
            wait_discovered(
                lab.daemon, switches=spines + leaves, links=2 * spines * leaves, timeout=60
            )
            time.sleep(1.0)
            job = Job(
                name=f"flowmods-{rep}",
                hosts=ranks,
                match=FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),
                pattern=Pattern.ALL_TO_ALL,
                demand_mbps=0.1,  # tiny: the placement is not what is timed
            )
            rec = _one_job(lab, client, job, switches=switches, ovs=ovs)
            reps.append(rec)
            cpu = rec["cpu_s"]
            log(
                f"  rep {rep + 1}: {rec['pairs_placed']} of {rec['pairs']} pairs placed, "
                f"{rec['flow_mods'] + rec['group_mods']} flow/group-mods confirmed in "
                f"{rec['apply_s']:.2f} s ({rec['mods_per_s']:.0f}/s, "
                f"{rec['paths_per_s']:.0f} paths/s; decision alone {rec['dry_run_s']:.2f} s); "
                f"CPU fabricd {cpu['fabricd']} s, ovs-vswitchd {cpu['ovs_vswitchd']} s; "
                f"delete {rec['delete_s']:.2f} s; links seen down {rec['link_downs_seen']}"
                + ("" if rec["valid"] else " (NOT VALID: not every rule was placed)")
            )
    valid = [r for r in reps if r["valid"]]
    summary = {
        key: spread([float(r[key]) for r in valid])["median"]
        for key in ("apply_s", "dry_run_s", "mods_per_s", "paths_per_s", "delete_s")
    }
    fabricd_cpu = [r["cpu_s"]["fabricd"] / r["apply_s"] for r in valid if r["cpu_s"]["fabricd"]]
    ovs_cpu = [
        r["cpu_s"]["ovs_vswitchd"] / r["apply_s"] for r in valid if r["cpu_s"]["ovs_vswitchd"]
    ]
    return {
        "fabric": f"{spines} spines x {leaves} leaves x {hosts} hosts",
        "job": f"all-to-all among {len(ranks)} hosts, UDP 4791",
        "pairs": reps[0]["pairs"] if reps else 0,
        "onos_paths_per_s": ONOS_PATHS_PER_S,
        "method": "ApplyJob wall time from the client (returns when the switches confirmed "
        "every rule with barriers); mods = FlowMod + GroupMod messages the controller sent "
        "during the call (fabric_openflow_messages_sent_total); entries checked with ovs-ofctl "
        "afterwards; CPU = user+system seconds of fabricd and ovs-vswitchd during the call; "
        "medians over valid reps (every pair placed, every flow rule on the switches); "
        "link_downs_seen: link-down events during a rep (nothing failed)",
        **{f"{k}_median": v for k, v in summary.items()},
        "valid_reps": len(valid),
        "link_downs_seen": sum(r["link_downs_seen"] for r in reps),
        "fabricd_cpu_share_median": _median(fabricd_cpu),
        "ovs_cpu_share_median": _median(ovs_cpu),
        "reps": reps,
    }


def _median(values: list[float]) -> float | None:
    m = spread(values)["median"]
    return round(m, 3) if m is not None else None


def markdown_section(i: dict[str, Any]) -> list[str]:
    r: dict[str, Any] = next((x for x in i["reps"] if x["valid"]), {})
    rows = [
        [
            "ApplyJob (rules confirmed)",
            i["pairs"],
            r.get("flow_mods", 0) + r.get("group_mods", 0),
            f"{i['apply_s_median']:.2f}",
            f"{i['mods_per_s_median']:.0f}",
            f"{i['paths_per_s_median']:.0f}",
        ],
        [
            "decision alone (dry run)",
            i["pairs"],
            0,
            f"{i['dry_run_s_median']:.2f}",
            "-",
            f"{i['pairs'] / i['dry_run_s_median']:.0f}" if i["dry_run_s_median"] else "-",
        ],
        [
            "DeleteJob until no rule is left",
            i["pairs"],
            r.get("delete_mods", 0),
            f"{i['delete_s_median']:.2f}",
            "-",
            "-",
        ],
        ["ONOS, HotSDN'14 (anchor)", "-", "-", "-", "-", f"~{i['onos_paths_per_s']:,}"],
    ]
    share = i["fabricd_cpu_share_median"]
    ovs = i["ovs_cpu_share_median"]
    invalid = len(i["reps"]) - i["valid_reps"]
    warn = (
        f" {invalid} of {len(i['reps'])} reps did not place every pair (links seen down while "
        "the controller was busy) and are left out."
        if invalid
        else ""
    )
    return [
        f"## i. Flow-mods to Open vSwitch ({i['job']} on {i['fabric']})",
        "",
        markdown_table(
            ["what", "pairs", "flow/group-mods", "s (median)", "mods/s", "paths/s"], rows
        ),
        f"During ApplyJob fabricd used {_pct(share)} of one core and ovs-vswitchd {_pct(ovs)} "
        "(CPU seconds / wall seconds). A path is one pair's rules on every switch it crosses. "
        f"Links seen down during the reps (nothing failed): {i['link_downs_seen']}." + warn,
        "",
    ]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
