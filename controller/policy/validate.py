"""The rules a policy must satisfy before it may be stored or applied.

:func:`validate_policy` checks a :class:`Policy` value however it was built
(from a YAML file, a gRPC request or code) and raises
:class:`InvalidArgument` for the first rule broken, naming the field with a
path such as ``match[1].dst_ports[0]`` or ``weights.spine3``. Checks that
need the fabric (do the named switches exist, are they linked) run only when
a :class:`FabricNames` view is passed. This module must not parse documents,
touch the store or change anything: it only says yes or why not.
"""

from __future__ import annotations

import math
import re
from typing import NoReturn, Protocol

from controller.errors import InvalidArgument, excerpt, key_text
from controller.policy.limits import (
    MAX_DESCRIPTION_CHARS,
    MAX_LIST_ENTRIES,
    MAX_NAME_CHARS,
    MAX_PINNED_HOPS,
    MAX_VERSION,
    check_policy_rules,
)
from controller.policy.model import (
    PER_DESTINATION_STRATEGIES,
    FlowMatch,
    IPNet,
    Policy,
    PolicyParams,
    PortRange,
    Strategy,
)
from controller.policy.overlap import MAX_MATCH_TERMS, PORT_MAX, match_term_count

__all__ = [
    "FabricNames",
    "NAME_RE",
    "MAX_LIST_ENTRIES",
    "MAX_PINNED_HOPS",
    "MAX_NAME_CHARS",
    "MAX_VERSION",
    "NotInFabric",
    "validate_policy",
    "validate_flow_match",
]

# \Z, not $: "$" also matches before a trailing newline, letting "ai\n" pass.
NAME_RE = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?\Z")
# A switch reference: a bridge name such as `spine2`, or a 16-hex-digit dpid.
_SWITCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
_TCP, _UDP = 6, 17


class FabricNames(Protocol):
    """What validation needs to know about the fabric.

    ``name`` is a switch reference as a policy writes it: a switch name or a
    16-hex-digit dpid; implementations accept both.
    """

    def has_switch(self, name: str) -> bool: ...

    def linked(self, a: str, b: str) -> bool:
        """Whether traffic can go from switch ``a`` to switch ``b`` over one link."""
        ...


class NotInFabric(InvalidArgument):
    """The policy names a switch, or a link between two, that the fabric as known does
    not hold: final once discovery is done, possibly not yet while it runs."""


def _fail(field: str, reason: str) -> NoReturn:
    raise InvalidArgument(field, reason)


def _absent(field: str, reason: str) -> NoReturn:
    raise NotInFabric(field, reason)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_count(items: tuple[object, ...], field: str, limit: int = MAX_LIST_ENTRIES) -> None:
    if len(items) > limit:
        _fail(field, f"{len(items)} entries; at most {limit} are allowed")


def _check_repeats(items: tuple[object, ...], field: str, what: str) -> None:
    first: dict[object, int] = {}
    for i, item in enumerate(items):
        if item in first:
            _fail(f"{field}[{i}]", f"{what} {item} repeats {field}[{first[item]}]")
        first[item] = i


def _check_ports(m: FlowMatch, prefix: str) -> None:
    for key, ranges in (("src_ports", m.src_ports), ("dst_ports", m.dst_ports)):
        field = f"{prefix}.{key}"
        _check_count(ranges, field)
        for j, r in enumerate(ranges):
            if not isinstance(r, PortRange) or not (_is_int(r.lo) and _is_int(r.hi)):
                _fail(f"{field}[{j}]", f"must be a port range of integers, got {excerpt(r)}")
            for port in (r.lo, r.hi):
                if not 0 <= port <= PORT_MAX:
                    _fail(f"{field}[{j}]", f"port {excerpt(port)} outside 0-{PORT_MAX}")
            if r.lo > r.hi:
                _fail(f"{field}[{j}]", f"range {r.lo}-{r.hi} is reversed; write {r.hi}-{r.lo}")
        _check_repeats(ranges, field, "port range")
        # OpenFlow only matches L4 ports once ip_proto says which header they are in.
        if ranges and m.ip_proto not in (_TCP, _UDP):
            proto = "not set" if m.ip_proto is None else f"{m.ip_proto}"
            _fail(field, f"ports need ip_proto tcp or udp in the same alternative (it is {proto})")


def _check_match(m: FlowMatch, prefix: str) -> None:
    if not isinstance(m, FlowMatch):
        _fail(prefix, f"must be a FlowMatch, got {type(m).__name__}")
    if m.ip_proto is not None and (not _is_int(m.ip_proto) or not 0 <= m.ip_proto <= 255):
        _fail(f"{prefix}.ip_proto", f"protocol {excerpt(m.ip_proto)} outside 0-255")
    _check_ports(m, prefix)
    _check_count(m.dscp, f"{prefix}.dscp")
    for j, value in enumerate(m.dscp):
        if not _is_int(value) or not 0 <= value <= 63:
            _fail(f"{prefix}.dscp[{j}]", f"DSCP {excerpt(value)} outside 0-63")
    _check_repeats(m.dscp, f"{prefix}.dscp", "DSCP")
    for key, nets in (("src_hosts", m.src_hosts), ("dst_hosts", m.dst_hosts)):
        field = f"{prefix}.{key}"
        _check_count(nets, field)
        for j, net in enumerate(nets):
            if not isinstance(net, IPNet):
                _fail(f"{field}[{j}]", f"must be an IPv4 prefix, got {excerpt(net)}")
        _check_repeats(nets, field, "prefix")
    terms = match_term_count(m)
    if terms > MAX_MATCH_TERMS:
        _fail(
            prefix,
            f"needs {terms} flow entries per switch (more than {MAX_MATCH_TERMS}); "
            "use fewer or wider port ranges and prefixes, or split it into alternatives",
        )


def _check_params(params: PolicyParams) -> None:
    if not isinstance(params, PolicyParams):
        _fail("params", f"must be PolicyParams, got {type(params).__name__}")
    for key in ("congestion_threshold", "clear_threshold", "rebalance_period_s"):
        value = getattr(params, key)
        if not _is_number(value) or not math.isfinite(value):
            _fail(f"params.{key}", f"must be a finite number, got {excerpt(value)}")
    value = params.min_move_interval_s
    if not _is_number(value) or not math.isfinite(value):
        _fail("params.min_move_interval_s", f"must be a finite number, got {excerpt(value)}")
    cong, clear = params.congestion_threshold, params.clear_threshold
    if not 0 < cong <= 1.0:
        _fail("params.congestion_threshold", f"{cong} outside (0, 1] (a utilization ratio)")
    if clear <= 0:
        _fail("params.clear_threshold", f"{clear} must be above 0")
    if clear >= cong:
        # Hysteresis: a link must cool below a lower mark than the one that
        # declared it congested, or flows would flap across the threshold.
        _fail(
            "params.clear_threshold",
            f"{clear} must be below congestion_threshold {cong} so congestion cannot flap",
        )
    if not 0.1 <= params.rebalance_period_s <= 3600:
        _fail("params.rebalance_period_s", f"{params.rebalance_period_s} outside 0.1-3600 s")
    if not 0 <= params.min_move_interval_s <= 3600:
        _fail("params.min_move_interval_s", f"{params.min_move_interval_s} outside 0-3600 s")
    idle = params.idle_timeout_s
    if not _is_int(idle):
        _fail("params.idle_timeout_s", f"must be an integer number of seconds, got {excerpt(idle)}")
    if not 1 <= idle <= 3600:
        _fail("params.idle_timeout_s", f"{excerpt(idle)} outside 1-3600 s")


def _check_switch_ref(ref: object, field: str) -> None:
    if not isinstance(ref, str) or not _SWITCH_RE.match(ref):
        _fail(field, f"{excerpt(ref)} is not a switch name or 16-hex-digit dpid")


def _check_weights(p: Policy) -> None:
    if p.weights and p.strategy is not Strategy.WEIGHTED:
        _fail("weights", f"only used by strategy weighted (strategy is {p.strategy.value})")
    if p.strategy is not Strategy.WEIGHTED:
        return
    if not p.weights:
        _fail("weights", "strategy weighted needs at least one switch weight")
    _check_count(p.weights, "weights")
    seen: set[str] = set()
    for name, weight in p.weights:
        field = f"weights.{key_text(name)}"
        _check_switch_ref(name, field)
        if name in seen:
            _fail(field, "switch given twice")
        seen.add(name)
        if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
            _fail(field, f"weight must be a finite number >= 0, got {excerpt(weight)}")
    if all(weight == 0 for _, weight in p.weights):
        _fail("weights", "all weights are 0; at least one must be positive")


def _check_pinned(p: Policy) -> None:
    if p.pinned_path and p.strategy is not Strategy.PINNED:
        _fail("pinned_path", f"only used by strategy pinned (strategy is {p.strategy.value})")
    if not isinstance(p.fallback, Strategy):
        _fail("fallback", f"must be a Strategy, got {excerpt(p.fallback)}")
    if p.fallback is Strategy.PINNED:
        _fail("fallback", "must not be pinned: it is what runs when the pinned path cannot")
    if p.strategy is not Strategy.PINNED:
        if p.fallback is not Strategy.LEAST_UTILIZED:
            _fail("fallback", f"only used by strategy pinned (strategy is {p.strategy.value})")
        return
    if not 1 <= len(p.pinned_path) <= MAX_PINNED_HOPS:
        _fail(
            "pinned_path",
            f"strategy pinned needs a path of 1-{MAX_PINNED_HOPS} switches, "
            f"got {len(p.pinned_path)}",
        )
    first: dict[str, int] = {}
    for i, ref in enumerate(p.pinned_path):
        _check_switch_ref(ref, f"pinned_path[{i}]")
        if ref in first:
            _fail(
                f"pinned_path[{i}]",
                f"switch {ref} repeats pinned_path[{first[ref]}]; a path must not loop",
            )
        first[ref] = i


def _check_against_fabric(p: Policy, fabric: FabricNames) -> None:
    for name, _ in p.weights:
        if not fabric.has_switch(name):
            _absent(f"weights.{key_text(name)}", f"unknown switch {excerpt(name)}")
    for i, ref in enumerate(p.pinned_path):
        if not fabric.has_switch(ref):
            _absent(f"pinned_path[{i}]", f"unknown switch {excerpt(ref)}")
    for i in range(1, len(p.pinned_path)):
        a, b = p.pinned_path[i - 1], p.pinned_path[i]
        if not fabric.linked(a, b):
            _absent(f"pinned_path[{i}]", f"no link from {a} (pinned_path[{i - 1}]) to {b}")


def validate_policy(p: Policy, *, fabric: FabricNames | None = None) -> None:
    """Raise :class:`InvalidArgument` naming the first field of ``p`` that breaks a rule.

    With ``fabric``, also check that every switch the policy names exists and
    that consecutive pinned-path switches are linked.
    """
    if isinstance(p.name, str) and len(p.name) > MAX_NAME_CHARS:
        _fail("name", f"must be at most {MAX_NAME_CHARS} characters, got {len(p.name)}")
    if not isinstance(p.name, str) or not NAME_RE.match(p.name):
        _fail(
            "name",
            f"{excerpt(p.name)} is not a valid policy name: 1-63 lower-case letters, digits, "
            "'.', '_' or '-', starting and ending with a letter or digit",
        )
    if not _is_int(p.priority) or not 0 <= p.priority <= 0xFFFF:
        _fail("priority", f"{excerpt(p.priority)} outside 0-65535")
    if not isinstance(p.description, str):
        _fail("description", f"must be a string, got {type(p.description).__name__}")
    if len(p.description) > MAX_DESCRIPTION_CHARS:
        _fail(
            "description",
            f"must be at most {MAX_DESCRIPTION_CHARS} characters, got {len(p.description)}",
        )
    if not _is_int(p.version) or not 0 <= p.version <= MAX_VERSION:
        _fail("version", f"must be an integer 0..{MAX_VERSION}, got {excerpt(p.version)}")
    if not p.match:
        _fail("match", "needs at least one alternative (an empty mapping matches all traffic)")
    _check_count(p.match, "match")
    for i, m in enumerate(p.match):
        _check_match(m, f"match[{i}]")
    check_policy_rules(p)
    if not isinstance(p.strategy, Strategy):
        _fail("strategy", f"must be a Strategy, got {excerpt(p.strategy)}")
    if p.is_catch_all and p.strategy not in PER_DESTINATION_STRATEGIES:
        allowed = ", ".join(sorted(s.value for s in PER_DESTINATION_STRATEGIES))
        _fail(
            "strategy",
            f"a catch-all policy (a match alternative that is empty) is forwarded per "
            f"destination, so it can use only {allowed}; got {p.strategy.value}",
        )
    _check_weights(p)
    _check_pinned(p)
    _check_params(p.params)
    if fabric is not None:
        _check_against_fabric(p, fabric)


def validate_flow_match(m: FlowMatch, *, field: str) -> None:
    """Raise :class:`InvalidArgument` for the first rule one match alternative breaks.

    Fields are named under ``field`` (``match.dst_ports[0]``); other documents
    that carry a match (jobs) check it with exactly the policy rules.
    """
    _check_match(m, field)
