"""Mutation score per package, from the listing of ``mutmut results --all true``.

``make mutation`` pipes that listing (one ``<module>.<function>__mutmut_<n>:
<status>`` line per mutant) into this module, which prints how many mutants
the unit tests killed in each package of ``controller/`` and in total, and
exits 1 when the total is below ``--min`` percent or some mutant was never
checked. A mutant that made the tests time out or crash counts as killed (the
suite noticed it); one that no test reaches counts as survived. It reads only
its input: it runs no tests and knows nothing of how mutmut stores results.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Score", "tally", "render", "main"]

KILLED = frozenset({"killed", "timeout", "segfault", "caught by type check"})
NOT_COUNTED = frozenset({"skipped"})
UNCHECKED = frozenset({"not checked", "check was interrupted by user"})


@dataclass(frozen=True)
class Score:
    """Mutants of one package (or of all), by outcome."""

    killed: int = 0
    survived: int = 0  # survived, no tests, suspicious
    unchecked: int = 0

    @property
    def total(self) -> int:
        return self.killed + self.survived + self.unchecked

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0

    def add(self, status: str) -> Score:
        if status in KILLED:
            return Score(self.killed + 1, self.survived, self.unchecked)
        if status in UNCHECKED:
            return Score(self.killed, self.survived, self.unchecked + 1)
        return Score(self.killed, self.survived + 1, self.unchecked)


def tally(lines: Iterable[str]) -> dict[str, Score]:
    """Scores by package (``controller.<package>``), parsed from result lines.

    >>> tally(["  controller.te.bound.x_f__mutmut_1: killed"])["te"].killed
    1
    """
    scores: dict[str, Score] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        name, sep, status = line.rpartition(": ")
        parts = name.split(".")
        if not sep or "__mutmut_" not in name or len(parts) < 3 or parts[0] != "controller":
            raise ValueError(f"line {number}: not a mutmut result line: {line!r}")
        if status in NOT_COUNTED:
            continue
        package = parts[1]
        scores[package] = scores.get(package, Score()).add(status)
    return scores


def render(scores: dict[str, Score]) -> tuple[str, Score]:
    """A table of the packages and their total, and the total score."""
    total = Score(
        sum(s.killed for s in scores.values()),
        sum(s.survived for s in scores.values()),
        sum(s.unchecked for s in scores.values()),
    )
    rows = [*sorted(scores.items()), ("total", total)]
    out = [f"{'package':<12} {'killed':>7} {'mutants':>8} {'score':>7}"]
    for name, s in rows:
        out.append(f"{name:<12} {s.killed:>7} {s.total:>8} {s.percent:>6.1f}%")
    return "\n".join(out), total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mutation_score", description="Mutation score per package from mutmut results."
    )
    parser.add_argument("--min", type=float, default=0.0, help="fail below this total percent")
    args = parser.parse_args(argv)
    try:
        scores = tally(sys.stdin)
    except ValueError as exc:
        print(f"mutation_score: {exc}", file=sys.stderr)
        return 2
    if not scores:
        print("mutation_score: no mutants in the input (run `mutmut run` first)", file=sys.stderr)
        return 2
    table, total = render(scores)
    print(table)
    if total.unchecked:
        print(f"mutation_score: {total.unchecked} mutants not checked yet", file=sys.stderr)
        return 1
    if total.percent < args.min:
        print(f"mutation_score: {total.percent:.1f}% killed, below {args.min:g}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
