"""fabricctl against an in-process server: output, JSON, exit codes and one-line errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from apilab import ApiLab, roce_policy, running_server

from controller.api.cli import build_parser, main
from controller.api.server import ApiServer
from controller.devtools.process import free_port
from controller.engine.outputs import EventKind

FABRICCTL = Path(sys.executable).with_name("fabricctl")

POLICY_YAML = """\
name: ai-training
priority: 100
description: RoCEv2 and NCCL collectives
match:
  - ip_proto: udp
    dst_ports: [4791]
  - ip_proto: tcp
    dst_ports: ["29500-29599"]
strategy: least-utilized
params:
  congestion_threshold: 0.75
  clear_threshold: 0.5
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "ai.yaml"
    path.write_text(POLICY_YAML)
    return path


def run(
    capsys: pytest.CaptureFixture[str], server: ApiServer | None, *args: str
) -> tuple[int, str, str]:
    target = ["--target", server.address] if server else []
    code = main([*target, *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, prefix: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err


def placed_flow(api: ApiLab) -> int:
    """A RoCE flow placed by the real engine (10.0.0.1 -> 10.0.0.3, over spine1)."""
    api.real.apply_policy(roce_policy())
    return api.place_flow(api.hosts[0], api.hosts[2], sport=49152, dscp=26)


def test_links_table_and_json(
    capsys: pytest.CaptureFixture[str], server: ApiServer, api: ApiLab
) -> None:
    flow_id = placed_flow(api)
    api.set_rate(api.link("spine2", "leaf2"), 9e9)
    code, out, err = run(capsys, server, "links")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["LINK", "STATE", "DRAINED", "CAPACITY", "RATE", "UTIL", "CONGESTED"]
    assert len(lines) == 9
    row = next(line for line in lines if line.startswith("spine2/2->leaf2/2")).split()
    assert row[:4] == ["spine2/2->leaf2/2", "up", "no", "10Gb/s"] and row[-1] == "yes"
    assert row[4].endswith("Gb/s") and 80 < int(row[5].rstrip("%")) < 100
    # Columns line up: every cell of a column starts at the header's offset.
    offset = lines[0].index("UTIL")
    assert all(line[offset - 1] == " " and line[offset] != " " for line in lines)

    code, out, _ = run(capsys, server, "--json", "links")
    doc = json.loads(out)
    assert code == 0 and len(doc["links"]) == 8
    assert doc["links"][0]["name"] == "leaf1/1->spine1/1"
    assert doc["links"][0]["state"] == "LINK_STATE_UP"
    # --json also works after the sub-command.
    flows = json.loads(run(capsys, server, "flows", "--json")[1])["flows"]
    assert flows[0]["flow_id"] == str(flow_id)


def test_topology_and_flows(
    capsys: pytest.CaptureFixture[str], server: ApiServer, api: ApiLab
) -> None:
    placed_flow(api)
    api.real.drain_link("leaf1-spine1")  # moves the flow: its last move says why
    code, out, _ = run(capsys, server, "topology")
    assert code == 0
    dpid = f"{api.lab.dpid('leaf1'):016x}"
    assert dpid in out and "10.0.0.3" in out and "leaf1/1->spine1/1" in out
    code, out, _ = run(capsys, server, "flows", "--policy", "roce")
    assert code == 0
    assert "udp 10.0.0.1:49152 -> 10.0.0.3:4791" in out
    assert "leaf1>spine2>leaf2" in out and "drain" in out
    code, out, _ = run(capsys, server, "flows", "--policy", "other")
    assert code == 0 and len(out.splitlines()) == 1  # header only


def test_policy_lifecycle(
    capsys: pytest.CaptureFixture[str], server: ApiServer, api: ApiLab, policy_file: Path
) -> None:
    code, out, _ = run(capsys, server, "policy", "apply", str(policy_file), "--dry-run")
    assert code == 0 and out.startswith("dry run: policy ai-training would be created")
    assert api.policies == {}

    code, out, _ = run(capsys, server, "policy", "apply", str(policy_file))
    assert code == 0 and "policy ai-training is created (version 1)" in out
    assert api.policies["ai-training"].params.congestion_threshold == 0.75

    code, out, err = run(
        capsys, server, "policy", "apply", str(policy_file), "--expected-version", "0"
    )
    assert code == 1 and out == ""
    assert err == "fabricctl: ALREADY_EXISTS: policy 'ai-training' already exists\n"

    code, out, _ = run(capsys, server, "--json", "policy", "get", "ai-training")
    doc = json.loads(out)
    assert doc["version"] == "1" and doc["strategy"] == "STRATEGY_LEAST_UTILIZED"
    assert doc["match"][1]["dst_ports"] == [{"lo": 29500, "hi": 29599}]

    code, out, _ = run(capsys, server, "policy", "get", "ai-training")
    assert "match[0]:" in out and "proto=udp dport=4791" in out
    assert "congestion=0.75 clear=0.5" in out

    code, out, _ = run(capsys, server, "policy", "list")
    assert code == 0 and out.splitlines()[1].split()[:4] == [
        "ai-training",
        "1",
        "100",
        "least-utilized",
    ]

    code, _, err = run(capsys, server, "policy", "delete", "ai-training", "--expected-version", "7")
    assert code == 1
    assert_one_error_line(err, "fabricctl: ABORTED: policy 'ai-training' is at version 1")
    code, out, _ = run(capsys, server, "policy", "delete", "ai-training")
    assert code == 0 and "was version 1" in out
    code, _, err = run(capsys, server, "policy", "get", "ai-training")
    assert code == 1 and err == "fabricctl: NOT_FOUND: policy 'ai-training' not found\n"


def test_policy_check_is_offline(
    capsys: pytest.CaptureFixture[str], policy_file: Path, tmp_path: Path
) -> None:
    # No server at all: --target points nowhere and is never dialled.
    offline = ["--target", "127.0.0.1:1", "policy", "check", str(policy_file)]
    code, out, err = run(capsys, None, *offline)
    assert (code, err) == (0, "")
    assert out == f"{policy_file}: policy ai-training is valid\n"

    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY_YAML.replace("clear_threshold: 0.5", "clear_threshold: 0.9"))
    code, out, err = run(capsys, None, "policy", "check", str(bad))
    assert code == 1 and out == ""
    assert_one_error_line(err, f"fabricctl: INVALID_ARGUMENT: {bad}: params.clear_threshold")

    code, _, err = run(capsys, None, "policy", "check", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert_one_error_line(err, "fabricctl: usage: ")
    assert "missing.yaml" in err


def test_drain_undrain_and_explain(
    capsys: pytest.CaptureFixture[str], server: ApiServer, api: ApiLab
) -> None:
    flow_id = placed_flow(api)
    code, out, _ = run(capsys, server, "drain", "leaf1-spine1")
    assert code == 0
    assert out == "drained: leaf1/1->spine1/1, spine1/1->leaf1/1; flows moved: 1\n"
    code, out, _ = run(capsys, server, "drain", "leaf1-spine1")  # again: nothing left to move
    assert code == 0 and out.endswith("flows moved: 0\n")
    code, out, _ = run(capsys, server, "undrain", "leaf1-spine1")
    assert code == 0 and out.startswith("undrained: ")

    code, out, _ = run(
        capsys, server, "explain", "10.0.0.1", "10.0.0.3", "--proto", "udp",
        "--sport", "49152", "--dport", "4791", "--dscp", "26",
    )  # fmt: skip
    assert code == 0
    assert "policy:" in out and "roce" in out and "leaf1 > spine2 > leaf2" in out
    assert f"flow id:  {flow_id}" in out

    code, _, err = run(capsys, server, "explain", "10.0.1", "10.0.2.1")
    assert code == 1
    assert_one_error_line(err, "fabricctl: INVALID_ARGUMENT: five_tuple.src_ip: ")


def test_watch_count_and_kinds(
    capsys: pytest.CaptureFixture[str], server: ApiServer, api: ApiLab
) -> None:
    base = api.bus.last_seq  # the controller's own start-up events come first
    api.publish(EventKind.LINK_DOWN, "leaf1/3->spine1/1", reason="port-down")
    api.publish(EventKind.FLOW_REROUTED, "7", reason="failure", attributes={"to": "spine2"})
    api.publish(EventKind.LINK_UP, "leaf1/3->spine1/1")
    code, out, _ = run(capsys, server, "watch", "--count", str(base + 2))
    assert code == 0
    lines = out.splitlines()[-2:]
    assert lines[0].split()[1:] == [f"#{base + 1}", "link-down", "leaf1/3->spine1/1", "(port-down)"]
    assert lines[1].split()[1:] == [f"#{base + 2}", "flow-rerouted", "7", "(failure)", "to=spine2"]

    code, out, _ = run(capsys, server, "--json", "watch", "--kind", "link-up", "--count", "1")
    (line,) = out.splitlines()
    event = json.loads(line)
    # The first link-up replayed is the controller's own discovery, not ours.
    assert event["kind"] == "EVENT_KIND_LINK_UP" and int(event["seq"]) < base


def test_usage_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], server: ApiServer
) -> None:
    for args in (
        ["frobnicate"],
        [],
        ["explain", "10.0.1.1", "10.0.2.1", "--dport", "70000"],
        ["explain", "10.0.1.1", "10.0.2.1", "--proto", "sctp-ish"],
        ["watch", "--kind", "nope"],
        ["--timeout", "0", "links"],
        ["policy", "delete", "x", "--expected-version", "zero"],
    ):
        code, out, err = run(capsys, server, *args)
        assert code == 2, args
        assert out == ""
        assert_one_error_line(err, "fabricctl: usage: ")


def test_token_file_option(capsys: pytest.CaptureFixture[str], api: ApiLab, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    with running_server(api.facade, token_file=token) as srv:
        code, _, err = run(capsys, srv, "links")
        assert code == 1
        assert err == "fabricctl: UNAUTHENTICATED: missing or invalid bearer token\n"
        code, out, _ = run(capsys, srv, "--token-file", str(token), "links")
        assert code == 0 and "leaf1/1->spine1/1" in out
    code, _, err = run(capsys, None, "--token-file", str(tmp_path / "nope"), "links")
    assert code == 2 and "--token-file" in err


def test_installed_console_script_reports_unreachable_in_one_line() -> None:
    assert FABRICCTL.exists(), "install the project (pip install -e .) to get fabricctl"
    target = f"127.0.0.1:{free_port()}"  # nothing listens there
    proc = subprocess.run(
        [str(FABRICCTL), "--target", target, "--timeout", "3", "links"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, "fabricctl: UNAVAILABLE: ")


def test_status_of_a_single_controller(
    capsys: pytest.CaptureFixture[str], server: ApiServer
) -> None:
    code, out, _ = run(capsys, server, "status")
    assert code == 0 and out.startswith("mode:      single controller")
    code, out, _ = run(capsys, server, "--json", "status")
    assert json.loads(out)["mode"] == "CLUSTER_MODE_SINGLE"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the CLI (``policy apply``, ``job get``, ...)."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


def test_every_command_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = _commands(build_parser())
    assert ("job", "apply") in paths and ("status",) in paths
    for path in paths:
        try:
            code = main([*path, "--help"])
        except SystemExit as done:
            code = done.code  # type: ignore[assignment]
        assert code == 0, path
        out = capsys.readouterr().out
        assert out.startswith("usage: fabricctl") and "--target" in out, path
