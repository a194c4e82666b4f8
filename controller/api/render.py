"""Human-readable rendering of ``fabric.v1`` messages for ``fabricctl``.

Aligned plain-text tables and key/value blocks, with rates and capacities in
SI units. Every value a server or a policy author chose passes through
:func:`printable`, so no field can move the cursor, retitle or clear the
terminal, reorder text (bidi overrides) or break a table's lines;
:func:`terminal_safe` does the same for whole output lines. Only presentation
lives here: no RPCs, no argument parsing, and the machine-readable form is
``--json`` (protobuf's JSON mapping), not this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from fabric.v1 import fabric_pb2 as pb

__all__ = [
    "printable",
    "terminal_safe",
    "json_safe",
    "table",
    "si",
    "render_topology",
    "render_links",
    "render_flows",
    "render_policy",
    "render_policies",
    "render_apply",
    "render_drain",
    "render_explain",
    "render_event",
]


# C0 and C1 controls, DEL, bidi embeddings/overrides/isolates and marks, and
# the Unicode line and paragraph separators some terminals treat as newlines.
_CONTROLS_BUT_NEWLINE = r"\x00-\x09\x0b-\x1f"
_OTHER_UNSAFE = r"\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_RE = re.compile(rf"[\n{_CONTROLS_BUT_NEWLINE}{_OTHER_UNSAFE}]")
_UNSAFE_BUT_NEWLINE_RE = re.compile(rf"[{_CONTROLS_BUT_NEWLINE}{_OTHER_UNSAFE}]")


def _escaped(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _json_escaped(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"


def printable(value: object) -> str:
    """``str(value)`` with every control character, newline included, written as an escape
    (``\\x1b``, ``\\u202e``): for one field of a table or block."""
    return _UNSAFE_RE.sub(_escaped, str(value))


def terminal_safe(text: str) -> str:
    """Like :func:`printable` but keeps line breaks: for whole blocks of output."""
    return _UNSAFE_BUT_NEWLINE_RE.sub(_escaped, text)


def json_safe(text: str) -> str:
    """JSON text with the characters :func:`terminal_safe` escapes written as ``\\uXXXX``.

    Those characters can only occur inside JSON strings (``json`` already
    escapes C0 controls there), where ``\\uXXXX`` means the same character,
    so the document is unchanged for a parser.
    """
    return _UNSAFE_BUT_NEWLINE_RE.sub(_json_escaped, text)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns left-aligned and padded to their widest cell; no trailing spaces."""
    cells = [[printable(c) for c in headers], *([printable(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def si(value: float, unit: str = "") -> str:
    """1.2G, 830M, 12k: three significant digits at most."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{unit}"
    return f"{value:.3g}{unit}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _enum_label(enum: Any, value: int, prefix: str) -> str:
    """``STRATEGY_LEAST_UTILIZED`` -> ``least-utilized``; a number a newer server sent stays."""
    try:
        name = str(enum.Name(value))
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower().replace("_", "-")


def _strategy(value: int) -> str:
    if value == pb.STRATEGY_UNSPECIFIED:
        return "-"
    return _enum_label(pb.Strategy, value, "STRATEGY_")


def _time(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    moment = datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _proto_name(number: int) -> str:
    return {6: "tcp", 17: "udp", 1: "icmp"}.get(number, str(number))


def _five_tuple(ft: Any) -> str:
    return f"{_proto_name(ft.ip_proto)} {ft.src_ip}:{ft.src_port} -> {ft.dst_ip}:{ft.dst_port}"


def render_links(links: Sequence[Any]) -> str:
    rows = [
        (
            link.name,
            "up" if link.state == pb.LINK_STATE_UP else "down",
            _yes(link.drained),
            si(link.capacity_bps, "b/s") if link.capacity_bps else "?",
            si(link.rate_bps, "b/s"),
            f"{link.utilization:.0%}",
            _yes(link.congested),
        )
        for link in links
    ]
    return table(("LINK", "STATE", "DRAINED", "CAPACITY", "RATE", "UTIL", "CONGESTED"), rows)


def render_topology(topo: Any) -> str:
    switches = table(
        ("SWITCH", "DPID", "CONNECTED", "PORTS", "FABRIC PORTS"),
        (
            (
                s.name,
                s.dpid,
                _yes(s.connected),
                len(s.ports),
                ",".join(str(p.port_no) for p in s.ports if p.fabric) or "-",
            )
            for s in topo.switches
        ),
    )
    hosts = table(
        ("HOST", "IPV4", "SWITCH", "PORT"),
        ((h.mac, h.ipv4 or "-", h.switch, h.port) for h in topo.hosts),
    )
    return "\n\n".join((switches, render_links(topo.links), hosts))


def render_flows(flows: Sequence[Any]) -> str:
    rows = [
        (
            f.flow_id,
            _five_tuple(f.five_tuple),
            f.dscp,
            f.policy,
            _strategy(f.strategy) + (" (fallback)" if f.fell_back else ""),
            ">".join(f.path) or "-",
            si(f.rate_bps, "b/s"),
            f.moves,
            f.last_move_reason or "-",
        )
        for f in flows
    ]
    headers = ("ID", "FLOW", "DSCP", "POLICY", "STRATEGY", "PATH", "RATE", "MOVES", "LAST MOVE")
    return table(headers, rows)


def _ranges(ranges: Sequence[Any]) -> str:
    return ",".join(str(r.lo) if r.lo == r.hi else f"{r.lo}-{r.hi}" for r in ranges)


def _match(m: Any) -> str:
    parts = []
    if m.HasField("ip_proto"):
        parts.append(f"proto={_proto_name(m.ip_proto)}")
    for label, value in (
        ("sport", _ranges(m.src_ports)),
        ("dport", _ranges(m.dst_ports)),
        ("dscp", ",".join(str(d) for d in m.dscp)),
        ("src", ",".join(m.src_hosts)),
        ("dst", ",".join(m.dst_hosts)),
    ):
        if value:
            parts.append(f"{label}={value}")
    return " ".join(printable(part) for part in parts) or "all traffic"


def _block(pairs: Sequence[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in pairs) + 1
    return "\n".join(f"{(k + ':').ljust(width)} {printable(v)}" for k, v in pairs)


def render_policy(p: Any) -> str:
    pairs: list[tuple[str, object]] = [
        ("name", p.name),
        ("version", p.version),
        ("priority", p.priority),
        ("strategy", _strategy(p.strategy)),
    ]
    pairs += [(f"match[{i}]", _match(m)) for i, m in enumerate(p.match)]
    if p.weights:
        pairs.append(("weights", ", ".join(f"{k}={v:g}" for k, v in sorted(p.weights.items()))))
    if p.pinned_path:
        pairs.append(("pinned path", " > ".join(p.pinned_path)))
    pairs.append(("fallback", _strategy(p.fallback)))
    prm = p.params
    pairs.append(
        (
            "params",
            f"congestion={prm.congestion_threshold:g} clear={prm.clear_threshold:g} "
            f"rebalance={prm.rebalance_period_s:g}s min_move={prm.min_move_interval_s:g}s "
            f"idle_timeout={prm.idle_timeout_s}s",
        )
    )
    if p.description:
        pairs.append(("description", p.description))
    return _block(pairs)


def render_policies(policies: Sequence[Any]) -> str:
    rows = [
        (
            p.name,
            p.version,
            p.priority,
            _strategy(p.strategy),
            " | ".join(_match(m) for m in p.match),
        )
        for p in policies
    ]
    return table(("NAME", "VERSION", "PRIORITY", "STRATEGY", "MATCH"), rows)


def render_apply(resp: Any) -> str:
    verb = "would be" if resp.dry_run else "is"
    action = "created" if resp.created else "replaced"
    head = (
        f"policy {printable(resp.policy.name)} {verb} {action} (version {resp.policy.version}); "
        f"flows affected: {resp.flows_affected}"
    )
    if resp.dry_run:
        head = "dry run: " + head + "; nothing changed"
    return "\n".join([head, *(f"  - {printable(c)}" for c in resp.changes)])


def render_drain(verb: str, resp: Any) -> str:
    links = printable(", ".join(resp.links) or "no link")
    return f"{verb}: {links}; flows moved: {resp.flows_moved}"


def render_explain(resp: Any) -> str:
    pairs: list[tuple[str, object]] = [
        ("flow", _five_tuple(resp.five_tuple)),
        ("policy", resp.policy or "-"),
        ("strategy", _strategy(resp.strategy) + (" (fallback)" if resp.fell_back else "")),
        ("path", " > ".join(resp.path) or "-"),
        ("rules", "per-flow" if resp.per_flow else "per-destination groups"),
        ("flow id", resp.flow_id or "not placed"),
        ("why", resp.reason),
    ]
    return _block(pairs)


def render_event(event: Any) -> str:
    kind = _enum_label(pb.EventKind, event.kind, "EVENT_KIND_")
    parts = [_time(event.time), f"#{event.seq}", kind, event.subject]
    if event.reason:
        parts.append(f"({event.reason})")
    parts += [f"{k}={v}" for k, v in sorted(event.attributes.items())]
    return " ".join(printable(part) for part in parts)


def render_status(status: Any) -> str:
    """A node's view of the cluster: its role, the leader, the lease, etcd and the nodes."""
    if status.mode == pb.CLUSTER_MODE_SINGLE:
        return f"mode:      single controller\nstore:     {printable(status.store)}"
    lines = [
        "mode:      cluster (etcd)",
        f"node:      {printable(status.node_id)} ({printable(status.role)})",
        f"leader:    {printable(status.leader_id) or '(none)'}"
        f" generation {status.generation_id}, {status.leader_changes} change(s) seen",
        f"lease:     {status.lease_id:x} ttl {status.lease_ttl_s} s",
        f"store:     {printable(status.store)}",
    ]
    for e in status.endpoints:
        state = "ok" if e.healthy else f"DOWN ({printable(e.error)})"
        lines.append(f"etcd:      {printable(e.url)} {state}")
    if status.nodes:
        lines += ["", "NODE  GRPC  ROLE"]
        rows = [
            (printable(n.node_id), printable(n.grpc), "leader" if n.leader else "standby")
            for n in status.nodes
        ]
        width = [max(len(r[i]) for r in rows) for i in range(3)]
        lines[-1] = "  ".join(
            h.ljust(w) for h, w in zip(("NODE", "GRPC", "ROLE"), width, strict=True)
        )
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)).rstrip() for r in rows
        ]
    return "\n".join(lines)
