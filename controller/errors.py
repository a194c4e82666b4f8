"""Domain errors that cross layer boundaries.

The API layer maps each to one canonical gRPC status code; nothing below the
API knows about gRPC. Every error names what was wrong in a way a person can
act on (``field`` is a path such as ``match[0].dst_ports[1]``).
"""

from __future__ import annotations

__all__ = [
    "FabricError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "VersionConflict",
    "FailedPrecondition",
    "Unavailable",
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
        self.name = name
        self.expected = expected
        self.actual = actual
        self.kind = kind
        super().__init__(f"{kind} {name!r} is at version {actual}, not the expected {expected}")


class FailedPrecondition(FabricError):
    """The request is valid but the fabric's state does not allow it now."""


class Unavailable(FabricError):
    """The controller could not serve the request in time (e.g. the hub is busy)."""
