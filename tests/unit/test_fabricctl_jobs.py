"""``fabricctl job ...`` against an in-process server: output, JSON, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apilab import ApiLab
from test_fabricctl import assert_one_error_line, run

from controller.api.server import ApiServer

JOB_YAML = """\
name: llama-allreduce
hosts: [10.0.0.1, 10.0.0.3, 10.0.0.2, 10.0.0.4]
pattern: ring
match: {ip_proto: udp, dst_ports: [4791]}
demand_mbps: 5000
"""


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "ring.yaml"
    path.write_text(JOB_YAML)
    return path


def test_job_lifecycle(
    capsys: pytest.CaptureFixture[str], server: ApiServer, api: ApiLab, job_file: Path
) -> None:
    code, out, err = run(capsys, server, "job", "apply", str(job_file), "--dry-run")
    assert (code, err) == (0, "")
    assert out.startswith("dry run: job llama-allreduce would be created; pairs placed: 4/4")
    assert "pairs placed: 4/4" in out and "nothing changed" in out
    assert api.jobs == {}

    code, out, _ = run(capsys, server, "job", "apply", str(job_file))
    assert code == 0 and "job llama-allreduce is created (version 1)" in out
    assert "peak link utilization 50%" in out  # 5 Gbit/s per flow, one flow per 10G link

    code, out, _ = run(capsys, server, "job", "get", "llama-allreduce")
    assert code == 0
    lines = out.splitlines()
    block = dict(line.split(":", 1) for line in lines[: lines.index("")])
    assert block["pattern"].strip() == "ring" and block["match"].strip() == "udp dport=4791"
    assert block["placed"].strip() == "4/4 pairs" and block["demand"].strip() == "5Gb/s"
    assert block["hosts"].strip() == "4: 10.0.0.1, 10.0.0.3, 10.0.0.2, 10.0.0.4"
    header = next(i for i, line in enumerate(lines) if line.startswith("SRC"))
    assert lines[header].split() == ["SRC", "DST", "PATH", "RATE", "DEMAND", "PLACED", "NOTE"]
    rows = [line.split() for line in lines[header + 1 :]]
    assert [r[:2] for r in rows] == [
        ["10.0.0.1", "10.0.0.3"],
        ["10.0.0.3", "10.0.0.2"],
        ["10.0.0.2", "10.0.0.4"],
        ["10.0.0.4", "10.0.0.1"],
    ]
    paths = [r[2] for r in rows]
    assert all(p.count(">") == 2 for p in paths)
    assert {p for p in paths if p.startswith("leaf1")} == {
        "leaf1>spine1>leaf2",
        "leaf1>spine2>leaf2",
    }
    assert all(r[4] == "5Gb/s" and r[5] == "yes" for r in rows)

    code, out, _ = run(capsys, server, "job", "list")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "NAME", "VERSION", "PATTERN", "HOSTS", "FLOWS", "PRIORITY", "DEMAND", "MATCH",
    ]  # fmt: skip
    assert out.splitlines()[1].split()[:7] == [
        "llama-allreduce", "1", "ring", "4", "4", "1000", "5Gb/s",
    ]  # fmt: skip

    code, out, _ = run(capsys, server, "--json", "job", "get", "llama-allreduce")
    doc = json.loads(out)
    assert doc["job"]["version"] == "1" and doc["job"]["pattern"] == "JOB_PATTERN_RING"
    assert len(doc["pairs"]) == 4 and doc["pairs"][0]["path"][0] == "leaf1"
    assert doc["pairs_total"] == 4

    code, _, err = run(
        capsys, server, "job", "delete", "llama-allreduce", "--expected-version", "5"
    )
    assert code == 1
    assert_one_error_line(err, "fabricctl: ABORTED: job 'llama-allreduce' is at version 1")
    code, out, _ = run(capsys, server, "job", "delete", "llama-allreduce")
    assert code == 0 and out == "job llama-allreduce deleted (was version 1)\n"
    code, _, err = run(capsys, server, "job", "get", "llama-allreduce")
    assert code == 1
    assert err == "fabricctl: NOT_FOUND: job 'llama-allreduce' not found\n"


def test_apply_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], server: ApiServer, tmp_path: Path, job_file: Path
) -> None:
    code, _, err = run(capsys, server, "job", "apply", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert_one_error_line(err, f"fabricctl: usage: {tmp_path / 'missing.yaml'}: no such file")

    bad = tmp_path / "bad.yaml"
    bad.write_text(JOB_YAML.replace("10.0.0.2,", "10.0.0.1,"))
    code, _, err = run(capsys, server, "job", "apply", str(bad))
    assert code == 1
    assert err == (
        f"fabricctl: INVALID_ARGUMENT: {bad}: hosts[2]: host 10.0.0.1 is listed twice "
        "(also hosts[0])\n"
    )

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(JOB_YAML.replace("10.0.0.4", "10.0.9.9"))
    code, _, err = run(capsys, server, "job", "apply", str(unknown))
    assert code == 1
    assert err == (
        "fabricctl: INVALID_ARGUMENT: job.hosts[3]: unknown host 10.0.9.9: "
        "the controller has not learned it\n"
    )

    assert run(capsys, server, "job", "apply", str(job_file), "--expected-version", "0")[0] == 0
    code, _, err = run(capsys, server, "job", "apply", str(job_file), "--expected-version", "0")
    assert code == 1
    assert err == "fabricctl: ALREADY_EXISTS: job 'llama-allreduce' already exists\n"
    code, _, err = run(capsys, server, "job", "apply", str(job_file), "--expected-version", "-1")
    assert code == 2 and err.startswith("fabricctl: usage: ")


def test_check_is_offline(
    capsys: pytest.CaptureFixture[str], job_file: Path, tmp_path: Path
) -> None:
    code, out, err = run(capsys, None, "--target", "127.0.0.1:1", "job", "check", str(job_file))
    assert (code, err) == (0, "")
    assert out == f"{job_file}: job llama-allreduce is valid (4 flows)\n"
    code, out, _ = run(capsys, None, "job", "check", str(job_file), "--json")
    assert json.loads(out)["demand_mbps"] == 5000
    bad = tmp_path / "bad.yaml"
    bad.write_text(JOB_YAML.replace("pattern: ring", "pattern: star"))
    code, _, err = run(capsys, None, "job", "check", str(bad))
    assert code == 1
    assert_one_error_line(
        err, f"fabricctl: INVALID_ARGUMENT: {bad}: pattern: unknown pattern 'star'"
    )


def test_unreachable_controller_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, None, "--target", "127.0.0.1:1", "--timeout", "0.5", "job", "list")
    assert code == 3 and err.startswith("fabricctl: UNAVAILABLE")
