"""``fabricctl``: the operator's command line for the controller's gRPC API.

Each sub-command is one RPC (``policy check`` is offline: it only parses and
validates a file; ``policy list`` pages through ListPolicies). Output is an
aligned table or key/value block for people, or protobuf's JSON mapping with
``--json`` for scripts; either way control characters and bidi overrides in
any field are escaped, so a policy description cannot drive the terminal.
Every failure is one line on stderr, ``fabricctl: <status>: <message>`` (at
most 500 characters), and an exit code a script can branch on: 2 usage, 1 the
request failed, 3 the controller is unreachable, 141 (128 + SIGPIPE, what a
shell reports for a killed writer) when the reader of stdout went away, as
in ``fabricctl topology | head -1``, and 130 on Ctrl-C.
This module only parses arguments and prints; the RPCs live in
:mod:`controller.api.client` and the layout in :mod:`controller.api.render`.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, cast

import grpc
from fabric.v1 import fabric_pb2 as pb
from google.protobuf import json_format

from controller.api import cli_jobs, render
from controller.api.cli_errors import CommandFailed, UsageError
from controller.api.client import ApiContractError, FabricClient
from controller.api.convert import policy_to_proto
from controller.engine.outputs import EventKind
from controller.errors import InvalidArgument
from controller.fabric.model import FiveTuple
from controller.policy.model import Policy

__all__ = [
    "main",
    "build_parser",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_UNREACHABLE",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERRUPTED",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
EXIT_INTERRUPTED = 128 + signal.SIGINT
_MAX_ERROR_CHARS = 500
DEFAULT_TARGET = "127.0.0.1:50051"
_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus a message and exits; we want one line and our exit code.
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# --------------------------------------------------------------------------- argument types


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value

    return parse


def _protocol(text: str) -> int:
    if text.lower() in _PROTOCOLS:
        return _PROTOCOLS[text.lower()]
    return _int_in(0, 255)(text)


def _event_kind(text: str) -> EventKind:
    norm = text.strip().lower().replace("_", "-")
    for kind in EventKind:
        if kind.value == norm:
            return kind
    raise argparse.ArgumentTypeError(
        f"unknown event kind {text!r}; one of {', '.join(k.value for k in EventKind)}"
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _global_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the sub-command.

    The sub-command copies default to SUPPRESS so they only override the
    top-level value when actually given.
    """

    def d(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    p = _Parser(add_help=False)
    p.add_argument(
        "--target",
        default=d(os.environ.get("FABRICCTL_TARGET") or DEFAULT_TARGET),
        help=f"controller API address host:port (env FABRICCTL_TARGET; default {DEFAULT_TARGET})",
    )
    p.add_argument(
        "--timeout", type=_positive_float, default=d(5.0), help="deadline of each call, seconds"
    )
    p.add_argument("--token-file", type=Path, default=d(None), help="file holding a bearer token")
    p.add_argument("--tls-ca", type=Path, default=d(None), help="CA certificate: use TLS")
    p.add_argument(
        "--json", action="store_true", default=d(False), help="print protobuf JSON instead"
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(suppress=True)
    parser = _Parser(
        prog="fabricctl",
        description="Manage the AI fabric controller over its gRPC API.",
        parents=[_global_options(suppress=False)],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, into: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = into.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        return p

    command("topology", "show switches, links and hosts")
    command("status", "show this controller's role, the cluster's leader and the store")
    command("links", "show every link direction with its load")
    command("flows", "show the flows placed with per-flow rules").add_argument(
        "--policy", default="", help="only flows of this policy"
    )

    policy = command("policy", "manage policies")
    psub = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    apply = command("apply", "create or replace the policy in a YAML file", psub)
    apply.add_argument("file", type=Path)
    apply.add_argument("--dry-run", action="store_true", help="validate and report only")
    apply.add_argument(
        "--expected-version",
        type=_int_in(0, 2**63 - 1),
        help="0: create only; N: replace only version N",
    )
    command("get", "show one policy", psub).add_argument("name")
    command("list", "list policies (every page)", psub).add_argument(
        "--page-size", type=_int_in(0, 2**31 - 1), default=0, help="policies per request"
    )
    delete = command("delete", "delete a policy", psub)
    delete.add_argument("name")
    delete.add_argument("--expected-version", type=_int_in(1, 2**63 - 1))
    command("check", "parse and validate a policy file offline", psub).add_argument(
        "file", type=Path
    )

    cli_jobs.add_job_commands(command)

    for verb in ("drain", "undrain"):
        command(verb, f"{verb} a link: A-B (all cables) or A/p-B/q (one cable)").add_argument(
            "link"
        )

    explain = command("explain", "show how a flow is (or would be) forwarded")
    explain.add_argument("src_ip")
    explain.add_argument("dst_ip")
    explain.add_argument("--proto", type=_protocol, default=17, help="tcp, udp or a number")
    explain.add_argument("--sport", type=_int_in(0, 65535), default=0)
    explain.add_argument("--dport", type=_int_in(0, 65535), default=0)
    explain.add_argument("--dscp", type=_int_in(0, 63), default=0)

    watch = command("watch", "stream fabric events (no deadline: runs until --count or Ctrl-C)")
    watch.add_argument(
        "--kind", type=_event_kind, action="append", default=[], help="repeat to add kinds"
    )
    watch.add_argument("--count", type=_int_in(1, 2**31), help="stop after N events")
    watch.add_argument("--live-only", action="store_true", help="skip the recent events")
    return parser


# --------------------------------------------------------------------------- commands


def _json(message: Any, *, indent: int | None = 2) -> str:
    return json_format.MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        indent=indent,
    )


def _load_policy(path: Path) -> Policy:
    try:
        from controller.policy.parse import load_policy_file
    except ImportError as exc:
        raise CommandFailed("UNIMPLEMENTED", f"policy files cannot be read: {exc}") from None
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return load_policy_file(path)
    except InvalidArgument as exc:
        text = str(exc)
        raise CommandFailed(
            "INVALID_ARGUMENT", text if text.startswith(str(path)) else f"{path}: {text}"
        ) from None


def _run_offline(args: argparse.Namespace, out: TextIO) -> int:
    policy = _load_policy(args.file)
    if args.json:
        print(_json(policy_to_proto(policy)), file=out)
    else:
        print(f"{args.file}: policy {policy.name} is valid", file=out)
    return EXIT_OK


def _run(client: FabricClient, args: argparse.Namespace, out: TextIO) -> int:
    def show(message: Any, human: Callable[[], str]) -> None:
        print(_json(message) if args.json else human(), file=out)

    cmd = args.command
    if cmd == "status":
        status = client.cluster_status()
        show(status, lambda: render.render_status(status))
    elif cmd == "topology":
        topo = client.get_topology()
        show(topo, lambda: render.render_topology(topo))
    elif cmd == "links":
        links = client.list_links()
        show(pb.ListLinksResponse(links=links), lambda: render.render_links(links))
    elif cmd == "flows":
        flows = client.list_flows(policy=args.policy)
        show(pb.ListFlowsResponse(flows=flows), lambda: render.render_flows(flows))
    elif cmd == "policy":
        return _run_policy(client, args, show)
    elif cmd == "job":
        return cli_jobs.run_job(client, args, show)
    elif cmd in ("drain", "undrain"):
        call = client.drain_link if cmd == "drain" else client.undrain_link
        resp = call(args.link)
        show(resp, lambda: render.render_drain(f"{cmd}ed", resp))
    elif cmd == "explain":
        ft = FiveTuple(args.src_ip, args.dst_ip, args.proto, args.sport, args.dport)
        resp = client.explain_path(ft, dscp=args.dscp)
        show(resp, lambda: render.render_explain(resp))
    elif cmd == "watch":
        return _watch(client, args, out)
    return EXIT_OK


def _run_policy(
    client: FabricClient, args: argparse.Namespace, show: Callable[[Any, Callable[[], str]], None]
) -> int:
    action = args.policy_command
    if action == "apply":
        policy = _load_policy(args.file)
        resp = client.apply_policy(
            policy, dry_run=args.dry_run, expected_version=args.expected_version
        )
        show(resp, lambda: render.render_apply(resp))
    elif action == "get":
        got = client.get_policy(args.name)
        show(got, lambda: render.render_policy(got))
    elif action == "list":
        policies = client.list_policies(page_size=args.page_size)
        show(
            pb.ListPoliciesResponse(policies=policies),
            lambda: render.render_policies(policies),
        )
    elif action == "delete":
        version = client.delete_policy(args.name, expected_version=args.expected_version)
        show(
            pb.DeletePolicyResponse(deleted_version=version),
            lambda: f"policy {args.name} deleted (was version {version})",
        )
    return EXIT_OK


def _watch(client: FabricClient, args: argparse.Namespace, out: TextIO) -> int:
    seen = 0
    # A watch runs until --count events or Ctrl-C, so it carries no deadline.
    with client.watch_events(kinds=args.kind, live_only=args.live_only) as stream:
        try:
            for event in stream:
                print(
                    _json(event, indent=None) if args.json else render.render_event(event),
                    file=out,
                    flush=True,
                )
                seen += 1
                if args.count and seen >= args.count:
                    break
        except KeyboardInterrupt:
            pass
    return EXIT_OK


class _TerminalSafe(io.TextIOBase):
    """A text stream that escapes control characters before they reach the terminal.

    The renderers already escape each field; this catches every other line
    (messages built here, sub-commands added later). ``json`` escapes as
    ``\\uXXXX``, which keeps the document valid and equal for a parser.
    """

    def __init__(self, stream: TextIO, *, json: bool) -> None:
        super().__init__()
        self._stream = stream
        self._escape = render.json_safe if json else render.terminal_safe

    def write(self, text: str) -> int:
        self._stream.write(self._escape(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def _one_line(text: str) -> str:
    line = render.printable(" ".join(text.split()))
    if len(line) > _MAX_ERROR_CHARS:
        line = f"{line[: _MAX_ERROR_CHARS - 30]}... ({len(line)} characters)"
    return line


def _fail(status: str, message: str, code: int) -> int:
    print(f"fabricctl: {status}: {_one_line(message)}", file=sys.stderr)
    return code


def _stdout_gone() -> int:
    """The reader of stdout went away (``| head -1``): exit quietly.

    Python would otherwise report the failed flush at exit with a traceback;
    pointing the descriptor at /dev/null lets that flush succeed.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (tests capture stdout)
        pass
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``fabricctl`` command; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return _fail("usage", f"{exc} (see fabricctl --help)", EXIT_USAGE)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    out = cast(TextIO, _TerminalSafe(sys.stdout, json=args.json))
    try:
        code = _run_command(args, out)
        out.flush()
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run_command(args: argparse.Namespace, out: TextIO) -> int:
    try:
        if args.command == "policy" and args.policy_command == "check":
            return _run_offline(args, out)
        if args.command == "job" and args.job_command == "check":
            return cli_jobs.run_job_offline(args, out, _json)
        token = None
        if args.token_file is not None:
            try:
                token = args.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise UsageError(
                    f"cannot read --token-file {args.token_file}: {exc.strerror}"
                ) from None
        try:
            client = FabricClient(
                args.target, timeout=args.timeout, token=token, tls_ca=args.tls_ca
            )
        except OSError as exc:
            raise UsageError(f"cannot read --tls-ca {args.tls_ca}: {exc.strerror}") from None
        with client:
            return _run(client, args, out)
    except UsageError as exc:
        return _fail("usage", str(exc), EXIT_USAGE)
    except CommandFailed as exc:
        return _fail(exc.status, str(exc), EXIT_FAILED)
    except ApiContractError as exc:
        return _fail("PROTOCOL", str(exc), EXIT_FAILED)
    except grpc.RpcError as exc:
        code = exc.code()
        unreachable = code == grpc.StatusCode.UNAVAILABLE
        return _fail(
            code.name, exc.details() or "", EXIT_UNREACHABLE if unreachable else EXIT_FAILED
        )


if __name__ == "__main__":
    raise SystemExit(main())
