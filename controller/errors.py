"""Domain errors that cross layer boundaries.

The API layer maps each to one canonical gRPC status code; nothing below the
API knows about gRPC. Every error names what was wrong in a way a person can
act on (``field`` is a path such as ``match[0].dst_ports[1]``).
"""

from __future__ import annotations

import reprlib

__all__ = [
    "excerpt",
    "key_text",
    "FabricError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "VersionConflict",
    "FailedPrecondition",
    "Unavailable",
    "DeadlineExceeded",
]


class FabricError(Exception):
    """Base of all domain errors."""


class InvalidArgument(FabricError, ValueError):
    """A request or document is malformed. ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class NotFound(FabricError, KeyError):
    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} not found")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class AlreadyExists(FabricError):
    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} already exists")


class VersionConflict(FabricError):
    """Compare-and-set failed: the stored version is not the one the caller expected."""

    def __init__(self, name: str, expected: int, actual: int, *, kind: str = "policy") -> None:
        self.kind = kind
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(f"{kind} {name!r} is at version {actual}, not the expected {expected}")


class FailedPrecondition(FabricError):
    """The request is valid but the fabric's state does not allow it now."""


class Unavailable(FabricError):
    """The controller could not serve the request in time (e.g. the hub is busy)."""


class DeadlineExceeded(FabricError):
    """The caller's deadline passed before the request was done; nothing was changed."""


# How much of an offending value a message quotes.
_EXCERPT_CHARS = 60


def excerpt(value: object, limit: int = _EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters at bounded cost, with the length.

    For messages that quote a value someone sent: a megabyte of it must not
    become a megabyte of error line.
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    if isinstance(value, int) and value.bit_length() > 4 * limit:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    shown = reprlib.Repr()
    shown.maxstring = shown.maxother = shown.maxlong = limit
    shown.maxlist = shown.maxtuple = shown.maxdict = shown.maxset = 6
    shown.maxlevel = 3
    try:
        return shown.repr(value)
    except ValueError:  # an integer inside a container too long to convert to text
        return f"a {type(value).__name__} too large to show"


def key_text(key: object, limit: int = _EXCERPT_CHARS) -> str:
    """A mapping key as part of a field path (``weights.<key>``), cut to ``limit`` characters."""
    text = key if isinstance(key, str) else excerpt(key)
    return text if len(text) <= limit else text[:limit] + "..."
