"""fabricctl against hostile content: terminal escapes, huge values, closed pipes, many pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from apilab import ApiLab, weighted_policy
from fabric.v1 import fabric_pb2 as pb

from controller.api.cli import EXIT_BROKEN_PIPE, main
from controller.api.server import ApiServer
from controller.engine.outputs import EventKind
from controller.engine.views import FlowView
from controller.fabric.model import FiveTuple
from controller.policy.model import FlowMatch, Policy

REPO = Path(__file__).resolve().parents[2]
PROTO = Path(pb.__file__).resolve().parents[2]
# Retitle the window, clear the screen, an 8-bit CSI, a right-to-left override, a api line.
HOSTILE = "ok\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\nname:        forged"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e")


def run(capsys: pytest.CaptureFixture[str], server: ApiServer, *args: str) -> tuple[int, str, str]:
    code = main(["--target", server.address, *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_inert(text: str) -> None:
    assert not any(c in text for c in RAW_CONTROLS), repr(text)


def test_escapes_in_fields_never_reach_the_terminal(
    capsys: pytest.CaptureFixture[str], server: ApiServer, api: ApiLab
) -> None:
    stored = api.real.apply_policy(replace(weighted_policy(), description=HOSTILE)).policy
    code, out, _ = run(capsys, server, "policy", "get", stored.name)
    assert code == 0
    assert_inert(out)
    assert "description: ok\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil\\x0aname:" in out
    assert sum(line.startswith("name:") for line in out.splitlines()) == 1  # no forged line

    # JSON stays valid and means the same text, with the dangerous characters escaped.
    code, out, _ = run(capsys, server, "--json", "policy", "get", stored.name)
    assert_inert(out)
    assert json.loads(out)["description"] == HOSTILE

    api.publish(EventKind.POLICY_APPLIED, "x\x1b[2J", reason="r\u202e", attributes={"k": "\x07"})
    code, out, _ = run(capsys, server, "watch", "--count", str(api.bus.last_seq))
    assert code == 0
    assert_inert(out)
    assert "x\\x1b[2J (r\\u202e) k=\\x07" in out.splitlines()[-1]

    # A server is not trusted either: a flow row whose fields carry escapes.
    flow = FlowView(
        flow_id=1,
        five_tuple=FiveTuple("10.0.0.1", "10.0.0.3", 17, 1, 4791),
        dscp=0,
        policy=HOSTILE,
        strategy="ecmp",
        path=("leaf1",),
        path_links=(),
        rate_bps=0.0,
        placed_at=0.0,
        moves=1,
        last_move_reason="\x1bc",
        last_move_at=0.0,
        fell_back=False,
    )
    api.publisher.views = replace(api.publisher.views, flows=(flow,))
    code, out, _ = run(capsys, server, "flows")
    assert_inert(out)
    assert len(out.splitlines()) == 2  # header and one row: the newline is escaped


def test_escapes_in_error_messages_are_escaped_and_lines_bounded(
    capsys: pytest.CaptureFixture[str], server: ApiServer, tmp_path: Path
) -> None:
    # A file name from an untrusted archive, echoed in the error line.
    code, out, err = run(capsys, server, "policy", "check", str(tmp_path / "\x1b]0;pwned\x07.yaml"))
    assert code == 2 and out == ""
    assert_inert(err)
    assert "\\x1b]0;pwned\\x07.yaml: no such file" in err
    deep = tmp_path / ("d" * 200) / ("e" * 200) / ("f" * 200) / "missing.yaml"
    code, out, err = run(capsys, server, "policy", "check", str(deep))
    assert code == 2 and len(err.splitlines()) == 1
    assert len(err) <= 520 and err.rstrip().endswith("characters)")


def test_policy_list_pages_through_transparently(
    capsys: pytest.CaptureFixture[str], server: ApiServer, api: ApiLab
) -> None:
    for i in range(7):
        api.real.apply_policy(Policy(name=f"p{i:02d}", priority=i, match=(FlowMatch(dscp=(i,)),)))
    code, out, _ = run(capsys, server, "policy", "list", "--page-size", "2")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == [f"p{i:02d}" for i in range(7)]
    code, out, _ = run(capsys, server, "--json", "policy", "list", "--page-size", "3")
    assert [p["name"] for p in json.loads(out)["policies"]] == [f"p{i:02d}" for i in range(7)]


@pytest.mark.parametrize(
    "command",
    [["policy", "check", "--json"], ["policy", "apply", "--dry-run"], ["policy", "check"]],
)
def test_out_of_range_version_is_one_precise_line_everywhere(
    capsys: pytest.CaptureFixture[str], server: ApiServer, tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("name: v\npriority: 1\nversion: 9223372036854775808\n")
    code, out, err = run(capsys, server, *command, str(path))
    assert (code, out) == (1, "")
    assert err == (
        f"fabricctl: INVALID_ARGUMENT: {path}: version: must be 0..9223372036854775807, "
        "got 9223372036854775808\n"
    )


# --------------------------------------------------------------------------- closed pipes


def fabricctl_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run fabricctl with a stdout whose reader is already gone (``| head -1`` finished)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(PROTO)])}
    try:
        return subprocess.run(
            [sys.executable, "-m", "controller.api.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write_end)


def test_a_closed_pipe_ends_quietly(server: ApiServer, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("name: p\npriority: 1\n")
    for args in (
        ["--target", server.address, "topology"],
        ["--target", server.address, "--json", "links"],
        ["policy", "check", str(policy)],
    ):
        proc = fabricctl_into_closed_pipe(*args)
        assert (proc.returncode, proc.stderr) == (EXIT_BROKEN_PIPE, ""), args
