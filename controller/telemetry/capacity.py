"""Link capacities in bits per second: configured overrides, a default, or the port speed.

Operators name cables the way they name them everywhere else in the
controller: ``"A-B"`` (every cable between switches A and B) or
``"A/p-B/q"`` (one cable), where A and B are switch names or 16-hex-digit
dpids. This module parses those references and decides, for one directed
link, which capacity applies. It validates syntax and values only: at start
the fabric is unknown, so whether a reference names a real cable can only be
checked later (:meth:`CapacityConfig.unmatched`). It never reads the
topology itself; switch names come in through a callable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from controller.errors import InvalidArgument
from controller.fabric.model import OFPP_MAX, Dpid, LinkId, PortRef, dpid_str

__all__ = ["CapacityConfig", "LinkEnd", "LinkOverride", "LinkRef", "parse_link_ref"]

_DPID_RE = re.compile(r"[0-9a-fA-F]{16}")
# A switch name: no whitespace and no "/" (which separates the port).
_SWITCH_RE = re.compile(r"[^\s/]+")


@dataclass(frozen=True)
class LinkEnd:
    """One end of a cable reference: a switch (name or dpid) and maybe a port."""

    switch: str
    port: int | None = None

    def matches(self, ref: PortRef, names: Callable[[Dpid], str]) -> bool:
        if self.switch not in (names(ref.dpid), dpid_str(ref.dpid)):
            return False
        return self.port is None or self.port == ref.port

    def __str__(self) -> str:
        return self.switch if self.port is None else f"{self.switch}/{self.port}"


@dataclass(frozen=True)
class LinkRef:
    """A reference to one cable or to all cables between two switches.

    It names cables, not directions: it matches a :class:`LinkId` either way.
    """

    a: LinkEnd
    b: LinkEnd

    @property
    def one_cable(self) -> bool:
        return self.a.port is not None

    def matches(self, link: LinkId, names: Callable[[Dpid], str]) -> bool:
        fwd = self.a.matches(link.src, names) and self.b.matches(link.dst, names)
        rev = self.a.matches(link.dst, names) and self.b.matches(link.src, names)
        return fwd or rev

    def __str__(self) -> str:
        return f"{self.a}-{self.b}"


def _parse_end(text: str) -> LinkEnd | None:
    """One side of a reference, or None if it is not well formed."""
    switch, slash, port_text = text.partition("/")
    if not _SWITCH_RE.fullmatch(switch):
        return None
    if _DPID_RE.fullmatch(switch):
        switch = switch.lower()
    if not slash:
        return LinkEnd(switch)
    if not port_text.isascii() or not port_text.isdigit():
        return None
    port = int(port_text)
    if not 0 < port < OFPP_MAX:
        return None
    return LinkEnd(switch, port)


def parse_link_ref(text: str, *, field: str = "link") -> LinkRef:
    """Parse ``"A-B"`` or ``"A/p-B/q"``; raise InvalidArgument naming ``field``.

    Switch names may contain ``-``; a reference is accepted only if exactly one
    split into two well-formed ends exists (``"leaf-1/3-spine-1/1"`` is fine,
    ``"leaf-1-spine-1"`` is ambiguous and rejected).

    >>> str(parse_link_ref("leaf1/3-spine1/1"))
    'leaf1/3-spine1/1'
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(field, "empty link reference; expected 'A-B' or 'A/p-B/q'")
    text = text.strip()
    splits: list[LinkRef] = []
    for i, ch in enumerate(text):
        if ch != "-":
            continue
        a, b = _parse_end(text[:i]), _parse_end(text[i + 1 :])
        if a is not None and b is not None:
            splits.append(LinkRef(a, b))
    if not splits:
        raise InvalidArgument(
            field,
            f"{text!r} is not a link reference: expected 'A-B' or 'A/p-B/q' with switch "
            f"names or 16-hex-digit dpids and port numbers 1..{OFPP_MAX - 1}",
        )
    if len(splits) > 1:
        raise InvalidArgument(
            field,
            f"{text!r} is ambiguous: switch names contain '-'; name the cable by "
            "ports ('A/p-B/q') or use dpids",
        )
    ref = splits[0]
    if (ref.a.port is None) != (ref.b.port is None):
        raise InvalidArgument(
            field, f"{text!r} gives a port on one end only; use 'A-B' or 'A/p-B/q'"
        )
    if ref.a.switch == ref.b.switch:
        raise InvalidArgument(field, f"{text!r} joins switch {ref.a.switch!r} to itself")
    return ref


@dataclass(frozen=True)
class LinkOverride:
    """A configured capacity for the cables a reference names, both directions."""

    ref: LinkRef
    capacity_bps: float
    text: str = ""  # the reference as configured, for messages to the operator


def _positive_mbps(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(field, f"must be a number of Mbit/s, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgument(field, f"must be a positive finite number of Mbit/s, got {value!r}")
    return float(value) * 1e6


@dataclass(frozen=True)
class CapacityConfig:
    """Where link capacities come from, in order: an override matching the
    cable, ``default_bps``, the port's reported speed, else 0 (unknown)."""

    default_bps: float | None = None
    overrides: tuple[LinkOverride, ...] = ()

    @classmethod
    def from_config(
        cls,
        default_mbps: float | None,
        overrides: Mapping[str, float],
        *,
        default_field: str = "link_capacity_mbps",
        overrides_field: str = "link_capacity_overrides",
    ) -> CapacityConfig:
        """Build from configuration values in Mbit/s, rejecting bad ones with
        InvalidArgument whose field is ``default_field`` or
        ``"<overrides_field>.<ref>"``."""
        default_bps = None if default_mbps is None else _positive_mbps(default_mbps, default_field)
        parsed: list[LinkOverride] = []
        for text, mbps in overrides.items():
            field = f"{overrides_field}.{text}"
            ref = parse_link_ref(text, field=field)
            parsed.append(LinkOverride(ref, _positive_mbps(mbps, field), text=text))
        return cls(default_bps=default_bps, overrides=tuple(parsed))

    def override_for(self, link: LinkId, *, names: Callable[[Dpid], str]) -> LinkOverride | None:
        """The override that governs ``link``: a one-cable reference beats a
        switch-pair one; among equals the first configured wins."""
        pair: LinkOverride | None = None
        for ov in self.overrides:
            if not ov.ref.matches(link, names):
                continue
            if ov.ref.one_cable:
                return ov
            pair = pair or ov
        return pair

    def capacity_for(
        self, link: LinkId, *, names: Callable[[Dpid], str], port_speed_bps: float
    ) -> float:
        """Capacity of directed ``link`` in bit/s; 0 means unknown."""
        ov = self.override_for(link, names=names)
        return self.unless_overridden(port_speed_bps) if ov is None else ov.capacity_bps

    def unless_overridden(self, port_speed_bps: float) -> float:
        """Capacity of a link no override governs: the default, else the port's
        reported speed, else 0 (unknown)."""
        if self.default_bps is not None:
            return self.default_bps
        if math.isfinite(port_speed_bps) and port_speed_bps > 0:
            return port_speed_bps
        return 0.0

    def unmatched(self, links: Iterable[LinkId], names: Callable[[Dpid], str]) -> list[str]:
        """The overrides (as configured text) that match none of ``links``."""
        links = list(links)
        return [
            ov.text or str(ov.ref)
            for ov in self.overrides
            if not any(ov.ref.matches(lid, names) for lid in links)
        ]
