"""fabricd is ready only once its own OpenFlow server listens.

The framework binds the OpenFlow port in a green thread that only logs a
failed bind; a port taken after fabricd's start-up probe would have left it
"ready" with no OpenFlow listener.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.app import daemon
from controller.app.config import ConfigError, HostPort
from controller.app.listening import listening_here
from controller.devtools.process import free_ports


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_listener_of_this_process_is_found_and_gone_when_closed() -> None:
    sock = _listener()
    port = sock.getsockname()[1]
    try:
        assert listening_here(port) is True
    finally:
        sock.close()
    assert listening_here(port) is False


def test_a_bound_socket_that_does_not_listen_is_not_a_listener() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        assert listening_here(sock.getsockname()[1]) is False
    finally:
        sock.close()


def test_another_process_listening_on_the_port_is_not_this_one() -> None:
    (port,) = free_ports(1)
    code = (
        "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
        "s.listen(); print('up', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        assert listening_here(port) is False
    finally:
        child.kill()
        child.wait(timeout=10)


def _fake_proc(tmp_path: Path, *, state: str, inode: str, port: int) -> Path:
    (tmp_path / "net").mkdir()
    (tmp_path / "self" / "fd").mkdir(parents=True)
    header = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
        "   uid  timeout inode\n"
    )
    row = (
        f"   0: 0100007F:{port:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 "
        f"00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )
    (tmp_path / "net" / "tcp").write_text(header + row)
    (tmp_path / "self" / "fd" / "7").symlink_to("socket:[4242]")
    return tmp_path


@pytest.mark.parametrize(
    "state, inode, port, expected",
    [
        ("0A", "4242", 6653, True),  # ours, listening on the port
        ("01", "4242", 6653, False),  # ours, but a connection, not a listener
        ("0A", "999", 6653, False),  # a listener, not ours
        ("0A", "4242", 6654, False),  # ours, another port
    ],
)
def test_the_tables_are_read_by_state_port_and_inode(
    tmp_path: Path, state: str, inode: str, port: int, expected: bool
) -> None:
    proc = _fake_proc(tmp_path, state=state, inode=inode, port=port)
    assert listening_here(6653, proc=proc) is expected


def test_no_tables_means_unknown(tmp_path: Path) -> None:
    assert listening_here(6653, proc=tmp_path) is None


class _Hub:
    def sleep(self, seconds: float) -> None:
        pass

    def spawn(self, fn: Any) -> None:
        fn()


class _South:
    hub = _Hub()


class _Api:
    port = 1

    def __init__(self, stop: daemon.StopSignal) -> None:
        self.stop = stop
        self.serving: list[bool] = []

    def set_serving(self, serving: bool) -> None:
        self.serving.append(serving)
        self.stop._handle(signal.SIGTERM, None)  # the test ends the run once ready


def _cfg(port: int) -> Any:
    class Cfg:
        of_listen = HostPort("127.0.0.1", port)
        grpc_listen = HostPort("127.0.0.1", 1)
        metrics_listen = HostPort("127.0.0.1", 2)
        cluster_etcd = ""
        state_dir = "state"
        southbound = "ryu"

    return Cfg()


def test_without_an_openflow_listener_fabricd_stops_with_one_line() -> None:
    (port,) = free_ports(1)
    stop = daemon.StopSignal()
    api = _Api(stop)
    try:
        with pytest.raises(ConfigError) as err:
            daemon._serve(_cfg(port), stop, api, 2, _South())
    finally:
        stop.close()
    message = str(err.value)
    assert f"cannot listen for OpenFlow on 127.0.0.1:{port}" in message
    assert "\n" not in message
    assert api.serving == []  # never said it was serving


def test_with_its_openflow_listener_fabricd_says_it_serves() -> None:
    sock = _listener()
    stop = daemon.StopSignal()
    api = _Api(stop)
    try:
        daemon._serve(_cfg(sock.getsockname()[1]), stop, api, 2, _South())
    finally:
        stop.close()
        sock.close()
    assert api.serving == [True]
