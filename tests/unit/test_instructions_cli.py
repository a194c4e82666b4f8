"""The instruction counter's command line: its bad input, its parse of valgrind's
summary, and the program it runs under valgrind (run here without it: valgrind
makes it ~50 times slower, which belongs in a benchmark, not in the suite)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks.instructions import instructions_of, parse_size

SUMMARY = """==4242== Cachegrind, a cache and branch-prediction profiler
==4242== Command: python -m benchmarks.instructions --child 4x16
==4242==
==4242== I   refs:      8,237,857,584
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["proto", "."])}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def test_the_instruction_count_is_read_from_valgrinds_summary() -> None:
    assert instructions_of(SUMMARY) == 8_237_857_584
    with pytest.raises(ValueError, match="I refs"):
        instructions_of("==1== Command: python\n")


def test_sizes_are_spines_by_leaves() -> None:
    assert parse_size("16x64") == (16, 64)
    assert parse_size(" 4x16 ") == (4, 16)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--sizes", "16by64"), "is not SPINESxLEAVES"),
        (("--sizes", "4x16,1x16"), "at least 2 spines and 4 leaves"),
        (("--sizes", "4x3"), "at least 2 spines and 4 leaves"),
        (("--counted", "0"), "--warm and --counted must be at least 1"),
        (("--warm", "lots"), "invalid int value"),
        (("--child", "2x2"), "at least 2 spines and 4 leaves"),
    ],
)
def test_bad_options_end_the_run_with_one_line(args: tuple[str, ...], says: str) -> None:
    done = _run(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr


def test_the_counted_program_sets_up_its_flows() -> None:
    # What valgrind runs twice per size: with --setups 0 and with all counted flows.
    done = _run("--child", "2x8", "--warm", "20", "--counted", "30", "--setups", "30")
    assert done.returncode == 0, done.stderr
