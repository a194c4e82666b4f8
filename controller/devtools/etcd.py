"""Real etcd for tests: one member or a 3-member cluster on free loopback ports.

Shared by the store and cluster tests, the integration tests and the
benchmarks. Whoever starts an :class:`EtcdMember` or :class:`EtcdCluster`
stops it with ``stop()`` (by pid; a finalizer, also on failure); data lives
in a directory the caller owns (a pytest ``tmp_path``). :class:`TcpProxy`
puts a cuttable link between one client and etcd, to isolate one controller
from etcd while the others still reach it. Nothing here is used by fabricd.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from controller.devtools.process import free_ports, wait_until

__all__ = [
    "EtcdMember",
    "EtcdCluster",
    "TcpProxy",
    "etcd_binary",
    "start_etcd",
    "start_etcd_cluster",
]


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if found is None:
        raise RuntimeError("etcd is not installed (Debian package etcd-server); run `make setup`")
    return found


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                return b'"true"' in resp.read()
        except OSError:
            return False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash (no graceful leave)."""
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)  # a paused member cannot handle SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _member(directory: Path, name: str, cluster: str | None, token: str) -> EtcdMember:
    client_port, peer_port = free_ports(2)
    data_dir = directory / f"{name}.etcd"
    member = EtcdMember(name, client_port, peer_port, data_dir, directory / f"{name}.log", [])
    member.args = [
        etcd_binary(),
        "--name", name,
        "--data-dir", str(data_dir),
        "--listen-client-urls", member.url,
        "--advertise-client-urls", member.url,
        "--listen-peer-urls", member.peer_url,
        "--initial-advertise-peer-urls", member.peer_url,
        "--initial-cluster", cluster or f"{name}={member.peer_url}",
        "--initial-cluster-token", token,
        "--initial-cluster-state", "new",
        "--log-level", "warn",
        "--logger", "zap",
    ]  # fmt: skip
    return member


@dataclass
class EtcdCluster:
    members: list[EtcdMember] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return [m.url for m in self.members]

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def leader(self) -> EtcdMember:
        """The member that is etcd's own Raft leader now."""
        for member in self.members:
            if not member.running():
                continue
            req = urllib.request.Request(
                f"{member.url}/v3/maintenance/status", data=b"{}", method="POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=1) as resp:
                    status = json.loads(resp.read())
            except OSError:
                continue
            if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                return member
        raise RuntimeError("no etcd member is leader")

    def wait_healthy(self, *, timeout: float = 30) -> None:
        live = [m for m in self.members if m.running()]
        wait_until(
            lambda: all(m.healthy() for m in live), timeout=timeout, what="etcd to be healthy"
        )


def start_etcd_cluster(directory: Path, *, size: int = 3, prefix: str = "etcd") -> EtcdCluster:
    """``size`` members on loopback, started and healthy (stopped again on failure)."""
    directory.mkdir(parents=True, exist_ok=True)
    token = f"{prefix}-{time.monotonic_ns()}"
    names = [f"{prefix}{i}" for i in range(size)]
    # Peer ports are fixed first: every member's --initial-cluster names them all.
    members = [_member(directory, name, None, token) for name in names]
    spec = ",".join(f"{m.name}={m.peer_url}" for m in members)
    members = [_rebind(m, spec) for m in members]
    cluster = EtcdCluster(members)
    try:
        for member in members:
            member.start()
        cluster.wait_healthy()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _rebind(member: EtcdMember, spec: str) -> EtcdMember:
    i = member.args.index("--initial-cluster")
    member.args[i + 1] = spec
    return member


def start_etcd(directory: Path, *, name: str = "etcd") -> EtcdMember:
    """One member on loopback, started and healthy."""
    return start_etcd_cluster(directory, size=1, prefix=name).members[0]


class TcpProxy:
    """A loopback TCP forwarder to ``target`` that tests can cut and restore.

    ``cut()`` makes the link a black hole, as a network partition does: open
    connections stay open but carry nothing, new ones are accepted and stall.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._cut.set()

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.05)
        while not self._closed.is_set():
            if self._cut.is_set():
                time.sleep(0.05)  # hold the bytes: a partition, not a reset
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
