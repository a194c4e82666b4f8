"""deploy/slurm prolog/epilog with a fake ``scontrol`` and a recording ``fabricctl`` on PATH.

The fakes are tiny shell scripts: ``scontrol show hostnames LIST`` prints the
nodes the test chose (one per line, as Slurm does) and refuses anything else;
``getent ahostsv4 NODE`` answers from a table; ``fabricctl`` records its
arguments and a copy of the job file, then exits with the status and message
the test set. The job documents the prolog writes are parsed with the
project's own job parser, so a document the controller would refuse fails
here too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from controller.jobs.model import Pattern
from controller.jobs.parse import job_from_yaml
from controller.policy.model import PortRange

SLURM = Path(__file__).resolve().parents[2] / "deploy" / "slurm"
PROLOG = SLURM / "fabric-job-prolog.sh"
EPILOG = SLURM / "fabric-job-epilog.sh"

SCONTROL = """#!/bin/sh
if [ "$1 $2" != "show hostnames" ] || [ "$3" != "$EXPECT_NODELIST" ]; then
    echo "scontrol: unexpected arguments: $*" >&2; exit 1
fi
printf '%s\\n' $FAKE_NODES
"""
GETENT = """#!/bin/sh
[ "$1" = ahostsv4 ] || exit 2
case "$2" in
    gpu-a) echo "10.1.0.11   STREAM gpu-a" ;;
    gpu-b) echo "10.1.0.12   STREAM gpu-b" ;;
    *) exit 2 ;;
esac
"""
FABRICCTL = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/args"
printf '%s\\n' "${FABRICCTL_TARGET:-}" >> "$RECORD/target"
if [ "$1 $2" = "job apply" ]; then cp "$3" "$RECORD/job.yaml"; fi
if [ -n "${FAKE_FABRICCTL_ERROR:-}" ]; then echo "$FAKE_FABRICCTL_ERROR" >&2; exit 1; fi
echo "job ok"
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("scontrol", SCONTROL), ("getent", GETENT), ("fabricctl", FABRICCTL)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    record = tmp_path / "record"
    record.mkdir()
    hosts = tmp_path / "hosts"
    hosts.write_text("# node  address\nnode1 10.0.1.1\nnode2 10.0.2.1\nnode3 10.0.3.1\n")
    work = tmp_path / "tmp"
    work.mkdir()
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "RECORD": str(record),
        "TMPDIR": str(work),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "node[1-3]",
        "EXPECT_NODELIST": "node[1-3]",
        "FAKE_NODES": "node1 node2 node3",
        "FABRIC_HOSTS_FILE": str(hosts),
        "FABRIC_SLURM_DEFAULTS": str(tmp_path / "no-defaults.conf"),
    }


def run(script: Path, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def calls(env: dict[str, str]) -> list[str]:
    path = Path(env["RECORD"]) / "args"
    return path.read_text().splitlines() if path.exists() else []


def declared(env: dict[str, str]) -> str:
    return (Path(env["RECORD"]) / "job.yaml").read_text()


# --------------------------------------------------------------------------- prolog


def test_prolog_declares_the_nodes_in_rank_order(env: dict[str, str]) -> None:
    done = run(PROLOG, env, FABRIC_TARGET="10.9.9.9:50051")
    assert done.returncode == 0, done.stderr
    (call,) = calls(env)
    verb, action, file = call.split()
    assert (verb, action) == ("job", "apply")
    assert not Path(file).exists(), "the job file is removed after the call"
    assert Path(file).parent == Path(env["TMPDIR"])
    text = declared(env)
    assert text == (
        "name: slurm-4242\n"
        'description: "slurm job 4242"\n'
        "hosts: [10.0.1.1, 10.0.2.1, 10.0.3.1]\n"
        "pattern: ring\n"
        "match: {ip_proto: udp, dst_ports: [4791]}\n"
    )
    job = job_from_yaml(text)
    assert job.hosts == ("10.0.1.1", "10.0.2.1", "10.0.3.1") and job.pattern is Pattern.RING
    assert job.match.dst_ports == (PortRange(4791, 4791),) and job.demand_mbps is None
    assert (Path(env["RECORD"]) / "target").read_text() == "10.9.9.9:50051\n"
    assert "job slurm-4242 declared: job ok" in done.stderr


def test_defaults_file_and_environment_override(env: dict[str, str], tmp_path: Path) -> None:
    defaults = tmp_path / "defaults.conf"
    defaults.write_text(
        "# site defaults\n"
        "FABRIC_JOB_PATTERN=all-to-all\n"
        "FABRIC_JOB_PROTO=tcp\n"
        "FABRIC_JOB_PORTS=29500-29599,30000   # NCCL\n"
        "FABRIC_JOB_DEMAND_MBPS=20\n"
        "FABRIC_JOB_PRIORITY=500\n"
    )
    done = run(PROLOG, env, FABRIC_SLURM_DEFAULTS=str(defaults), FABRIC_JOB_DEMAND_MBPS="12.5")
    assert done.returncode == 0, done.stderr
    job = job_from_yaml(declared(env))
    assert job.pattern is Pattern.ALL_TO_ALL and job.match.ip_proto == 6
    assert job.match.dst_ports == (PortRange(29500, 29599), PortRange(30000, 30000))
    assert job.demand_mbps == 12.5  # the environment wins over the file
    assert job.priority == 500 and job.pair_count == 6


def test_dns_resolution_when_no_hosts_file(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "FABRIC_HOSTS_FILE"}
    done = run(PROLOG, env, FAKE_NODES="gpu-a gpu-b", SLURM_JOB_NODELIST="gpu-[a-b]",
               EXPECT_NODELIST="gpu-[a-b]")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert job_from_yaml(declared(env)).hosts == ("10.1.0.11", "10.1.0.12")


def test_single_node_job_is_not_declared(env: dict[str, str]) -> None:
    done = run(PROLOG, env, FAKE_NODES="node1", SLURM_JOB_NODELIST="node1", EXPECT_NODELIST="node1")
    assert done.returncode == 0
    assert calls(env) == [] and "fewer than 2: nothing to declare" in done.stderr


@pytest.mark.parametrize("strict", ["0", "1"])
def test_unknown_node_fails_open_unless_strict(env: dict[str, str], strict: str) -> None:
    done = run(PROLOG, env, FAKE_NODES="node1 node9", FABRIC_STRICT=strict)
    assert done.returncode == (1 if strict == "1" else 0)
    assert "job slurm-4242: no IPv4 address for node node9" in done.stderr
    assert calls(env) == []


@pytest.mark.parametrize("strict", ["0", "1"])
def test_controller_refusal_fails_open_unless_strict(env: dict[str, str], strict: str) -> None:
    error = "fabricctl: INVALID_ARGUMENT: job.hosts[2]: unknown host 10.0.3.1"
    done = run(PROLOG, env, FAKE_FABRICCTL_ERROR=error, FABRIC_STRICT=strict)
    assert done.returncode == (1 if strict == "1" else 0)
    assert f"fabricctl job apply failed (exit 1): {error}" in done.stderr
    assert len(calls(env)) == 1


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("FABRIC_JOB_PATTERN", "star", "must be ring or all-to-all"),
        ("FABRIC_JOB_PORTS", "4791;rm -rf", "must be ports or lo-hi ranges"),
        ("FABRIC_JOB_PROTO", "sctp", "must be tcp, udp or a protocol number"),
        ("FABRIC_JOB_DEMAND_MBPS", "fast", "must be a number"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(
    env: dict[str, str], setting: str, value: str, words: str
) -> None:
    done = run(PROLOG, env, **{setting: value, "FABRIC_STRICT": "1"})
    assert done.returncode == 1 and words in done.stderr
    assert calls(env) == []


def test_unknown_setting_in_defaults_file(env: dict[str, str], tmp_path: Path) -> None:
    defaults = tmp_path / "defaults.conf"
    defaults.write_text("FABRIC_JOB_PATERN=ring\n")
    done = run(PROLOG, env, FABRIC_SLURM_DEFAULTS=str(defaults), FABRIC_STRICT="1")
    assert done.returncode == 1
    assert "unknown setting 'FABRIC_JOB_PATERN'" in done.stderr


def test_scontrol_failure_and_missing_job_id(env: dict[str, str]) -> None:
    done = run(PROLOG, env, EXPECT_NODELIST="other", FABRIC_STRICT="1")
    assert done.returncode == 1 and "scontrol cannot expand node list 'node[1-3]'" in done.stderr
    no_id = {k: v for k, v in env.items() if k != "SLURM_JOB_ID"}
    done = run(PROLOG, no_id)
    assert done.returncode == 2 and "SLURM_JOB_ID is not set" in done.stderr
    done = run(PROLOG, env, SLURM_JOB_ID="12; reboot")
    assert done.returncode == 2 and calls(env) == []


# --------------------------------------------------------------------------- epilog


def test_epilog_deletes_the_job(env: dict[str, str]) -> None:
    done = run(EPILOG, env)
    assert done.returncode == 0, done.stderr
    assert calls(env) == ["job delete slurm-4242"]


def test_epilog_treats_an_undeclared_job_as_done(env: dict[str, str]) -> None:
    done = run(EPILOG, env, FAKE_FABRICCTL_ERROR="fabricctl: NOT_FOUND: job 'slurm-4242' not found",
               FABRIC_STRICT="1")  # fmt: skip
    assert done.returncode == 0
    assert "was not declared: nothing to delete" in done.stderr


@pytest.mark.parametrize("strict", ["0", "1"])
def test_epilog_failure_fails_open_unless_strict(env: dict[str, str], strict: str) -> None:
    error = "fabricctl: UNAVAILABLE: failed to connect to all addresses"
    done = run(EPILOG, env, FAKE_FABRICCTL_ERROR=error, FABRIC_STRICT=strict)
    assert done.returncode == (1 if strict == "1" else 0)
    assert f"fabricctl job delete failed (exit 1): {error}" in done.stderr


def test_scripts_are_executable() -> None:
    for script in (PROLOG, EPILOG):
        assert os.access(script, os.X_OK), script
