"""Policies over gRPC against the real controller process (issue: gRPC API and policies)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest

from controller.api import cli
from controller.api.client import FabricClient
from controller.devtools.process import wait_discovered, wait_until
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy

PIN_PORT = 5201


def _pinned(spine: str) -> Policy:
    import ipaddress

    return Policy(
        name="pin-test",
        priority=200,
        match=(
            FlowMatch(
                ip_proto=6,
                dst_ports=(PortRange(PIN_PORT, PIN_PORT),),
                src_hosts=(ipaddress.IPv4Network("10.0.1.1/32"),),
                dst_hosts=(ipaddress.IPv4Network("10.0.2.1/32"),),
            ),
        ),
        strategy=Strategy.PINNED,
        pinned_path=("leaf1", spine, "leaf2"),
        fallback=Strategy.LEAST_UTILIZED,
        description="pin h1 -> h2 TCP 5201",
    )


def _tx_bytes(fab, leaf: int, spine: int) -> int:
    return fab.port_counters(f"leaf{leaf}")[fab.uplink_port(leaf, spine)][3]


def _iperf(fab, seconds: int = 3) -> None:
    src, dst = fab.host(1, 1), fab.host(2, 1)
    server = fab.spawn(dst, f"iperf3 -s -1 -p {PIN_PORT}")
    time.sleep(0.4)
    client = fab.spawn(src, f"iperf3 -c {dst.IP()} -p {PIN_PORT} -t {seconds} -b 30M")
    assert fab.wait_pid(client, timeout=30) and fab.wait_pid(server, timeout=10)


@pytest.mark.parametrize("spine", [1, 2])
def test_pinned_policy_steers_real_traffic_and_delete_reverts(
    fabricd_factory, fabric_factory, spine
):
    fd = fabricd_factory("--link-capacity-mbps", "100")
    fab = fabric_factory(2, 2, 1, controller_port=fd.of_port)
    wait_discovered(fd, switches=4, links=8)
    time.sleep(1.5)
    assert fab.ping(fab.host(1, 1), fab.ip(2, 1), count=3) >= 2
    other = 3 - spine
    with FabricClient(fd.grpc_target, timeout=10) as client:
        applied = client.apply_policy(_pinned(f"spine{spine}"))
        assert applied.policy.version > 0
        before = (_tx_bytes(fab, 1, spine), _tx_bytes(fab, 1, other))
        _iperf(fab)
        carried = _tx_bytes(fab, 1, spine) - before[0]
        avoided = _tx_bytes(fab, 1, other) - before[1]
        assert carried > 5_000_000, f"pinned spine{spine} carried only {carried} bytes"
        assert avoided < 200_000, f"spine{other} carried {avoided} bytes of pinned traffic"
        # The ingress leaf's exact rule pins the path; the spines carry the flow by
        # their default routes and hold no rule of it.
        exact = [ln for ln in fab.dump_flows("leaf1").splitlines() if "priority=40000" in ln]
        assert any(f"tp_dst={PIN_PORT}" in ln for ln in exact), exact
        for k in (1, 2):
            assert f"tp_dst={PIN_PORT}" not in fab.dump_flows(f"spine{k}")
        listed = [f for f in client.list_flows(policy="pin-test")]
        assert listed and all(list(f.path) == ["leaf1", f"spine{spine}", "leaf2"] for f in listed)

        deleted = client.delete_policy("pin-test")
        assert deleted == applied.policy.version
        # Exact rules of the policy's flows and its trap are gone from every switch.
        wait_until(
            lambda: all(
                f"tp_dst={PIN_PORT}" not in fab.dump_flows(sw)
                for sw in ("leaf1", "spine1", "spine2")
            ),
            timeout=5,
            what="the pinned rules to be removed",
        )
        with pytest.raises(grpc.RpcError) as err:
            client.get_policy("pin-test")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    fd.assert_clean_log()


def test_policies_survive_restart_with_versions(fabricd_factory, tmp_path):
    fd = fabricd_factory()
    with FabricClient(fd.grpc_target, timeout=10) as client:
        seeded = {p.name: p.version for p in client.list_policies()}
        assert {"default", "ai-training"} <= set(seeded)
        # No fabric is connected: a policy naming switches would be refused.
        example = Policy(
            name="restart-test",
            priority=300,
            match=(FlowMatch(ip_proto=6, dst_ports=(PortRange(9000, 9099),)),),
            strategy=Strategy.WIDEST,
            description="kept across restarts",
        )
        stored = client.apply_policy(example).policy
        replaced = client.apply_policy(example, expected_version=stored.version).policy
        assert replaced.version > stored.version
        before = {p.name: p.version for p in client.list_policies()}
    state_dir = fd.state_dir
    assert fd.stop() == 0
    again = fabricd_factory(state_dir=state_dir, name="fabricd-2")
    with FabricClient(again.grpc_target, timeout=10) as client:
        after = {p.name: p.version for p in client.list_policies()}
        assert after == before
        assert client.get_policy(example.name).description == example.description
    again.assert_clean_log()


def test_a_policy_naming_switches_not_discovered_yet_is_unavailable(fabricd_factory, capsys):
    """Before discovery settles a switch name may still appear: UNAVAILABLE (retry), naming
    the field, and nothing stored; fabricctl says so on one line and exits 3."""
    fd = fabricd_factory("--lldp-interval", "10")  # settles 35 s after start: no race here
    with FabricClient(fd.grpc_target, timeout=10) as client:
        with pytest.raises(grpc.RpcError) as err:
            client.apply_policy(_pinned("spine2"))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert err.value.details().startswith(
            "policy.pinned_path[0]: unknown switch 'leaf1' (yet: the fabric is still being"
        )
        assert "pin-test" not in {p.name for p in client.list_policies()}
    example = Path(__file__).parents[2] / "policies" / "examples" / "pinned-example.yaml"
    code = cli.main(["--target", fd.grpc_target, "policy", "apply", str(example)])
    err_lines = capsys.readouterr().err.splitlines()
    assert code == cli.EXIT_UNREACHABLE
    assert len(err_lines) == 1 and err_lines[0].startswith(
        "fabricctl: UNAVAILABLE: policy.pinned_path[0]: unknown switch 'leaf1' (yet:"
    )
    fd.assert_clean_log()


def test_hundred_concurrent_clients(fabricd_factory):
    """100 clients call ListLinks and ApplyPolicy for 10 s: no errors, the last write wins."""
    fd = fabricd_factory()
    stop = time.monotonic() + 10.0
    errors: Counter[str] = Counter()
    last_written: dict[str, str] = {}
    calls = Counter()
    lock = threading.Lock()

    def worker(i: int) -> None:
        name = f"load-{i:03d}"
        with FabricClient(fd.grpc_target, timeout=30) as client:
            n = 0
            while time.monotonic() < stop:
                n += 1
                try:
                    if n % 2:
                        client.list_links()
                        kind = "list"
                    else:
                        desc = f"write {n}"
                        policy = Policy(
                            name=name,
                            priority=1000 + i,
                            match=(
                                FlowMatch(ip_proto=17, dst_ports=(PortRange(7000 + i, 7000 + i),)),
                            ),
                            strategy=Strategy.WIDEST,
                            description=desc,
                        )
                        client.apply_policy(policy)
                        with lock:
                            last_written[name] = desc
                        kind = "apply"
                    with lock:
                        calls[kind] += 1
                except grpc.RpcError as exc:
                    with lock:
                        errors[exc.code().name] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, f"unexpected errors: {dict(errors)} (calls: {dict(calls)})"
    assert calls["apply"] >= 100 and calls["list"] >= 100, dict(calls)
    with FabricClient(fd.grpc_target, timeout=10) as client:
        stored = {
            p.name: p.description for p in client.list_policies() if p.name.startswith("load-")
        }
    assert stored == last_written
    fd.assert_clean_log()
