"""Job documents (YAML/JSON mappings) to :class:`Job` values and back.

A document's keys are the fields of the ``fabric.v1.Job`` message::

    name: llama-allreduce
    hosts: [10.0.1.1, 10.0.2.1, 10.0.3.1, 10.0.4.1]
    pattern: ring                       # ring | all-to-all | pairs
    match: {ip_proto: udp, dst_ports: [4791]}
    demand_mbps: 20                     # optional: default is the link capacity

This module checks the document's shape with the same helpers and words as
policy documents and reads files through the same safe YAML loader
(:mod:`controller.policy.parse`); the rules (:mod:`controller.jobs.validate`)
run unless asked not to. :func:`job_to_dict` is also the stored form (a JSON
document in the store beside policies). It must not know the store, the
fabric or the API, and never guesses what a malformed document meant.
"""

from __future__ import annotations

import json
from collections.abc import Container, Mapping
from pathlib import Path
from typing import NoReturn

from controller.errors import InvalidArgument
from controller.jobs.model import DEFAULT_JOB_PRIORITY, HostPair, Job, Pattern
from controller.jobs.validate import validate_job
from controller.policy.model import FlowMatch
from controller.policy.parse import (
    PolicyFileError,
    flow_match_to_dict,
    load_yaml_document,
    parse_flow_match,
    read_document_file,
)
from controller.policy.shapes import (
    as_int,
    as_list,
    as_mapping,
    as_number,
    as_str,
    check_keys,
    type_name,
)

__all__ = [
    "JOB_KEYS",
    "job_from_dict",
    "job_to_dict",
    "job_to_json",
    "job_from_json",
    "job_from_yaml",
    "load_job_file",
]

JOB_KEYS = (
    "name",
    "version",
    "hosts",
    "pattern",
    "pairs",
    "match",
    "demand_mbps",
    "priority",
    "description",
)
_MATCH_KEYS = ("ip_proto", "dst_ports")
# A job file lists every rank: 16,384 addresses and a pairs list fit in 4 MiB.
MAX_JOB_FILE_BYTES = 4 * 1024 * 1024
_PAIR_KEYS = ("src", "dst")


def _fail(field: str, reason: str) -> NoReturn:
    raise InvalidArgument(field, reason)


def _parse_pattern(value: object) -> Pattern:
    text = as_str(value, "pattern")
    try:
        return Pattern.parse(text)
    except ValueError as exc:
        raise InvalidArgument("pattern", str(exc)) from None


def _parse_pair(value: object, field: str) -> HostPair:
    """``[src, dst]`` (the short form) or ``{src: .., dst: ..}`` (the message form)."""
    if isinstance(value, Mapping):
        check_keys(value, _PAIR_KEYS, f"{field}.")
        for key in _PAIR_KEYS:
            if value.get(key) is None:
                _fail(f"{field}.{key}", "required")
        return as_str(value["src"], f"{field}.src"), as_str(value["dst"], f"{field}.dst")
    if not isinstance(value, list | tuple):
        _fail(field, f"must be [source, destination] or {{src, dst}}, got {type_name(value)}")
    if len(value) != 2:
        _fail(field, f"must be [source, destination], got {len(value)} entries")
    return as_str(value[0], f"{field}[0]"), as_str(value[1], f"{field}[1]")


def _parse_match(value: object) -> FlowMatch:
    if value is None:
        _fail("match", "required: the transport of the job's traffic, e.g. {ip_proto: udp}")
    doc = as_mapping(value, "match")
    check_keys(doc, _MATCH_KEYS, "match.")
    return parse_flow_match(doc, "match")


def _parse_demand(value: object) -> float | None:
    if value is None:
        return None
    return as_number(value, "demand_mbps")


def job_from_dict(
    doc: Mapping[str, object],
    *,
    validate: bool = True,
    known_hosts: Container[str] | None = None,
) -> Job:
    """The job a document describes; :class:`InvalidArgument` names the first bad field.

    With ``validate=False`` only the shape is checked (the store reads back
    what it accepted earlier this way, even if today's rules are stricter).
    ``known_hosts`` is passed on to :func:`validate_job`.

    >>> job_from_dict({"name": "r", "hosts": ["10.0.0.1", "10.0.0.2"],
    ...                "match": {"ip_proto": "udp"}}).pattern
    <Pattern.RING: 'ring'>
    """
    if not isinstance(doc, Mapping):
        _fail("", f"a job document must be a mapping, got {type_name(doc)}")
    check_keys(doc, JOB_KEYS, "")
    for key in ("name", "hosts"):
        if doc.get(key) is None:
            _fail(key, "required")
    version = 0
    if doc.get("version") is not None:
        version = as_int(doc["version"], "version")
        if version < 0:
            _fail("version", f"must be >= 0, got {version}")
    hosts = as_list(doc["hosts"], "hosts")
    pairs = () if doc.get("pairs") is None else as_list(doc["pairs"], "pairs")
    description = doc.get("description")
    job = Job(
        name=as_str(doc["name"], "name"),
        hosts=tuple(as_str(h, f"hosts[{i}]").strip() for i, h in enumerate(hosts)),
        pattern=Pattern.RING if doc.get("pattern") is None else _parse_pattern(doc["pattern"]),
        pairs=tuple(_parse_pair(p, f"pairs[{i}]") for i, p in enumerate(pairs)),
        match=_parse_match(doc.get("match")),
        demand_mbps=_parse_demand(doc.get("demand_mbps")),
        priority=(
            DEFAULT_JOB_PRIORITY
            if doc.get("priority") is None
            else as_int(doc["priority"], "priority")
        ),
        description="" if description is None else as_str(description, "description"),
        version=version,
    )
    if validate:
        validate_job(job, known_hosts=known_hosts)
    return job


def _plain(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def job_to_dict(job: Job) -> dict[str, object]:
    """The document for ``job`` in a stable key order; :func:`job_from_dict` inverts it.

    Only JSON types appear (strings, numbers, lists, mappings), so this is
    also the form the store keeps. Unused fields (no pairs, no description,
    version 0) are left out; the priority is always written.
    """
    out: dict[str, object] = {"name": job.name}
    if job.version:
        out["version"] = job.version
    out["hosts"] = list(job.hosts)
    out["pattern"] = job.pattern.value
    if job.pairs:
        out["pairs"] = [[src, dst] for src, dst in job.pairs]
    out["match"] = flow_match_to_dict(job.match)
    if job.demand_mbps is not None:
        out["demand_mbps"] = _plain(float(job.demand_mbps))
    out["priority"] = job.priority
    if job.description:
        out["description"] = job.description
    return out


def job_from_yaml(text: str, *, source: str = "<input>") -> Job:
    """The job in one YAML (or JSON) document; errors start with ``source``."""
    data = load_yaml_document(text, source=source, kind="job", max_bytes=MAX_JOB_FILE_BYTES)
    try:
        return job_from_dict(data)
    except InvalidArgument as exc:
        raise PolicyFileError(source, exc.field, exc.reason) from None


def load_job_file(path: str | Path) -> Job:
    """The job in one ``.yaml``/``.yml``/``.json`` file.

    Every error is an :class:`InvalidArgument` whose message starts with the
    file name, e.g. ``jobs/ring.yaml: hosts[2]: host 10.0.1.1 is listed twice
    (also hosts[0])``.
    """
    return job_from_yaml(read_document_file(path, max_bytes=MAX_JOB_FILE_BYTES), source=str(path))


def job_to_json(job: Job) -> str:
    """The stored form of ``job``: its document as compact JSON."""
    return json.dumps(job_to_dict(job), separators=(",", ":"))


def job_from_json(text: str) -> Job:
    """A job the store kept; only its shape is checked (see :func:`job_from_dict`)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument("", f"stored job is not JSON: {exc}") from None
    return job_from_dict(doc, validate=False)
