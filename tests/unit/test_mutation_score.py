"""The mutation score printed by ``make mutation`` (from mutmut's result listing)."""

from __future__ import annotations

import io
import sys

import pytest

from controller.devtools.mutation_score import Score, main, render, tally

LISTING = """\
    controller.te.bound.x_job__mutmut_1: killed
    controller.te.bound.x_job__mutmut_2: survived
    controller.te.engineer.xǁTrafficEngineerǁplace__mutmut_3: timeout
    controller.routing.paths.x_walk__mutmut_1: no tests
    controller.routing.paths.x_walk__mutmut_2: skipped
    controller.policy.book.x_f__mutmut_1: caught by type check
"""


def run(text: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    return main(list(args))


def test_scores_count_timeouts_as_killed_and_untested_as_survived() -> None:
    scores = tally(LISTING.splitlines())
    assert scores == {
        "te": Score(killed=2, survived=1),
        "routing": Score(killed=0, survived=1),
        "policy": Score(killed=1),
    }
    table, total = render(scores)
    assert (total.killed, total.total, round(total.percent, 1)) == (3, 5, 60.0)
    assert table.splitlines() == [
        "package       killed  mutants   score",
        "policy             1        1  100.0%",
        "routing            0        1    0.0%",
        "te                 2        3   66.7%",
        "total              3        5   60.0%",
    ]


def test_the_exit_code_says_whether_the_minimum_was_reached(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(LISTING, "--min", "60", monkeypatch=monkeypatch) == 0
    assert run(LISTING, "--min", "60.1", monkeypatch=monkeypatch) == 1
    assert "60.0% killed, below 60.1%" in capsys.readouterr().err
    unchecked = "controller.te.bound.x_f__mutmut_9: not checked\n"
    assert run(LISTING + unchecked, monkeypatch=monkeypatch) == 1
    assert "1 mutants not checked yet" in capsys.readouterr().err


def test_input_that_is_not_a_result_listing_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("", monkeypatch=monkeypatch) == 2
    assert "no mutants in the input" in capsys.readouterr().err
    assert run("Traceback (most recent call last):\n", monkeypatch=monkeypatch) == 2
    assert "line 1: not a mutmut result line" in capsys.readouterr().err
