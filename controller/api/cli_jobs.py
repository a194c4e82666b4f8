"""``fabricctl job ...``: declare, inspect and delete jobs.

``job apply FILE.yaml [--dry-run]``, ``job list``, ``job get NAME`` (every
pair with its path and rate), ``job delete NAME`` and the offline
``job check FILE``, with the conventions of the policy commands: aligned
tables or key/value blocks for people, protobuf's JSON with ``--json``, one
line on stderr and the same exit codes on failure (raised as the CLI's own
errors, see :mod:`controller.api.cli`). This module only adds the
sub-commands, reads job files and prints; the RPCs live in
:mod:`controller.api.client`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from fabric.v1 import fabric_pb2 as pb

from controller.api import render
from controller.api.cli_errors import CommandFailed, UsageError
from controller.api.client import FabricClient
from controller.api.convert_jobs import job_to_proto
from controller.errors import InvalidArgument
from controller.jobs.model import Job
from controller.jobs.parse import load_job_file

__all__ = ["add_job_commands", "run_job", "run_job_offline", "render_job", "render_jobs"]

Show = Callable[[Any, Callable[[], str]], None]


def add_job_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``job`` and its actions through the CLI's ``command(name, help, into)`` helper."""
    job = command("job", "manage jobs: collectives whose flows are placed jointly")
    jsub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    apply = command("apply", "create or replace the job in a YAML file and place it", jsub)
    apply.add_argument("file", type=Path)
    apply.add_argument(
        "--dry-run", action="store_true", help="validate and show the placement only"
    )
    apply.add_argument(
        "--expected-version", type=_version(0), help="0: create only; N: replace only version N"
    )
    command("get", "show one job, each pair with its path and rate", jsub).add_argument("name")
    command("list", "list jobs", jsub)
    delete = command("delete", "delete a job and the rules placed for it", jsub)
    delete.add_argument("name")
    delete.add_argument("--expected-version", type=_version(1))
    command("check", "parse and validate a job file offline", jsub).add_argument("file", type=Path)


def _version(lo: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value < 2**63:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{2**63 - 1}")
        return value

    return parse


def _load(path: Path) -> Job:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return load_job_file(path)
    except InvalidArgument as exc:
        text = str(exc)
        raise CommandFailed(
            "INVALID_ARGUMENT", text if text.startswith(str(path)) else f"{path}: {text}"
        ) from None


def run_job_offline(args: argparse.Namespace, out: TextIO, to_json: Callable[[Any], str]) -> int:
    """``job check FILE``: parse and validate, no controller needed."""
    job = _load(args.file)
    if args.json:
        print(to_json(job_to_proto(job)), file=out)
    else:
        print(f"{args.file}: job {job.name} is valid ({job.pair_count} flows)", file=out)
    return 0


def run_job(client: FabricClient, args: argparse.Namespace, show: Show) -> int:
    action = args.job_command
    if action == "apply":
        job = _load(args.file)
        resp = client.apply_job(
            job_to_proto(job), dry_run=args.dry_run, expected_version=args.expected_version
        )
        show(resp, lambda: render_apply_job(resp))
    elif action == "get":
        got = client.get_job(args.name)
        show(got, lambda: render_job(got))
    elif action == "list":
        jobs = client.list_jobs()
        show(pb.ListJobsResponse(jobs=jobs), lambda: render_jobs(jobs))
    elif action == "delete":
        version = client.delete_job(args.name, expected_version=args.expected_version)
        show(
            pb.DeleteJobResponse(deleted_version=version),
            lambda: f"job {args.name} deleted (was version {version})",
        )
    return 0


# --------------------------------------------------------------------------- rendering


def _pattern(value: int) -> str:
    try:
        return str(pb.JobPattern.Name(value)).removeprefix("JOB_PATTERN_").lower().replace("_", "-")
    except ValueError:
        return str(value)


def _match(m: Any) -> str:
    proto = {6: "tcp", 17: "udp"}.get(m.ip_proto, str(m.ip_proto))
    ports = ",".join(str(r.lo) if r.lo == r.hi else f"{r.lo}-{r.hi}" for r in m.dst_ports)
    return f"{proto} dport={ports}" if ports else proto


def _demand(job: Any) -> str:
    return render.si(job.demand_mbps * 1e6, "b/s") if job.HasField("demand_mbps") else "link"


def _flows(job: Any) -> int:
    n = len(job.hosts)
    if job.pattern == pb.JOB_PATTERN_PAIRS:
        return len(job.pairs)
    if job.pattern == pb.JOB_PATTERN_ALL_TO_ALL:
        return n * (n - 1)
    return n if n >= 2 else 0


def render_apply_job(resp: Any) -> str:
    verb = "would be" if resp.dry_run else "is"
    action = "created" if resp.created else "replaced"
    # A dry run stores nothing, so it has no new version to show.
    version = "" if resp.dry_run else f" (version {resp.job.version})"
    head = (
        f"job {resp.job.name} {verb} {action}{version}; "
        f"pairs placed: {resp.pairs_placed}/{resp.pairs_total}, moved: {resp.pairs_moved}; "
        f"peak link utilization {resp.max_utilization:.0%}"
    )
    if resp.dry_run:
        head = "dry run: " + head + "; nothing changed"
    return "\n".join([head, *(f"  - {c}" for c in resp.changes)])


def render_jobs(jobs: list[Any]) -> str:
    rows = [
        (
            j.name,
            j.version,
            _pattern(j.pattern),
            len(j.hosts),
            _flows(j),
            j.priority,
            _demand(j),
            _match(j.match),
        )
        for j in jobs
    ]
    headers = ("NAME", "VERSION", "PATTERN", "HOSTS", "FLOWS", "PRIORITY", "DEMAND", "MATCH")
    return render.table(headers, rows)


def render_job(resp: Any) -> str:
    j = resp.job
    pairs: list[tuple[str, object]] = [
        ("name", j.name),
        ("version", j.version),
        ("pattern", _pattern(j.pattern)),
        ("hosts", f"{len(j.hosts)}: {', '.join(j.hosts[:8])}{' ...' if len(j.hosts) > 8 else ''}"),
        ("match", _match(j.match)),
        ("demand", _demand(j)),
        ("priority", j.priority),
        ("placed", f"{sum(1 for p in resp.pairs if p.placed)}/{resp.pairs_total} pairs"),
        ("peak util", f"{resp.max_utilization:.0%}"),
    ]
    if j.description:
        pairs.append(("description", j.description))
    for c in resp.conflicts:
        winner = "the job wins" if c.job_wins else "the policy wins"
        pairs.append(
            (
                "conflict",
                f"pinned policy {c.policy} (priority {c.policy_priority}) covers "
                f"{c.pairs} pairs; {winner}",
            )
        )
    width = max(len(k) for k, _ in pairs) + 1
    block = "\n".join(f"{(k + ':').ljust(width)} {v}" for k, v in pairs)
    table = render.table(
        ("SRC", "DST", "PATH", "RATE", "DEMAND", "PLACED", "NOTE"),
        (
            (
                p.src,
                p.dst,
                ">".join(p.path) or "-",
                render.si(p.rate_bps, "b/s"),
                render.si(p.demand_bps, "b/s"),
                "yes" if p.placed else "no",
                p.note or "-",
            )
            for p in resp.pairs
        ),
    )
    return f"{block}\n\n{table}"
