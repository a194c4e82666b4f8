"""How long the largest policies the limits allow take to check and compile.

For each shape at the limits of :mod:`controller.policy.limits` it times, on
this machine: ``validate_policy`` (which counts flow entries), compiling every
alternative to OpenFlow matches (``of_matches``, what the engine does per
edge port), ``check_conflicts`` against a same-priority policy of the same
shape that overlaps it nowhere (the slowest case: every pair is compared), and
``check_rule_budget`` over a full book of 256 policies, and the conflict check
of a new policy against 255 same-priority policies. It also times the shape
from the hardening report (64 x 64 x 64 ports) being refused. Results
are printed and written to ``--out`` (default ``out/bench/``) as
``policy_limits.json``. Numbers, not pass/fail.

    python -m benchmarks.policy_limits [--out DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from controller.errors import InvalidArgument
from controller.flowprog.classmatch import of_matches
from controller.policy.limits import MAX_POLICIES, check_rule_budget, rule_entries
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy
from controller.policy.overlap import check_conflicts
from controller.policy.validate import validate_policy


def _ports(base: int, count: int, *, step: int = 2) -> tuple[PortRange, ...]:
    return tuple(PortRange(base + step * i, base + step * i) for i in range(count))


def _policy(name: str, match: tuple[FlowMatch, ...], *, priority: int = 100) -> Policy:
    return Policy(name=name, priority=priority, match=match, strategy=Strategy.LEAST_UTILIZED)


def one_wide_alternative(name: str, offset: int = 0) -> Policy:
    """64 source x 64 destination ports in one alternative: 4096 entries."""
    alternative = FlowMatch(
        ip_proto=17, src_ports=_ports(10000 + offset, 64), dst_ports=_ports(20000 + offset, 64)
    )
    return _policy(name, (alternative,))


def many_alternatives(name: str, offset: int = 0) -> Policy:
    """64 alternatives of 64 destination ports each: 4096 entries."""
    return _policy(
        name,
        tuple(
            FlowMatch(ip_proto=6, dst_ports=_ports(1000 + offset + 300 * a, 64, step=3))
            for a in range(64)
        ),
    )


def bulky(name: str, offset: int = 0) -> Policy:
    """64 alternatives whose lists have 64 entries that collapse: a big message, few entries."""

    def hosts(base: str) -> tuple[ipaddress.IPv4Network, ...]:
        start = ipaddress.IPv4Address(base) + offset * 256
        return tuple(ipaddress.IPv4Network(f"{start + k}/32") for k in range(64))

    alternative = FlowMatch(
        ip_proto=17,
        src_ports=tuple(PortRange(5000 + k, 5000 + k) for k in range(64)),
        dst_ports=tuple(PortRange(6000 + k, 6000 + k) for k in range(64)),
        src_hosts=hosts("10.1.0.0"),
        dst_hosts=hosts("10.2.0.0"),
    )
    return _policy(name, (alternative,) * 64)


def _timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _compile(policy: Policy) -> int:
    return sum(len(of_matches(m)) for m in policy.match)


def _refused(policy: Policy) -> None:
    try:
        validate_policy(policy)
    except InvalidArgument:
        return
    raise AssertionError("the reported shape must be refused")


def measure(repeat: int) -> dict[str, object]:
    shapes: dict[str, Callable[[str, int], Policy]] = {
        "one_alternative_64x64_ports": one_wide_alternative,
        "64_alternatives_x_64_ports": many_alternatives,
        "all_lists_full_collapsing": bulky,
    }
    results: dict[str, object] = {}
    for label, make in shapes.items():
        policy, rival = make("a", 0), make("b", 7)  # rival: same priority, shifted ports
        validate_policy(policy)
        results[label] = {
            "flow_entries": rule_entries(policy),
            "validate_ms": _timed(lambda p=policy: validate_policy(p), repeat),
            "compile_ms": _timed(lambda p=policy: _compile(p), repeat),
            "check_conflicts_ms": _timed(lambda p=policy, r=rival: _conflicts(p, r), repeat),
        }
    book = [
        _policy(f"p{i}", (FlowMatch(ip_proto=17, dst_ports=_ports(1000 + 4 * i, 64)),), priority=i)
        for i in range(MAX_POLICIES)
    ]
    # 256 policies x 64 entries = 16384: exactly the total limit, so the check passes.
    results["check_rule_budget_256_policies_ms"] = _timed(lambda: _budget(book), repeat)
    reported = _policy(
        "reported",
        tuple(
            FlowMatch(
                ip_proto=17, src_ports=_ports(10000, 64), dst_ports=_ports(20000 + 200 * a, 64)
            )
            for a in range(64)
        ),
    )
    results["refuse_reported_64x64x64_ms"] = _timed(lambda: _refused(reported), repeat)
    # The worst book for the conflict check: 255 policies at one priority with
    # 64 one-port alternatives each, against a new policy of 64 alternatives
    # of 64 interleaved ports (no pair overlaps, so every pair is compared).
    crowd = [
        _policy(
            f"c{p}",
            tuple(
                FlowMatch(ip_proto=17, dst_ports=_ports(10001 + 2 * ((p * 64 + a) % 20000), 1))
                for a in range(64)
            ),
        )
        for p in range(MAX_POLICIES - 1)
    ]
    newcomer = _policy(
        "new",
        tuple(FlowMatch(ip_proto=17, dst_ports=_ports(10000 + 128 * a, 64)) for a in range(64)),
    )
    results["check_conflicts_vs_255_policies_at_one_priority_ms"] = _timed(
        lambda: _conflicts(newcomer, *crowd), repeat
    )
    return results


def _conflicts(policy: Policy, *rivals: Policy) -> None:
    with contextlib.suppress(InvalidArgument):
        check_conflicts(policy, rivals)


def _budget(book: list[Policy]) -> None:
    with contextlib.suppress(InvalidArgument):
        check_rule_budget(book)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.policy_limits")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    doc = {
        "machine": {
            "python": platform.python_version(),
            "arch": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "date": time.strftime("%Y-%m-%d"),
        "results": measure(args.repeat),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "policy_limits.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
