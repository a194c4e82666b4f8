"""Policy documents (YAML/JSON mappings) to :class:`Policy` values and back.

This module checks the *shape* of a document - known keys, value types,
protocol names, address syntax - and reports the first problem as
:class:`InvalidArgument` with a field path such as ``match[1].dst_ports[0]``;
the semantic rules (ranges, thresholds, strategy combinations) live in
:mod:`controller.policy.validate`, which :func:`policy_from_dict` applies
unless asked not to. It also loads policy files and directories. It must not
know about the store, the fabric or the API; it never guesses at what a
malformed document meant.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from controller.errors import InvalidArgument, excerpt, key_text
from controller.policy.limits import MAX_VERSION, check_rule_budget
from controller.policy.model import FlowMatch, Policy, PolicyParams, PortRange, Strategy
from controller.policy.overlap import PORT_MAX, check_conflicts
from controller.policy.shapes import (
    as_int,
    as_list,
    as_mapping,
    as_number,
    as_str,
    check_keys,
    type_name,
)
from controller.policy.validate import validate_policy
from controller.safeyaml import YamlError, load_yaml, read_yaml_text

__all__ = [
    "PolicyFileError",
    "policy_from_dict",
    "policy_to_dict",
    "load_policy_file",
    "load_policy_dir",
    "policy_from_yaml",
    "MAX_POLICY_BYTES",
    "load_yaml_document",
    "read_document_file",
    "parse_flow_match",
    "flow_match_to_dict",
]

_TOP_KEYS = (
    "name",
    "version",
    "priority",
    "description",
    "match",
    "strategy",
    "weights",
    "pinned_path",
    "fallback",
    "params",
)
_MATCH_KEYS = ("ip_proto", "src_ports", "dst_ports", "dscp", "src_hosts", "dst_hosts")
_PARAM_KEYS = (
    "congestion_threshold",
    "clear_threshold",
    "rebalance_period_s",
    "min_move_interval_s",
    "idle_timeout_s",
)
_PROTO_BY_NAME = {"tcp": 6, "udp": 17}
_NAME_BY_PROTO = {v: k for k, v in _PROTO_BY_NAME.items()}
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_T = TypeVar("_T")
# The largest policy the limits allow is well under 100 KiB of YAML.
MAX_POLICY_BYTES = 256 * 1024


class PolicyFileError(InvalidArgument):
    """An invalid policy file; the message starts with the file's name.

    ``field`` stays the path inside the document (empty for errors about the
    file as a whole), so callers can still tell which field was wrong.
    """

    def __init__(self, file: str, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.file = file
        self.args = (f"{file}: {field}: {reason}" if field else f"{file}: {reason}",)


# --------------------------------------------------------------------------- helpers


def _fail(field: str, reason: str) -> NoReturn:
    raise InvalidArgument(field, reason)


def _as_strategy(value: object, field: str) -> Strategy:
    text = as_str(value, field)
    try:
        return Strategy.parse(text)
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from None


# --------------------------------------------------------------------------- match


def _parse_proto(value: object, field: str) -> int:
    if isinstance(value, str):
        proto = _PROTO_BY_NAME.get(value.strip().lower())
        if proto is None:
            _fail(field, f"unknown protocol {excerpt(value)}; use tcp, udp or a number 0-255")
        return proto
    return as_int(value, field)


def _parse_port_range(value: object, field: str) -> PortRange:
    if isinstance(value, str):
        found = _RANGE_RE.match(value)
        if not found:
            _fail(field, f'{excerpt(value)} is not a port range; write "lo-hi", e.g. "29500-29599"')
        lo, hi = found.group(1), found.group(2)
        for port in (lo, hi):
            if len(port) > 5:  # also keeps int() away from thousands of digits
                _fail(field, f"port {excerpt(port)} outside 0-{PORT_MAX}")
        return PortRange(int(lo), int(hi))
    if isinstance(value, Mapping):
        check_keys(value, ("lo", "hi"), f"{field}.")
        for key in ("lo", "hi"):
            if key not in value:
                _fail(f"{field}.{key}", "required")
        return PortRange(as_int(value["lo"], f"{field}.lo"), as_int(value["hi"], f"{field}.hi"))
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(field, f'expected a port number, "lo-hi" or {{lo, hi}}, got {type_name(value)}')
    return PortRange(value, value)


def _parse_host(value: object, field: str) -> ipaddress.IPv4Network:
    text = as_str(value, field)
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            _fail(
                field, f"{excerpt(text)} has host bits set; write the network address of the prefix"
            )
        _fail(field, f"{excerpt(text)} is not an IPv4 address or prefix")
    if not isinstance(net, ipaddress.IPv4Network):
        _fail(field, f"{excerpt(text)} is IPv6; only IPv4 is supported")
    return net


def _parse_list(
    doc: Mapping[Any, object], key: str, prefix: str, item: Callable[[object, str], _T]
) -> tuple[_T, ...]:
    if key not in doc or doc[key] is None:
        return ()
    field = f"{prefix}{key}"
    return tuple(item(v, f"{field}[{i}]") for i, v in enumerate(as_list(doc[key], field)))


def _parse_match(value: object, field: str) -> FlowMatch:
    doc = as_mapping(value, field)
    check_keys(doc, _MATCH_KEYS, f"{field}.")
    proto = doc.get("ip_proto")
    return FlowMatch(
        ip_proto=None if proto is None else _parse_proto(proto, f"{field}.ip_proto"),
        src_ports=_parse_list(doc, "src_ports", f"{field}.", _parse_port_range),
        dst_ports=_parse_list(doc, "dst_ports", f"{field}.", _parse_port_range),
        dscp=_parse_list(doc, "dscp", f"{field}.", as_int),
        src_hosts=_parse_list(doc, "src_hosts", f"{field}.", _parse_host),
        dst_hosts=_parse_list(doc, "dst_hosts", f"{field}.", _parse_host),
    )


def _parse_alternatives(value: object) -> tuple[tuple[FlowMatch, ...], bool]:
    """The match alternatives, and whether the document wrote a single mapping."""
    if value is None:
        return (FlowMatch(),), True
    if isinstance(value, Mapping):
        return (_parse_match(value, "match"),), True
    items = _as_list_of_matches(value)
    if not items:
        _fail("match", "an empty list matches nothing; omit match (or write {}) for all traffic")
    return tuple(_parse_match(v, f"match[{i}]") for i, v in enumerate(items)), False


def _as_list_of_matches(value: object) -> list[object]:
    if not isinstance(value, list | tuple):
        _fail("match", f"must be a mapping or a list of mappings, got {type_name(value)}")
    return list(value)


# --------------------------------------------------------------------------- policy


def _parse_params(value: object) -> PolicyParams:
    if value is None:
        return PolicyParams()
    doc = as_mapping(value, "params")
    check_keys(doc, _PARAM_KEYS, "params.")
    base = PolicyParams()
    return PolicyParams(
        congestion_threshold=_number_or(doc, "congestion_threshold", base.congestion_threshold),
        clear_threshold=_number_or(doc, "clear_threshold", base.clear_threshold),
        rebalance_period_s=_number_or(doc, "rebalance_period_s", base.rebalance_period_s),
        min_move_interval_s=_number_or(doc, "min_move_interval_s", base.min_move_interval_s),
        idle_timeout_s=(
            base.idle_timeout_s
            if doc.get("idle_timeout_s") is None
            else as_int(doc["idle_timeout_s"], "params.idle_timeout_s")
        ),
    )


def _number_or(doc: Mapping[Any, object], key: str, default: float) -> float:
    value = doc.get(key)
    return default if value is None else as_number(value, f"params.{key}")


def _parse_weights(value: object) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    doc = as_mapping(value, "weights")
    weights: list[tuple[str, float]] = []
    for key, weight in doc.items():
        # YAML turns an unquoted all-digit dpid into an int key; name that precisely.
        name = as_str(key, f"weights.{key_text(key)}")
        weights.append((name, as_number(weight, f"weights.{key_text(name)}")))
    return tuple(weights)


def policy_from_dict(doc: Mapping[str, object], *, validate: bool = True) -> Policy:
    """The policy a document describes.

    Raises :class:`InvalidArgument` naming the first bad field. With
    ``validate=False`` only the shape is checked (the store uses this to read
    back what it accepted earlier, even if today's rules are stricter).

    >>> policy_from_dict({"name": "bulk", "priority": 10, "strategy": "ecmp"}).strategy
    <Strategy.ECMP: 'ecmp'>
    """
    if not isinstance(doc, Mapping):
        _fail("", f"a policy document must be a mapping, got {type_name(doc)}")
    check_keys(doc, _TOP_KEYS, "")
    for key in ("name", "priority"):
        if doc.get(key) is None:
            _fail(key, "required")
    version = 0
    if doc.get("version") is not None:
        version = as_int(doc["version"], "version")
        if not 0 <= version <= MAX_VERSION:
            _fail("version", f"must be 0..{MAX_VERSION}, got {excerpt(version)}")
    match, single = _parse_alternatives(doc.get("match"))
    strategy = Strategy.ECMP
    if doc.get("strategy") is not None:
        strategy = _as_strategy(doc["strategy"], "strategy")
    fallback = Strategy.LEAST_UTILIZED
    if doc.get("fallback") is not None:
        if validate and strategy is not Strategy.PINNED:
            _fail("fallback", f"only used by strategy pinned (strategy is {strategy.value})")
        fallback = _as_strategy(doc["fallback"], "fallback")
    description = doc.get("description")
    policy = Policy(
        name=as_str(doc["name"], "name"),
        priority=as_int(doc["priority"], "priority"),
        match=match,
        strategy=strategy,
        params=_parse_params(doc.get("params")),
        weights=_parse_weights(doc.get("weights")),
        pinned_path=_parse_list(doc, "pinned_path", "", as_str),
        fallback=fallback,
        description="" if description is None else as_str(description, "description"),
        version=version,
    )
    if validate:
        try:
            validate_policy(policy)
        except InvalidArgument as exc:
            # Name fields as the document wrote them: `match.dst_ports[0]` for a
            # single mapping, not the `match[0]` of the model's tuple.
            if single and exc.field.startswith("match[0]"):
                raise InvalidArgument("match" + exc.field[len("match[0]") :], exc.reason) from None
            raise
    return policy


def _match_to_dict(m: FlowMatch) -> dict[str, object]:
    out: dict[str, object] = {}
    if m.ip_proto is not None:
        out["ip_proto"] = _NAME_BY_PROTO.get(m.ip_proto, m.ip_proto)
    for key, ranges in (("src_ports", m.src_ports), ("dst_ports", m.dst_ports)):
        if ranges:
            out[key] = [r.lo if r.lo == r.hi else f"{r.lo}-{r.hi}" for r in ranges]
    if m.dscp:
        out["dscp"] = list(m.dscp)
    for key, nets in (("src_hosts", m.src_hosts), ("dst_hosts", m.dst_hosts)):
        if nets:
            out[key] = [
                str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in nets
            ]
    return out


def _plain(value: float) -> float | int:
    # `rebalance_period_s: 2` reads better than `2.0`; parsing makes it a float again.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def policy_to_dict(p: Policy) -> dict[str, object]:
    """The document for ``p``, in a stable key order; ``policy_from_dict`` inverts it.

    Defaults that change nothing (an empty description, the all-traffic
    match, an unused fallback) are left out; params are always written so a
    reader sees every knob in effect.
    """
    out: dict[str, object] = {"name": p.name}
    if p.version:
        out["version"] = p.version
    out["priority"] = p.priority
    if p.description:
        out["description"] = p.description
    if p.match != (FlowMatch(),):
        out["match"] = [_match_to_dict(m) for m in p.match]
    out["strategy"] = p.strategy.value
    if p.weights:
        out["weights"] = {name: _plain(weight) for name, weight in p.weights}
    if p.pinned_path:
        out["pinned_path"] = list(p.pinned_path)
    if p.strategy is Strategy.PINNED or p.fallback is not Strategy.LEAST_UTILIZED:
        out["fallback"] = p.fallback.value
    out["params"] = {
        "congestion_threshold": _plain(p.params.congestion_threshold),
        "clear_threshold": _plain(p.params.clear_threshold),
        "rebalance_period_s": _plain(p.params.rebalance_period_s),
        "min_move_interval_s": _plain(p.params.min_move_interval_s),
        "idle_timeout_s": p.params.idle_timeout_s,
    }
    return out


# --------------------------------------------------------------------------- files


def _only_comments(text: str) -> bool:
    lines = (line.strip() for line in text.splitlines())
    return all(not line or line.startswith("#") or line in ("---", "...") for line in lines)


def load_yaml_document(
    text: str, *, source: str = "<input>", kind: str = "policy", max_bytes: int = MAX_POLICY_BYTES
) -> Any:
    """The data of one YAML (or JSON) document, not yet checked for shape.

    Every document kind (policies, jobs) is read through here, so they share
    one safe loader (:func:`controller.safeyaml.load_yaml`: YAML 1.2 scalars,
    no aliases or merge keys, no duplicate keys, at most
    :data:`MAX_POLICY_BYTES`) and one way of reporting a malformed file.
    Errors are :class:`PolicyFileError` starting with ``source``; an empty or
    null document is an error naming the ``kind`` that was expected.
    """
    try:
        data = load_yaml(text, max_bytes=max_bytes)
    except YamlError as exc:
        where = f" at line {exc.line}, column {exc.column}" if exc.line is not None else ""
        raise PolicyFileError(source, "", f"invalid YAML{where}: {exc.reason}") from None
    if data is None:
        if _only_comments(text):
            raise PolicyFileError(source, "", f"file is empty; expected a {kind} document")
        raise PolicyFileError(source, "", "document is null; expected a mapping")
    return data


def policy_from_yaml(text: str, *, source: str = "<input>") -> Policy:
    """The policy in one YAML (or JSON) document; errors start with ``source``."""
    data = load_yaml_document(text, source=source)
    try:
        return policy_from_dict(data)  # shape checked there
    except InvalidArgument as exc:
        raise PolicyFileError(source, exc.field, exc.reason) from None


def read_document_file(path: str | Path, *, max_bytes: int = MAX_POLICY_BYTES) -> str:
    """The text of a document file (UTF-8, a byte-order mark allowed), at most ``max_bytes``.

    Errors are :class:`PolicyFileError` naming the file.
    """
    source = str(path)
    try:
        return read_yaml_text(path, max_bytes=max_bytes)
    except OSError as exc:
        raise PolicyFileError(source, "", f"cannot read: {exc.strerror or exc}") from None
    except YamlError as exc:
        raise PolicyFileError(source, "", exc.reason) from None


def load_policy_file(path: str | Path) -> Policy:
    """The policy in one ``.yaml``/``.yml``/``.json`` file.

    Every error is a :class:`PolicyFileError` whose message starts with the
    file name, e.g. ``policies/x.yaml: match[0].dst_ports[0]: port 70000
    outside 0-65535``.
    """
    return policy_from_yaml(read_document_file(path), source=str(path))


def load_policy_dir(path: str | Path) -> list[Policy]:
    """The policies of every ``*.yaml``/``*.yml`` file directly in ``path``, by file name.

    Subdirectories (such as ``examples/``) and hidden files are not read. Two
    files naming the same policy, or two overlapping policies at one
    priority, are errors that name both files; more policies or flow entries
    than :mod:`controller.policy.limits` allows is an error naming the directory.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise PolicyFileError(str(directory), "", "not a directory")
    files = sorted(
        f
        for f in directory.iterdir()
        if f.suffix in (".yaml", ".yml") and not f.name.startswith(".") and f.is_file()
    )
    loaded: list[tuple[Policy, Path]] = []
    for file in files:
        policy = load_policy_file(file)
        for other, other_file in loaded:
            if other.name == policy.name:
                raise PolicyFileError(
                    str(file), "name", f"policy {policy.name!r} is already defined in {other_file}"
                )
            try:
                check_conflicts(policy, (other,))
            except InvalidArgument as exc:
                reason = f"{exc.reason} (defined in {other_file})"
                raise PolicyFileError(str(file), exc.field, reason) from None
        loaded.append((policy, file))
    policies = [policy for policy, _ in loaded]
    try:
        check_rule_budget(policies)
    except InvalidArgument as exc:
        raise PolicyFileError(str(directory), "", exc.reason) from None
    return policies


# --------------------------------------------------------------------------- shared
# Other documents written with the same conventions (jobs, in
# controller.jobs.parse) check their fields with these, so both kinds report
# the same mistake in the same words.
parse_flow_match = _parse_match
flow_match_to_dict = _match_to_dict
