"""fabricd as a real process: bad input is one line on stderr, SIGTERM is a clean exit.

No switches and no Mininet: these check the daemon's edges (flags, config
files, addresses already taken, shutdown). Every process started here is
stopped by its pid in a ``finally`` block.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.devtools.process import FABRICD, REPO, free_ports, wait_until

TIMEOUT_S = 20


def fabricd_args(tmp_path: Path, **listen: int) -> list[str]:
    of, grpc, metrics = free_ports(3)
    ports = {"of": of, "grpc": grpc, "metrics": metrics, **listen}
    return [
        *FABRICD,
        "--of-listen",
        f"127.0.0.1:{ports['of']}",
        "--grpc-listen",
        f"127.0.0.1:{ports['grpc']}",
        "--metrics-listen",
        f"127.0.0.1:{ports['metrics']}",
        "--state-dir",
        str(tmp_path / "state"),
        "--policies",
        str(REPO / "policies"),
    ]


def run_fabricd(args: list[str]) -> subprocess.CompletedProcess[str]:
    # subprocess.run kills the child itself if the timeout expires.
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert stderr.endswith("\n")
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port bound (and listening) by this test, so fabricd cannot have it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.timeout(TIMEOUT_S + 5)
def test_unknown_flag_is_one_line_naming_it(tmp_path: Path) -> None:
    res = run_fabricd([*fabricd_args(tmp_path), "--lldp-intervall", "1"])
    assert res.returncode != 0
    line = one_line(res.stderr)
    assert line.startswith("fabricd: error: ") and "--lldp-intervall" in line


@pytest.mark.timeout(TIMEOUT_S + 5)
def test_unreadable_config_file_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "fabricd.yaml"
    res = run_fabricd([*fabricd_args(tmp_path), "--config", str(missing)])
    assert res.returncode != 0
    line = one_line(res.stderr)
    assert f"--config {missing}" in line and "cannot read" in line


@pytest.mark.timeout(TIMEOUT_S + 5)
def test_invalid_yaml_config_is_one_line_with_its_line_number(tmp_path: Path) -> None:
    config = tmp_path / "fabricd.yaml"
    config.write_text("seed: 3\nlldp_interval: [1,\n  2\npoll_interval: : 1\n")
    res = run_fabricd([*fabricd_args(tmp_path), "--config", str(config)])
    assert res.returncode != 0
    line = one_line(res.stderr)
    assert f"--config {config}: line " in line


@pytest.mark.timeout(TIMEOUT_S + 5)
@pytest.mark.parametrize("which", ["of", "grpc", "metrics"])
def test_an_address_in_use_is_one_line_naming_it(
    tmp_path: Path, taken_port: int, which: str
) -> None:
    res = run_fabricd(fabricd_args(tmp_path, **{which: taken_port}))
    assert res.returncode != 0
    line = one_line(res.stderr)
    assert f"127.0.0.1:{taken_port}" in line, line
    assert "in use" in line


@pytest.mark.timeout(TIMEOUT_S + 5)
def test_one_port_for_two_listeners_is_one_line_naming_both(tmp_path: Path) -> None:
    # Each listener's own check passes (the port is free); without the pair's check
    # gRPC took it and the OpenFlow side only logged its bind error, then "ready".
    (port,) = free_ports(1)
    res = run_fabricd(fabricd_args(tmp_path, of=port, grpc=port))
    assert res.returncode != 0
    line = one_line(res.stderr)
    assert line == (
        f"fabricd: error: --grpc-listen: 127.0.0.1:{port} is also --of-listen "
        f"(127.0.0.1:{port}): give each its own port"
    )


@pytest.mark.timeout(TIMEOUT_S + 5)
def test_sigterm_stops_a_running_fabricd_cleanly(tmp_path: Path) -> None:
    log_path = tmp_path / "fabricd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            fabricd_args(tmp_path), cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: "fabricd ready" in log_path.read_text() or proc.poll() is not None,
            timeout=TIMEOUT_S - 5,
            what="fabricd to log 'ready'",
        )
        assert proc.poll() is None, f"fabricd exited early:\n{log_path.read_text()}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    text = log_path.read_text()
    assert "fabricd ready" in text
    assert "Traceback" not in text, text[-3000:]
    assert (tmp_path / "state").is_dir()
