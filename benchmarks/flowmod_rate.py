"""Bench i: how fast rules reach real Open vSwitch - a large job applied, flow-mods per second.

A large fabric the emulator holds (4 spines x 16 leaves x 4 hosts: 20
switches, 64 hosts, up in ~35 s with every host learned; no traffic is
needed) and one job: all-to-all among every host (4,032 pairs, every
cross-leaf pair a rule on three switches: ~11,800 flow-mods). ``ApplyJob``
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
from controller.api.client import FabricClient
from controller.api.convert_jobs import job_to_proto
from controller.devtools.process import Fabricd, wait_until
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
    with Lab(
        s.workdir / "i-flowmods",
        spines=spines,
        leaves=leaves,
        hosts_per_leaf=hosts,
        bw=s.bw,
        host_bw=None,
        log=log,
    ) as lab:
        fd = lab.daemon
        with FabricClient(fd.grpc_target, timeout=300) as client:
            for rep in range(s.reps):
                job = Job(
                    name=f"flowmods-{rep}",
                    hosts=ranks,
                    match=FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),
                    pattern=Pattern.ALL_TO_ALL,
                    demand_mbps=0.1,  # tiny: the placement is not what is timed
                )
                msg = job_to_proto(job)

                def dry(m: Any = msg) -> Any:
                    return client.apply_job(m, dry_run=True)

                def apply(m: Any = msg) -> Any:
                    return client.apply_job(m)

                def delete(name: str = job.name) -> Any:
                    # DeleteJob returns once stored; the rules go after it. Timed until
                    # the switches hold none of them (polled; one poll reads every switch).
                    client.delete_job(name)
                    wait_until(
                        lambda: _job_entries(switches) == 0,
                        timeout=120,
                        interval=0.1,
                        what="every job rule removed from the switches",
                    )

                dry_s, _, _ = _timed(fd, dry, ovs=ovs)
                apply_s, sent, cpu = _timed(fd, apply, ovs=ovs)
                entries = _job_entries(switches)
                del_s, del_sent, del_cpu = _timed(fd, delete, ovs=ovs)
                mods = sent.get("FlowMod", 0) + sent.get("GroupMod", 0)
                del_mods = del_sent.get("FlowMod", 0) + del_sent.get("GroupMod", 0)
                rec = {
                    "pairs": job.pair_count,
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
                    "delete_mods_per_s": round(del_mods / del_s, 1) if del_s else None,
                    "delete_cpu_s": del_cpu,
                }
                reps.append(rec)
                log(
                    f"  rep {rep + 1}: {job.pair_count} pairs, {mods} flow/group-mods confirmed "
                    f"in {apply_s:.2f} s ({rec['mods_per_s']:.0f}/s, {rec['paths_per_s']:.0f} "
                    f"paths/s; decision alone {dry_s:.2f} s); CPU fabricd {cpu['fabricd']} s, "
                    f"ovs-vswitchd {cpu['ovs_vswitchd']} s; delete {del_s:.2f} s"
                )
                time.sleep(1.0)
    summary = {
        key: spread([float(r[key]) for r in reps])["median"]
        for key in ("apply_s", "dry_run_s", "mods_per_s", "paths_per_s", "delete_s")
    }
    fabricd_cpu = [r["cpu_s"]["fabricd"] / r["apply_s"] for r in reps if r["cpu_s"]["fabricd"]]
    ovs_cpu = [
        r["cpu_s"]["ovs_vswitchd"] / r["apply_s"] for r in reps if r["cpu_s"]["ovs_vswitchd"]
    ]
    return {
        "fabric": f"{spines} spines x {leaves} leaves x {hosts} hosts",
        "job": f"all-to-all among {len(ranks)} hosts, UDP 4791",
        "pairs": reps[0]["pairs"] if reps else 0,
        "onos_paths_per_s": ONOS_PATHS_PER_S,
        "method": "ApplyJob wall time from the client (returns when the switches confirmed "
        "every rule with barriers); mods = FlowMod + GroupMod messages the controller sent "
        "during the call (fabric_openflow_messages_sent_total); entries checked with ovs-ofctl "
        "afterwards; CPU = user+system seconds of fabricd and ovs-vswitchd during the call",
        **{f"{k}_median": v for k, v in summary.items()},
        "fabricd_cpu_share_median": _median(fabricd_cpu),
        "ovs_cpu_share_median": _median(ovs_cpu),
        "reps": reps,
    }


def _median(values: list[float]) -> float | None:
    m = spread(values)["median"]
    return round(m, 3) if m is not None else None


def markdown_section(i: dict[str, Any]) -> list[str]:
    r = i["reps"][0] if i["reps"] else {}
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
    return [
        f"## i. Flow-mods to Open vSwitch ({i['job']} on {i['fabric']})",
        "",
        markdown_table(
            ["what", "pairs", "flow/group-mods", "s (median)", "mods/s", "paths/s"], rows
        ),
        f"During ApplyJob fabricd used {_pct(share)} of one core and ovs-vswitchd {_pct(ovs)} "
        "(CPU seconds / wall seconds). A path is one pair's rules on every switch it crosses.",
        "",
    ]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
