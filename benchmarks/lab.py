"""One experiment's fabric: fabricd, an emulated leaf-spine, a client, and their cleanup.

The demo and the fabric benchmarks run many short experiments. Each one needs
the same scaffolding, kept here so that it is done one way: refuse to start
without root and Open vSwitch, wait while another fabric owns the switch
names, start fabricd and a shaped fabric, wait for discovery, teach the
controller every host, and - whatever happens, Ctrl-C included - stop the
flowgen processes, the fabric and fabricd again. It also holds small helpers
to start flows and read what the controller did with them.

It measures nothing itself and decides no policy. Only the main thread may
touch Mininet (its node shells are not thread-safe).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.oneline import OneLineParser
from controller.api import convert
from controller.api.client import FabricClient
from controller.devtools.process import Fabricd, start_fabricd, wait_discovered, wait_until
from controller.policy.model import Strategy
from mininet_topos.harness import FLOWGEN, LeafSpineFabric, clear_stale_bridges, list_bridges

__all__ = [
    "Lab",
    "Flow",
    "OneLineParser",
    "preflight",
    "check_out_dir",
    "wait_for_free_ovs",
    "signals_unwind",
    "set_strategy",
    "placed_flows",
    "spine_of",
    "reroute_counts",
    "hashed_sports",
    "ring_order",
    "delta",
    "by_ports",
    "busiest_cable",
    "uses_cable",
    "FLOWGEN",
]

Log = Callable[[str], None]
SPAWN_S = 0.05  # generous time to start one process in a host's shell


def check_out_dir(parser: argparse.ArgumentParser, out: Path) -> None:
    """Reject an output directory the host shells that start flowgen could misread."""
    if not re.fullmatch(r"[A-Za-z0-9_./+:@%=-]+", str(out)):
        parser.error(f"--out {str(out)!r}: use letters, digits and _./+:@%=- only (no spaces)")
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out}: exists and is not a directory")


def preflight(prog: str, make_target: str) -> None:
    """Exit 2 with one line unless we are root and Open vSwitch answers."""
    if os.geteuid() != 0:
        print(
            f"{prog}: needs root for Mininet and Open vSwitch: run `sudo make {make_target}`",
            file=sys.stderr,
        )
        raise SystemExit(2)
    if shutil.which("ovs-vsctl") is None:
        print(f"{prog}: Open vSwitch is not installed: run `make setup`", file=sys.stderr)
        raise SystemExit(2)
    rc = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True).returncode
    if rc != 0:
        print(f"{prog}: Open vSwitch is not running: run `make setup`", file=sys.stderr)
        raise SystemExit(2)


def wait_for_free_ovs(log: Log, *, timeout: float = 600.0, poll: float = 10.0) -> None:
    """Wait while another fabric's bridges exist: two fabrics would clash on switch names."""
    deadline = time.monotonic() + timeout
    told = False
    clear_stale_bridges()
    while bridges := list_bridges():
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Open vSwitch still has bridges {' '.join(bridges)} after {timeout:.0f} s: "
                "another fabric is running on this machine"
            )
        if not told:
            log(f"waiting for another fabric to finish (bridges: {' '.join(bridges)})")
            told = True
        time.sleep(poll)


@contextmanager
def signals_unwind() -> Iterator[None]:
    """Ctrl-C and SIGTERM unwind as KeyboardInterrupt, so every ``finally`` cleanup runs.

    SIGINT is set explicitly: a process started in the background by a shell
    inherits SIGINT ignored, and then Ctrl-C (or ``kill -INT``) would do nothing.
    """

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass(frozen=True)
class Flow:
    """One flowgen flow: ``src`` and ``dst`` are (leaf, host index)."""

    src: tuple[int, int]
    dst: tuple[int, int]
    proto: str
    port: int
    sport: int
    rate_mbps: float = 0.0  # 0: as fast as TCP/the socket allows
    size: int = 1200
    tag: int = 0
    reset: bool = False  # TCP: end with a reset, so the 5-tuple can be used again at once
    nbytes: int = 0  # > 0: a transfer of this many bytes (ends early when done)

    @property
    def label(self) -> str:
        return f"l{self.src[0]}h{self.src[1]}->l{self.dst[0]}h{self.dst[1]}"


class Lab:
    """fabricd + a shaped leaf-spine + a client; a context manager that always cleans up."""

    def __init__(
        self,
        workdir: Path,
        *,
        spines: int,
        leaves: int,
        hosts_per_leaf: int,
        bw: float,
        host_bw: float | None,
        fabricd_flags: Sequence[str] = (),
        log: Log,
    ) -> None:
        # fabricd runs from the source tree, the host shells from here: one absolute path.
        self.workdir = workdir.resolve()
        self.spines, self.leaves, self.hosts_per_leaf = spines, leaves, hosts_per_leaf
        self.bw, self.host_bw = bw, host_bw
        self.flags = list(fabricd_flags)
        self.log = log
        self._stack = ExitStack()
        self.fd: Fabricd | None = None
        self.fab: Any = None
        self.client: FabricClient | None = None

    # ------------------------------------------------------------- lifecycle
    def __enter__(self) -> Lab:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        wait_for_free_ovs(self.log)
        self.fd = start_fabricd(
            self.workdir,
            "--link-capacity-mbps",
            f"{self.bw:g}",
            "--poll-interval",
            "0.5",
            *self.flags,
        )
        self._stack.callback(self._warn_on_exception, self.fd)  # runs after the stop below
        self._stack.callback(self.fd.stop)
        fab = LeafSpineFabric(  # type: ignore[no-untyped-call]
            self.spines,
            self.leaves,
            self.hosts_per_leaf,
            controller_port=self.fd.of_port,
            bw=self.bw,
            host_bw=self.host_bw,
            # tc's harmless "quantum is big" warnings would bury the progress lines;
            # real failures still surface as exceptions.
            log_level="critical",
        )
        # stop() is safe on a half-started fabric; register before start().
        self._stack.callback(fab.stop)
        self.fab = fab.start()  # type: ignore[no-untyped-call]
        wait_discovered(
            self.fd,
            switches=self.spines + self.leaves,
            links=2 * self.spines * self.leaves,
            timeout=40,
        )
        self.client = self._stack.enter_context(FabricClient(self.fd.grpc_target, timeout=10))
        time.sleep(1.0)  # forwarding for the discovered links settles
        self.learn_hosts()

    def _warn_on_exception(self, fd: Fabricd) -> None:
        if "Traceback" in fd.log():
            self.log(f"warning: fabricd logged an exception, see {fd.log_path}")

    def learn_hosts(self) -> None:
        """Every host talks once, so the controller knows where all of them are."""
        if self.hosts_per_leaf == 0 or self.leaves < 2:
            return
        for j in range(1, self.leaves + 1):
            for i in range(1, self.hosts_per_leaf + 1):
                peer = self.fab.ip(j % self.leaves + 1, 1)
                if self.fab.ping(self.fab.host(j, i), peer, count=2) < 1:
                    raise RuntimeError(f"l{j}h{i} cannot reach {peer} after discovery")

    @property
    def api(self) -> FabricClient:
        assert self.client is not None
        return self.client

    @property
    def daemon(self) -> Fabricd:
        assert self.fd is not None
        return self.fd

    # --------------------------------------------------------------- traffic
    def host(self, ref: tuple[int, int]) -> Any:
        return self.fab.host(*ref)

    def start_flows(
        self,
        flows: Sequence[Flow],
        *,
        duration: float,
        sink_extra: float = 3.0,
        together: bool = False,
        stagger: float = 0.0,
    ) -> dict[str, Any]:
        """Start one sink per (dst, proto, port), then every sender; a handle for :meth:`finish`.

        Sinks first, all of them, so that no sender waits for its sink and the
        flows of a job start together (a collective starts all its transfers at
        once). ``together``: the senders also wait for one common start time
        (starting each takes a shell round trip, tens of ms, which would otherwise
        stagger them); the handle's ``start_at`` says when. ``stagger`` (with
        ``together``): sender ``i`` starts ``i * stagger`` seconds after it, so
        their first packets come in the given order, close together.
        """
        if stagger and not together:
            raise ValueError("stagger needs together=True (a common start time to count from)")
        workdir = str(self.workdir)
        sinks: dict[tuple[tuple[int, int], str, int], Any] = {}
        for f in flows:
            key = (f.dst, f.proto, f.port)
            if key not in sinks:
                sinks[key] = self.fab.start_sink(
                    self.host(f.dst),
                    proto=f.proto,
                    port=f.port,
                    duration=duration + sink_extra,
                    workdir=workdir,
                )
        time.sleep(0.5)
        start_at = time.time() + 0.3 + SPAWN_S * len(flows) if together else 0.0
        senders = [
            self._sender(f, duration=duration, start_at=start_at + i * stagger if start_at else 0.0)
            for i, f in enumerate(flows)
        ]
        return {"flows": list(flows), "sinks": sinks, "senders": senders, "start_at": start_at}

    def _sender(self, f: Flow, *, duration: float, start_at: float) -> dict[str, Any]:
        name = f"l{f.src[0]}h{f.src[1]}-l{f.dst[0]}h{f.dst[1]}-{f.proto}-{f.port}-{f.sport}-{f.tag}"
        report = self.workdir / f"send-{name}.json"
        extra = " --reset" if f.reset else ""
        extra += f" --bytes {f.nbytes}" if f.nbytes else ""
        extra += f" --start-at {start_at:.3f}" if start_at else ""
        pid = self.fab.spawn(
            self.host(f.src),
            f"python3 {FLOWGEN} send --proto {f.proto} --dst {self.host(f.dst).IP()} "
            f"--port {f.port} --sport {f.sport} --rate {f.rate_mbps} --size {f.size} "
            f"--duration {duration} --tag {f.tag}{extra} --report {shlex.quote(str(report))}",
        )
        return {"pid": pid, "report": str(report)}

    def finish(self, handle: dict[str, Any], *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait for every end; per flow {"flow", "sent", "sink"} (a UDP sink may be shared)."""
        sent = [self.fab.finish(s, timeout) for s in handle["senders"]]
        got = {key: self.fab.finish(s, timeout) for key, s in handle["sinks"].items()}
        return [
            {"flow": f, "sent": s, "sink": got[(f.dst, f.proto, f.port)]}
            for f, s in zip(handle["flows"], sent, strict=True)
        ]

    def stop_handles(self, *handles: dict[str, Any]) -> None:
        """Kill a sender or sink started with the harness (and reap it)."""
        for h in handles:
            self.fab.kill(h["pid"])
            self.fab.wait_pid(h["pid"], 5)


def ring_order(leaves: int, hosts_per_leaf: int) -> list[tuple[int, int]]:
    """Hosts in ring order such that neighbours (the last and the first too) sit on other leaves.

    ``l1h1, l2h1, ..., lLh1, l1h2, ...``: every ring hop crosses the fabric, as a
    ring all-reduce placed across racks does.
    """
    return [(j, i) for i in range(1, hosts_per_leaf + 1) for j in range(1, leaves + 1)]


def hashed_sports(
    lab: Lab,
    src: tuple[int, int],
    dst: tuple[int, int],
    *,
    port: int,
    rng: Any,
    tries_per_spine: int = 8,
) -> dict[int, int]:
    """{spine: a TCP source port that the leaf's ECMP hash sends to that spine}, src -> dst:port.

    A default-policy flow goes where the switch's SELECT group hashes it, and
    Open vSwitch's default hash counts TCP ports (not UDP ones): short slow TCP
    probes (2 Mbit/s, 0.4 s) try random source ports and the source leaf's
    uplink counters tell which spine each took. The probes end with a reset,
    so the same 5-tuple can be used again at once. Needs an idle fabric.
    """
    fab = lab.fab
    leaf = f"leaf{src[0]}"
    uplinks = {k: fab.uplink_port(src[0], k) for k in range(1, lab.spines + 1)}
    found: dict[int, int] = {}
    for _ in range(tries_per_spine * lab.spines):
        sport = rng.randrange(20000, 30000)
        before = fab.port_counters(leaf)
        sink = fab.start_sink(
            lab.host(dst), proto="tcp", port=port, duration=3, workdir=str(lab.workdir)
        )
        sender = fab.spawn(
            lab.host(src),
            f"python3 {FLOWGEN} send --proto tcp --dst {lab.host(dst).IP()} --port {port} "
            f"--sport {sport} --rate 2 --size 1200 --duration 0.4 --reset",
        )
        fab.wait_pid(sender, 10)
        if not fab.wait_pid(sink["pid"], 3):
            lab.stop_handles(sink)
        after = fab.port_counters(leaf)
        sent = {k: after[p][1] - before[p][1] for k, p in uplinks.items()}
        spine = max(sent, key=lambda k: sent[k])
        # LLDP adds a few packets per port; the probe adds ~80 on one uplink.
        if sent[spine] >= 40 and sum(sent.values()) - sent[spine] < 20:
            found.setdefault(spine, sport)
        if len(found) == lab.spines:
            break
    return found


# ------------------------------------------------------------------ controller reads
def set_strategy(client: FabricClient, strategy: Strategy, *, policy: str = "ai-training") -> None:
    current = convert.policy_from_proto(client.get_policy(policy))
    if current.strategy != strategy:
        client.apply_policy(replace(current, strategy=strategy, version=0))


def placed_flows(
    client: FabricClient, flows: Sequence[Flow], *, timeout: float = 10.0
) -> list[Any]:
    """The controller's Flow message of each flowgen flow (in order), once all are placed."""
    wanted = {(f.sport, f.port): k for k, f in enumerate(flows)}

    def look() -> list[Any] | None:
        found: dict[int, Any] = {}
        for msg in client.list_flows():
            k = wanted.get((msg.five_tuple.src_port, msg.five_tuple.dst_port))
            if k is not None:
                found[k] = msg
        return [found[k] for k in range(len(flows))] if len(found) == len(flows) else None

    result = wait_until(look, timeout=timeout, what=f"{len(flows)} flow(s) placed")
    assert isinstance(result, list)
    return result


def spine_of(flow_msg: Any) -> str:
    return next((s for s in flow_msg.path if s.startswith("spine")), "")


def reroute_counts(fd: Fabricd) -> dict[str, float]:
    """fabric_reroutes_total by reason, now."""
    return {lab.get("reason", ""): v for lab, v in fd.samples("fabric_reroutes_total")}


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {
        k: int(v - before.get(k, 0.0)) for k, v in sorted(after.items()) if v > before.get(k, 0)
    }


def by_ports(messages: Sequence[Any], flows: Sequence[Flow]) -> dict[tuple[int, int], Any]:
    """The controller's Flow messages of ``flows``, by (source port, destination port)."""
    wanted = {(f.sport, f.port) for f in flows}
    out = {}
    for m in messages:
        key = (m.five_tuple.src_port, m.five_tuple.dst_port)
        if key in wanted:
            out[key] = m
    return out


def busiest_cable(paths: Sequence[Sequence[str]]) -> tuple[str, str]:
    """The (leaf, spine) cable that the most paths cross, in either direction."""
    count: dict[tuple[str, str], int] = {}
    for path in paths:
        for a, b in itertools.pairwise(path):
            leaf, spine = (a, b) if a.startswith("leaf") else (b, a)
            count[(leaf, spine)] = count.get((leaf, spine), 0) + 1
    if not count:
        raise RuntimeError("no AI flow crosses a leaf-spine link: nothing to fail")
    return max(sorted(count), key=lambda cable: count[cable])


def uses_cable(path: Sequence[str], leaf: str, spine: str) -> bool:
    hops = set(itertools.pairwise(path))
    return (leaf, spine) in hops or (spine, leaf) in hops
