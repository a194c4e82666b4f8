"""The controller's work counted in Python lines, not timed.

Time per flow depends on the machine's speed in the hour and on how much of the
heap its caches hold, so it grows with a larger fabric even where the work does
not. The lines the controller's own modules run (``sys.settrace`` line events;
the fake switches and the benchmark's own code left out) are the same on every
machine: equal counts per flow on a small and a large fabric show work that
does not depend on the fabric's size. What runs in C (dictionary lookups, the
compiled kernel choosing among the spines' columns) is not counted, nor are
the methods ``dataclasses`` generates (``__init__``, ``__eq__``: made by
``exec``, they belong to no file of the controller); :mod:`benchmarks.instructions`
counts all of it, as machine instructions under valgrind.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import controller

__all__ = ["Lines", "counting_lines"]

Lines = Counter[tuple[str, str]]  # (module under controller/, function) -> lines run

# The controller package's own files, wherever the project lies (a path that
# merely contains "controller" elsewhere, or a library's "controller" package,
# must not count).
_PACKAGE = str(Path(controller.__file__).parent) + "/"  # as code objects name it
_FAKES = _PACKAGE + "devtools/"


@contextmanager
def counting_lines(lines: Lines) -> Iterator[None]:
    """Add to ``lines`` the lines run in the controller's modules (not the fake
    switches') while inside. The tracer in place before (a coverage tool's) is put
    back on the way out. Tracing makes the code run several times slower: never
    inside a timed region."""

    def tracer(frame: FrameType, event: str, _arg: Any) -> Callable[..., Any] | None:
        code = frame.f_code
        name = code.co_filename
        if not name.startswith(_PACKAGE) or name.startswith(_FAKES):
            return None  # not traced inside (calls made from there are traced again)
        if event == "line":
            lines[(name[len(_PACKAGE) :], code.co_name)] += 1
        return tracer

    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(before)
