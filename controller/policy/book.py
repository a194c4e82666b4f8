"""The active policy set, and which policy governs a given flow.

:class:`PolicyBook` is an immutable value: the hub builds a new one whenever a
policy is applied or deleted and publishes it by replacing a reference, so
any thread may read a book without locks. :meth:`PolicyBook.governing`
decides classification in the controller; it must agree exactly with the
OpenFlow matches that :mod:`controller.flowprog.classmatch` installs, which is
why both rest on the same field semantics written down in
:func:`flow_match_contains`. This module must not validate, store or apply
policies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from controller.errors import InvalidArgument
from controller.fabric.model import FiveTuple
from controller.policy.model import FlowMatch, Policy

__all__ = ["PolicyBook", "flow_match_contains"]

_Addr = ipaddress.IPv4Address


def _contains(m: FlowMatch, ft: FiveTuple, dscp: int) -> bool:
    if m.ip_proto is not None and m.ip_proto != ft.ip_proto:
        return False
    if m.src_ports and not any(ft.src_port in r for r in m.src_ports):
        return False
    if m.dst_ports and not any(ft.dst_port in r for r in m.dst_ports):
        return False
    if m.dscp and dscp not in m.dscp:
        return False
    # Addresses are parsed only for alternatives that name hosts.
    if m.src_hosts:
        src = _Addr(ft.src_ip)
        if not any(src in net for net in m.src_hosts):
            return False
    if m.dst_hosts:
        dst = _Addr(ft.dst_ip)
        return any(dst in net for net in m.dst_hosts)
    return True


def flow_match_contains(m: FlowMatch, ft: FiveTuple, dscp: int) -> bool:
    """Whether a packet of flow ``ft`` carrying ``dscp`` matches the alternative ``m``.

    Empty fields match anything; within a field any listed value may match.
    Ports are compared as the packet carries them (0 for protocols without
    ports), which is what a switch sees.
    """
    return _contains(m, ft, dscp)


_MEMO_MAX = 1 << 16  # answers remembered per book (cleared when full)


class PolicyBook:
    """An immutable set of policies with unique names, ordered by precedence.

    Precedence is priority (highest first), then name, so the order, and
    hence the governing policy, never depends on insertion order.
    """

    __slots__ = ("_by_name", "_memo", "_ordered", "_uses")

    def __init__(self, policies: Iterable[Policy] = ()) -> None:
        by_name: dict[str, Policy] = {}
        for p in policies:
            if p.name in by_name:
                raise InvalidArgument("name", f"policy {p.name!r} given twice")
            by_name[p.name] = p
        self._by_name = by_name
        self._ordered = tuple(sorted(by_name.values(), key=lambda p: (-p.priority, p.name)))
        # Which packet fields any alternative looks at: the answer of ``governing``
        # depends on those alone, so it is remembered by them (a new flow's source
        # port, say, is not part of the key unless some policy matches on it).
        alts = [m for p in self._ordered for m in p.match]
        self._uses = (
            any(m.src_ports for m in alts),
            any(m.dst_ports for m in alts),
            any(m.dscp for m in alts),
            any(m.src_hosts for m in alts),
            any(m.dst_hosts for m in alts),
        )
        self._memo: dict[tuple[object, ...], Policy | None] = {}

    def get(self, name: str) -> Policy | None:
        return self._by_name.get(name)

    def all(self) -> tuple[Policy, ...]:
        """Every policy, highest priority first, ties by name."""
        return self._ordered

    def names(self) -> frozenset[str]:
        return frozenset(self._by_name)

    def catch_all(self) -> Policy | None:
        """The highest-precedence policy that governs all traffic, if any."""
        return next((p for p in self._ordered if p.is_catch_all), None)

    def governing(self, ft: FiveTuple, *, dscp: int = 0) -> Policy | None:
        """The highest-precedence policy with an alternative that matches ``ft``."""
        src_ports, dst_ports, dscps, src_hosts, dst_hosts = self._uses
        key = (
            ft.ip_proto,
            ft.src_port if src_ports else None,
            ft.dst_port if dst_ports else None,
            dscp if dscps else None,
            ft.src_ip if src_hosts else None,
            ft.dst_ip if dst_hosts else None,
        )
        memo = self._memo
        if key in memo:
            return memo[key]
        found = next(
            (p for p in self._ordered if any(_contains(m, ft, dscp) for m in p.match)), None
        )
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[key] = found
        return found

    def with_policy(self, policy: Policy) -> PolicyBook:
        """A book where ``policy`` is added, or replaces the policy of the same name."""
        return PolicyBook([*(p for p in self._ordered if p.name != policy.name), policy])

    def without(self, name: str) -> PolicyBook:
        """A book without the policy ``name`` (the same contents if there is none)."""
        if name not in self._by_name:
            return self
        return PolicyBook(p for p in self._ordered if p.name != name)

    def __len__(self) -> int:
        return len(self._ordered)

    def __iter__(self) -> Iterator[Policy]:
        return iter(self._ordered)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolicyBook):
            return NotImplemented
        return self._by_name == other._by_name

    def __hash__(self) -> int:
        return hash(self._ordered)

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.name}@{p.priority}" for p in self._ordered)
        return f"PolicyBook([{inner}])"
