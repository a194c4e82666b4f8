"""The per-step breakdown of a new flow's time (``benchmarks.setup_steps``): every
step is met as often as a new flow meets it, steps nest, and the engine's classes
are left as they were."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from benchmarks import setup_steps


def _originals() -> dict[tuple[str, str, str], object]:
    out = {}
    for _, module, cls, attr in setup_steps.STEPS:
        owner = importlib.import_module(module)
        if cls:
            owner = getattr(owner, cls)
        out[(module, cls, attr)] = vars(owner).get(attr)
    return out


def test_every_step_is_timed_once_per_flow_and_put_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _originals()
    out = tmp_path / "steps.json"
    assert (
        setup_steps.main(["--spines", "2", "--leaves", "4", "--flows", "40", "--json", str(out)])
        == 0
    )
    assert _originals() == before  # patched for the run only (inherited ones too)
    result = json.loads(out.read_text())
    assert result["flows"] == result["placed"] == 40
    steps = {s["step"].strip(): s for s in result["steps"]}
    assert len(steps) == len(setup_steps.STEPS)
    for name in (
        "engine packet-in",
        "frame parsed",
        "placement",
        "column chosen",
        "rules compiled",
    ):
        assert steps[name]["calls_per_flow"] == 1.0, name
    # A 2-tier path: default forwarding is asked about the spine and the egress leaf.
    assert steps["default forwarding asked"]["calls_per_flow"] == 2.0
    assert all(s["us_per_flow"] > 0 for s in steps.values())
    for outer, inner in (
        ("engine packet-in", "flow placer packet-in"),
        ("flow placer packet-in", "placement"),
        ("placement", "column chosen"),
        ("rules installed", "rules compiled"),
        ("rules compiled", "next hops"),
    ):
        assert steps[inner]["us_per_flow"] <= steps[outer]["us_per_flow"], (outer, inner)
    table = capsys.readouterr().out
    for row in ("| engine packet-in |", "| · · placement |", "| · · · column chosen |"):
        assert row in table, row  # a step's depth shows under the step that calls it


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--flows", "0"], "--flows must be in 1..1000000, got 0"),
        (["--leaves", "1"], "--leaves must be in 2..8192, got 1"),
        (
            ["--json", "/nonexistent-dir/x.json"],
            "--json: directory /nonexistent-dir does not exist",
        ),
    ],
)
def test_bad_options_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        setup_steps.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
