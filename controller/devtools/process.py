"""fabricd as a subprocess on free loopback ports, its metrics, and waiting for things.

Shared by the integration tests, the demo and the benchmarks. Whoever starts a
:class:`Fabricd` stops it (by pid) with :meth:`Fabricd.stop`, also on failure.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]  # the source tree (editable install)
FABRICD = [sys.executable, "-m", "controller.app.daemon"]


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int, *, kind: socket.SocketKind = socket.SOCK_STREAM) -> list[int]:
    """``count`` distinct free ports of 127.0.0.1: all held open while chosen (one
    port asked for twice in a row may come back twice)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, kind))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def wait_until(
    pred: Callable[[], object], *, timeout: float, interval: float = 0.2, what: str = ""
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or pred}")
        time.sleep(interval)


@dataclass
class Fabricd:
    """A running fabricd process."""

    proc: subprocess.Popen[bytes]
    of_port: int
    grpc_port: int
    metrics_port: int
    state_dir: Path
    log_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body: bytes = resp.read()
        return body.decode()

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """All samples of metric sample ``name`` as (labels, value)."""
        out = []
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                if sample.name == name:
                    out.append((dict(sample.labels), float(sample.value)))
        return out

    def value(self, name: str, **labels: str) -> float:
        return sum(
            v for lab, v in self.samples(name) if all(lab.get(k) == x for k, x in labels.items())
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return int(self.proc.returncode)

    def assert_clean_log(self) -> None:
        text = self.log()
        assert "Traceback" not in text, f"fabricd logged an exception:\n{text[-4000:]}"


def _listen_ports(of_port: int | None) -> tuple[int, int, int]:
    """OpenFlow (``of_port`` if given), gRPC and metrics ports, all different."""
    while True:
        chosen = free_ports(3)
        if of_port is None:
            return chosen[0], chosen[1], chosen[2]
        if of_port not in chosen[1:]:
            return of_port, chosen[1], chosen[2]


def start_fabricd(
    tmp: Path,
    *extra: str,
    of_port: int | None = None,
    state_dir: Path | None = None,
    name: str = "fabricd",
) -> Fabricd:
    of_port, grpc_port, metrics_port = _listen_ports(of_port)
    state_dir = state_dir or tmp / "state"
    log_path = tmp / f"{name}.log"
    args = [
        *FABRICD,
        "--of-listen",
        f"127.0.0.1:{of_port}",
        "--grpc-listen",
        f"127.0.0.1:{grpc_port}",
        "--metrics-listen",
        f"127.0.0.1:{metrics_port}",
        "--state-dir",
        str(state_dir),
        "--policies",
        str(REPO / "policies"),
        "--lldp-interval",
        "0.5",
        *extra,
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    fd = Fabricd(proc, of_port, grpc_port, metrics_port, state_dir, log_path, args)
    try:
        wait_until(
            lambda: "fabricd ready" in fd.log() or proc.poll() is not None,
            timeout=30,
            what="fabricd to log 'ready'",
        )
        if proc.poll() is not None:
            raise AssertionError(f"fabricd exited with {proc.returncode}:\n{fd.log()[-3000:]}")
    except BaseException:
        fd.stop()
        raise
    return fd


def wait_discovered(fd: Fabricd, *, switches: int, links: int, timeout: float = 30) -> None:
    """Until fabricd reports all switches connected and all directed links up."""

    def done() -> bool:
        up = sum(1 for _, v in fd.samples("fabric_link_up") if v == 1)
        return fd.value("fabric_switches_connected") == switches and up == links

    wait_until(done, timeout=timeout, what=f"{switches} switches and {links} links discovered")
