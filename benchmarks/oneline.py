"""The benchmarks' command lines: a bad option is one line on stderr, exit 2.

Kept apart from :mod:`benchmarks.lab` (which the Mininet benchmarks share and
which imports the emulator's harness and the API client) so that the pure
benchmarks need nothing more than argparse for it.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["OneLineParser"]


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as exactly one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")
