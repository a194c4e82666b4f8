"""Bench h: takeover - two fabricd on one etcd, the leader killed with SIGKILL again and again.

A real etcd (one member on loopback), two fabricd in cluster mode and a
2 x 2 x 1 fabric whose every bridge connects to both (probe and reconnect
back-off at 1 s). Per kill: a 1000 packets/s RoCEv2 flow and a default-policy
flow run leaf1 -> leaf2, the leader is placed the AI flow, then it gets
``kill -9``. Takeover time is from the kill until the other node's metric
``fabric_cluster_leader`` reads 1 (polled every 50 ms); loss is counted per
flow from the sinks' dated holes around the kill. Then the killed node is
started again on the same OpenFlow port and node id, and the next kill waits
until it is a standby the switches see as SLAVE and the leader has the whole
fabric discovered. Everything started - etcd, both fabricd, the fabric - is
stopped in ``finally`` blocks, by pid or by the fabric's own teardown.

It measures and reports; it asserts nothing about the numbers.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.lab import Flow, wait_for_free_ovs
from benchmarks.report import loss_in_window, markdown_table, spread
from benchmarks.scenarios import Settings
from controller.api.client import FabricClient
from controller.devtools.etcd import start_etcd
from controller.devtools.process import Fabricd, start_fabricd, wait_discovered, wait_until
from mininet_topos.harness import LeafSpineFabric

__all__ = ["takeover", "markdown_section"]

Log = Callable[[str], None]
UDP_SIZE = 500
RATE_PPS = 1000  # 4 Mbit/s at 500 bytes: one lost packet = one millisecond
FLOWS = (("ai", 4791), ("default", 5001))  # 5001: only the catch-all policy governs it
WINDOW = (0.2, 5.0)  # holes from this long before to after the kill count as its loss
NODES = ("a", "b")


class _Cluster:
    """etcd, two fabricd and the fabric; restarts a killed node on its OpenFlow port."""

    def __init__(self, workdir: Path, *, bw: float, log: Log, stack: ExitStack) -> None:
        self.workdir, self.bw, self.log, self.stack = workdir, bw, log, stack
        workdir.mkdir(parents=True, exist_ok=True)
        wait_for_free_ovs(log)
        etcd = start_etcd(workdir / "etcd")
        stack.callback(etcd.stop)
        self.etcd_url = etcd.url
        self.nodes: dict[str, Fabricd] = {}
        self._starts = 0
        for name in NODES:
            self.start(name)
        ports = [self.nodes[n].of_port for n in NODES]
        fab = LeafSpineFabric(  # type: ignore[no-untyped-call]
            2, 2, 1, controller_ports=ports, bw=bw, log_level="critical"
        )
        stack.callback(fab.stop)  # safe on a half-started fabric
        self.fab = fab.start()  # type: ignore[no-untyped-call]

    def start(self, name: str, *, of_port: int | None = None) -> Fabricd:
        work = self.workdir / name
        work.mkdir(exist_ok=True)
        self._starts += 1
        # A log per incarnation: start_fabricd waits for "ready" in it, and an
        # appended log would still hold the killed incarnation's.
        node = start_fabricd(
            work,
            "--link-capacity-mbps", f"{self.bw:g}",
            "--poll-interval", "0.5",
            "--cluster-etcd", self.etcd_url,
            "--cluster-name", "bench",
            "--node-id", name,
            of_port=of_port,
            name=f"{name}-{self._starts}",
        )  # fmt: skip
        self.stack.callback(node.stop)  # stop() of an exited process only reaps it
        self.nodes[name] = node
        return node

    def leader(self, *, timeout: float = 15.0) -> str:
        def find() -> str | None:
            for name, node in self.nodes.items():
                if node.proc.poll() is None and node.value("fabric_cluster_leader") == 1:
                    return name
            return None

        found = wait_until(find, timeout=timeout, interval=0.1, what="a leader")
        assert isinstance(found, str)
        return found

    def settled(self, leader: str, standby: str) -> None:
        """The leader sees the whole fabric; the standby is one, and the switches know it."""
        wait_discovered(self.nodes[leader], switches=4, links=8, timeout=30)

        def standby_ready() -> bool:
            with FabricClient(self.nodes[standby].grpc_target, timeout=2) as client:
                if client.cluster_status().role != "standby":
                    return False
            roles = [self.fab.connected_controllers(sw) for sw in ("leaf1", "leaf2")]
            return all(sorted(r.values()) == ["master", "slave"] for r in roles)

        wait_until(standby_ready, timeout=30, interval=0.2, what=f"{standby} a standby")

    def learn_hosts(self) -> None:
        for j in (1, 2):
            if self.fab.ping(self.fab.host(j, 1), self.fab.ip(3 - j, 1), count=2) < 1:
                raise RuntimeError(f"l{j}h1 cannot reach the other leaf")


def _start_flows(c: _Cluster, sport: int, seconds: float) -> list[tuple[Flow, Any, Any]]:
    """The AI and the default flow, sinks first: [(flow, sink handle, sender handle)]."""
    fab, work = c.fab, str(c.workdir)
    src, dst = fab.host(1, 1), fab.host(2, 1)
    rate = RATE_PPS * UDP_SIZE * 8 / 1e6
    flows = [
        Flow((1, 1), (2, 1), "udp", port, sport + n, rate, UDP_SIZE)
        for n, (_, port) in enumerate(FLOWS)
    ]
    sinks = [
        fab.start_sink(dst, proto="udp", port=f.port, duration=seconds + 2, workdir=work)
        for f in flows
    ]
    time.sleep(0.3)
    senders = [
        fab.start_sender(
            src,
            dst,
            proto="udp",
            port=f.port,
            sport=f.sport,
            rate=f.rate_mbps,
            size=UDP_SIZE,
            duration=seconds,
            workdir=work,
        )
        for f in flows
    ]
    return list(zip(flows, sinks, senders, strict=True))


def _one_kill(c: _Cluster, k: int, *, seconds: float) -> dict[str, Any]:
    leader = c.leader()
    standby = next(n for n in NODES if n != leader)
    c.settled(leader, standby)
    flows = _start_flows(c, 40000 + 10 * k, seconds)
    with FabricClient(c.nodes[leader].grpc_target, timeout=5) as client:
        wait_until(
            lambda: any(f.five_tuple.dst_port == 4791 for f in client.list_flows()),
            timeout=8,
            what="the AI flow placed by the leader",
        )
    time.sleep(1.0)
    victim = c.nodes[leader]
    killed = time.time()
    t0 = time.monotonic()
    os.kill(victim.proc.pid, signal.SIGKILL)
    wait_until(
        lambda: c.nodes[standby].value("fabric_cluster_leader") == 1,
        timeout=30,
        interval=0.05,
        what=f"{standby} to lead",
    )
    takeover = time.monotonic() - t0
    victim.proc.wait(timeout=10)
    per_flow: dict[str, Any] = {}
    for (_, sink, sender), (label, _) in zip(flows, FLOWS, strict=True):
        sent = c.fab.finish(sender, seconds + 30)
        got = c.fab.finish(sink, seconds + 30)
        stream = got.get("flows", {}).get("0", {})
        per_flow[label] = {
            "sent": int(sent["packets"]),
            "lost": loss_in_window(stream, start=killed - WINDOW[0], end=killed + WINDOW[1]),
            "lost_in_stream": max(0, int(sent["packets"]) - int(stream.get("packets", 0))),
            "max_silence_ms": round(float(stream.get("max_gap_s", 0.0)) * 1000, 1),
        }
    c.start(leader, of_port=victim.of_port)  # back as a standby, on the port the switches use
    return {"killed": leader, "takeover_s": round(takeover, 3), "flows": per_flow}


def takeover(s: Settings, log: Log) -> dict[str, Any]:
    """kill -9 of the leader, ``kills`` times: takeover time and packets lost per kill."""
    kills = s.reps
    seconds = 7.0
    reps: list[dict[str, Any]] = []
    with ExitStack() as stack:
        c = _Cluster(s.workdir / "h-takeover", bw=s.bw, log=log, stack=stack)
        first = c.leader()
        c.settled(first, next(n for n in NODES if n != first))
        c.learn_hosts()
        for k in range(kills):
            r = _one_kill(c, k, seconds=seconds)
            reps.append(r)
            told = ", ".join(f"{n} {v['lost']} lost" for n, v in r["flows"].items())
            log(
                f"  kill {k + 1}/{kills} of {r['killed']}: takeover {r['takeover_s']:.2f} s; {told}"
            )
        last = c.leader()
        c.settled(last, next(n for n in NODES if n != last))
        for name, node in c.nodes.items():
            if "Traceback" in node.log():
                log(f"  warning: fabricd {name} logged an exception, see {node.log_path}")
    times = [r["takeover_s"] for r in reps]
    lost = {label: [r["flows"][label]["lost"] for r in reps] for label, _ in FLOWS}
    return {
        "kills": kills,
        "rate_pps": RATE_PPS,
        "method": "etcd (1 member) + 2 fabricd, 2x2x1 fabric connected to both; a UDP 4791 "
        "flow and a default-policy UDP 5001 flow at 1000 packets/s each; kill -9 of the leader; "
        "takeover = kill to the other node's fabric_cluster_leader == 1 (polled every 50 ms); "
        f"lost = packets missing in holes from {WINDOW[0]:g} s before to {WINDOW[1]:g} s after "
        "the kill; the killed node restarts as standby before the next kill",
        **{f"takeover_s_{k}": v for k, v in spread(times).items()},
        **{f"{label}_lost_{k}": v for label in lost for k, v in _lost_summary(lost[label]).items()},
        "reps": reps,
    }


def _lost_summary(values: list[int]) -> dict[str, Any]:
    stats = spread([float(v) for v in values])
    return {"median": stats["median"], "max": stats["max"], "total": sum(values)}


def markdown_section(h: dict[str, Any]) -> list[str]:
    rows = [
        [
            "takeover s (kill -9 to new leader)",
            f"{h['takeover_s_median']:.2f}",
            f"{h['takeover_s_max']:.2f}",
            f"{h['takeover_s_min']:.2f}",
        ]
    ]
    for label, _ in FLOWS:
        rows.append(
            [
                f"{label} flow: packets lost per kill",
                f"{h[f'{label}_lost_median']:g}",
                f"{h[f'{label}_lost_max']:g}",
                f"total {h[f'{label}_lost_total']}",
            ]
        )
    return [
        f"## h. Takeover ({h['kills']} x kill -9 of the leader; two fabricd on one etcd)",
        "",
        markdown_table(["what", "median", "max", "min / total"], rows),
        f"Flows paced at {h['rate_pps']} packets/s: one lost packet is one millisecond. "
        "The killed node restarts as a standby before the next kill.",
        "",
    ]
