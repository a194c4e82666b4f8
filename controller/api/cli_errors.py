"""The errors fabricctl's commands raise to end with one line and an exit status."""

from __future__ import annotations

__all__ = ["UsageError", "CommandFailed"]


class UsageError(Exception):
    """The command line is wrong; exit 2."""


class CommandFailed(Exception):
    """A local (non-RPC) failure with a status word for the one-line message."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
