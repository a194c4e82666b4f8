"""The rules a job must satisfy before it may be stored or placed.

:func:`validate_job` checks a :class:`Job` however it was built (a YAML file,
a gRPC request, code) and raises :class:`InvalidArgument` for the first rule
broken, naming the field with a path such as ``hosts[2]``, ``pairs[1][0]`` or
``match.dst_ports[0]``. The match is checked with exactly the policy rules.
Whether a host exists is asked of ``known_hosts`` (the engine passes its live
host table) only when given. This module must not parse documents, touch the
store or place anything: it only says yes or why not.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Container
from typing import NoReturn

from controller.errors import InvalidArgument
from controller.jobs.model import Job, Pattern
from controller.policy.model import FlowMatch
from controller.policy.validate import NAME_RE, validate_flow_match

__all__ = [
    "MAX_JOB_HOSTS",
    "MAX_JOB_PAIRS",
    "MAX_DEMAND_MBPS",
    "canonical_ipv4",
    "validate_job",
]

# A job is one collective: tens of thousands of ranks at most. The pair limit
# keeps one request's expansion (and the rules it installs) bounded:
# all-to-all of 512 ranks is 261,632 flows.
MAX_JOB_HOSTS = 16384
MAX_JOB_PAIRS = 262144
MAX_DEMAND_MBPS = 10_000_000.0  # 10 Tbit/s per flow: anything above is a typo
_MATCH_FIELDS_UNUSED = ("src_ports", "dscp", "src_hosts", "dst_hosts")


def _fail(field: str, reason: str) -> NoReturn:
    raise InvalidArgument(field, reason)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def canonical_ipv4(text: object, field: str) -> str:
    """The dotted-quad form of a unicast host address, or an error naming ``field``."""
    if not isinstance(text, str):
        _fail(field, f"must be an IPv4 address string, got {type(text).__name__}")
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        _fail(field, f"{text!r} is not an IPv4 address")
    if not isinstance(addr, ipaddress.IPv4Address):
        _fail(field, f"{text!r} is IPv6; only IPv4 is supported")
    if addr.is_unspecified or addr.is_multicast or addr.is_loopback or addr.is_reserved:
        _fail(field, f"{text} is not a unicast host address")
    if addr == ipaddress.IPv4Address("255.255.255.255"):
        _fail(field, f"{text} is the broadcast address, not a host")
    return str(addr)


def _check_hosts(job: Job) -> None:
    if not job.hosts:
        _fail("hosts", "at least one host is required (the job's ranks, in order)")
    if len(job.hosts) > MAX_JOB_HOSTS:
        _fail("hosts", f"{len(job.hosts)} hosts; at most {MAX_JOB_HOSTS} are allowed")
    first: dict[str, int] = {}
    for i, host in enumerate(job.hosts):
        field = f"hosts[{i}]"
        ip = canonical_ipv4(host, field)
        if ip != host:
            _fail(field, f"write {host!r} as {ip}")
        if host in first:
            _fail(field, f"host {host} is listed twice (also hosts[{first[host]}])")
        first[host] = i


def _check_pattern(job: Job) -> None:
    if not isinstance(job.pattern, Pattern):
        _fail("pattern", f"must be a Pattern, got {job.pattern!r}")
    if job.pattern is not Pattern.PAIRS:
        if job.pairs:
            _fail("pairs", f"only used by pattern pairs (pattern is {job.pattern.value})")
        if len(job.hosts) < 2:
            _fail("hosts", f"pattern {job.pattern.value} needs at least 2 hosts")
    else:
        _check_pairs(job)
    if job.pair_count > MAX_JOB_PAIRS:
        _fail(
            "hosts" if job.pattern is not Pattern.PAIRS else "pairs",
            f"pattern {job.pattern.value} makes {job.pair_count} flows; "
            f"at most {MAX_JOB_PAIRS} are allowed",
        )


def _check_pairs(job: Job) -> None:
    if not job.pairs:
        _fail("pairs", "pattern pairs needs at least one [source, destination] pair")
    if len(job.pairs) > MAX_JOB_PAIRS:
        _fail("pairs", f"{len(job.pairs)} pairs; at most {MAX_JOB_PAIRS} are allowed")
    ranks = {host: i for i, host in enumerate(job.hosts)}
    first: dict[tuple[str, str], int] = {}
    for i, pair in enumerate(job.pairs):
        field = f"pairs[{i}]"
        if not isinstance(pair, tuple) or len(pair) != 2:
            _fail(field, f"must be a (source, destination) pair, got {pair!r}")
        for end, host in enumerate(pair):
            if host not in ranks:
                _fail(f"{field}[{end}]", f"{host!r} is not one of the job's hosts")
        if pair[0] == pair[1]:
            _fail(field, f"source and destination are the same host {pair[0]}")
        if pair in first:
            _fail(field, f"pair {pair[0]} -> {pair[1]} repeats pairs[{first[pair]}]")
        first[pair] = i


def _check_match(m: FlowMatch) -> None:
    if not isinstance(m, FlowMatch):
        _fail("match", f"must be a FlowMatch, got {type(m).__name__}")
    for key in _MATCH_FIELDS_UNUSED:
        if getattr(m, key):
            _fail(
                f"match.{key}",
                "not used by jobs: a job matches its own hosts by ip_proto and dst_ports",
            )
    if m.ip_proto is None:
        _fail("match.ip_proto", "required: the transport of the job's traffic (tcp, udp, ...)")
    validate_flow_match(m, field="match")


def validate_job(job: Job, *, known_hosts: Container[str] | None = None) -> None:
    """Raise :class:`InvalidArgument` naming the first field of ``job`` that breaks a rule.

    With ``known_hosts`` (any container of IPv4 strings, e.g. the engine's
    live host table), every host must be in it.
    """
    if not isinstance(job.name, str) or not NAME_RE.match(job.name):
        _fail(
            "name",
            f"{job.name!r} is not a valid job name: 1-63 lower-case letters, digits, '.', "
            "'_' or '-', starting and ending with a letter or digit",
        )
    if not isinstance(job.hosts, tuple):
        _fail("hosts", f"must be a tuple of addresses, got {type(job.hosts).__name__}")
    _check_hosts(job)
    _check_pattern(job)
    _check_match(job.match)
    demand = job.demand_mbps
    if demand is not None:
        if isinstance(demand, bool) or not isinstance(demand, int | float):
            _fail("demand_mbps", f"must be a number, got {demand!r}")
        if not math.isfinite(demand) or demand <= 0:
            _fail("demand_mbps", f"must be above 0, got {demand}")
        if demand > MAX_DEMAND_MBPS:
            _fail("demand_mbps", f"{demand:g} Mbit/s is above {MAX_DEMAND_MBPS:g}")
    if not _is_int(job.priority) or not 0 <= job.priority <= 0xFFFF:
        _fail("priority", f"{job.priority!r} outside 0-65535")
    if not isinstance(job.description, str):
        _fail("description", f"must be a string, got {type(job.description).__name__}")
    if not _is_int(job.version) or job.version < 0:
        _fail("version", f"must be an integer >= 0, got {job.version!r}")
    if known_hosts is not None:
        # Last: a malformed job is reported as such even when its hosts are unknown too.
        for i, host in enumerate(job.hosts):
            if host not in known_hosts:
                _fail(f"hosts[{i}]", f"unknown host {host}: the controller has not learned it")
