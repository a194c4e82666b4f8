"""Several fabricd on one fabric through a real etcd: takeover, writes on any node, etcd faults.

Every bridge is connected to every controller (probe and back-off at 1 s); the
leader is OpenFlow MASTER, the standby SLAVE. Traffic is paced UDP with
sequence numbers, so "no packet lost" is counted, not assumed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from controller.api.client import FabricClient
from controller.devtools.etcd import TcpProxy
from controller.devtools.process import Fabricd, start_fabricd, wait_discovered, wait_until
from controller.policy.model import FlowMatch, Policy, PortRange, Strategy

FLAGS = ("--link-capacity-mbps", "20", "--poll-interval", "0.5", "--lldp-interval", "0.5")


def _node(tmp: Path, name: str, etcd: str, cluster: str) -> Fabricd:
    work = tmp / name
    work.mkdir()
    return start_fabricd(
        work,
        *FLAGS,
        "--cluster-etcd",
        etcd,
        "--cluster-name",
        cluster,
        "--node-id",
        name,
        name=name,
    )


def _leader(nodes: list[Fabricd], *, timeout: float = 10) -> Fabricd:
    return wait_until(
        lambda: next(
            (n for n in nodes if n.proc.poll() is None and n.value("fabric_cluster_leader") == 1),
            None,
        ),
        timeout=timeout,
        what="a leader elected",
    )


def _learn(fab) -> None:  # type: ignore[no-untyped-def]
    for j in (1, 2):
        assert fab.ping(fab.host(j, 1), fab.ip(3 - j, 1), count=2) >= 1


def _stop_all(nodes: list[Fabricd]) -> None:
    for n in nodes:
        n.stop()


@pytest.mark.timeout(240)
def test_kill_9_of_the_leader_hands_over_in_3_s_and_loses_no_packet(
    etcd_server, cluster_name, fabric_factory, tmp_path
) -> None:
    nodes = [_node(tmp_path, n, etcd_server.url, cluster_name) for n in ("a", "b")]
    try:
        fab = fabric_factory(2, 2, 1, controller_ports=[n.of_port for n in nodes], bw=20)
        leader = _leader(nodes)
        standby = next(n for n in nodes if n is not leader)
        wait_discovered(leader, switches=4, links=8)
        time.sleep(1.5)
        _learn(fab)
        roles = fab.connected_controllers("leaf1")
        assert sorted(roles.values()) == ["master", "slave"], roles
        src, dst = fab.host(1, 1), fab.host(2, 1)
        ai = fab.start_flow(
            src,
            dst,
            proto="udp",
            port=4791,
            sport=50001,
            rate=4,
            size=500,
            duration=16,
            workdir=str(tmp_path),
        )
        plain = fab.start_flow(
            src,
            dst,
            proto="udp",
            port=5001,
            sport=50002,
            rate=4,
            size=500,
            duration=16,
            workdir=str(tmp_path),
        )
        with FabricClient(leader.grpc_target) as client:
            wait_until(lambda: client.list_flows(), timeout=8, what="the AI flow placed")
        time.sleep(1.0)
        # The standby, a SLAVE, sees the fabric from the leader's probes (packet-ins
        # it asked the switches for) and reads the counters itself: it is warm.
        wait_discovered(standby, switches=4, links=8, timeout=10)
        killed_at = time.monotonic()
        os.kill(leader.proc.pid, signal.SIGKILL)
        leader.proc.wait(timeout=5)
        wait_until(
            lambda: standby.value("fabric_cluster_leader") == 1,
            timeout=10,
            interval=0.05,
            what="the standby to lead",
        )
        takeover = time.monotonic() - killed_at
        print(f"\ntakeover after kill -9: {takeover:.2f} s")
        wait_discovered(standby, switches=4, links=8, timeout=20)
        print(f"new leader had every link {time.monotonic() - killed_at:.2f} s after the kill")
        with FabricClient(standby.grpc_target) as client:
            flow = wait_until(
                lambda: next(
                    (f for f in client.list_flows() if f.five_tuple.dst_port == 4791), None
                ),
                timeout=15,
                what="the new leader to track the AI flow",
            )
            spine = next(s for s in flow.path if s.startswith("spine"))
            moved = client.drain_link(f"leaf1-{spine}")
            assert moved.flows_moved == 1
        results = {name: fab.finish_flow(h) for name, h in (("ai", ai), ("plain", plain))}
        for name, (sent, got) in results.items():
            gap_ms = got["max_gap_s"] * 1000
            print(f"{name}: {got['lost']} lost of {sent['packets']}, max gap {gap_ms:.0f} ms")
            assert got["packets"] == sent["packets"] and got["lost"] == 0, (name, sent, got)
        assert takeover < 3.0, f"the standby took {takeover:.2f} s to lead"
        assert sorted(fab.connected_controllers("leaf1").values()) == ["master"]
        standby.assert_clean_log()
    finally:
        _stop_all(nodes)


def _pin_policy(version: int = 0) -> Policy:
    return Policy(
        name="pin-7777",
        priority=300 + version,
        match=(FlowMatch(ip_proto=17, dst_ports=(PortRange(7777, 7777),)),),
        strategy=Strategy.PINNED,
        pinned_path=("leaf1", "spine2", "leaf2"),
        fallback=Strategy.LEAST_UTILIZED,
    )


@pytest.mark.timeout(180)
def test_a_policy_applied_through_the_standby_is_in_force_and_survives_a_leader_change(
    etcd_server, cluster_name, fabric_factory, tmp_path
) -> None:
    nodes = [_node(tmp_path, n, etcd_server.url, cluster_name) for n in ("a", "b")]
    try:
        fab = fabric_factory(2, 2, 1, controller_ports=[n.of_port for n in nodes])
        leader = _leader(nodes)
        standby = next(n for n in nodes if n is not leader)
        wait_discovered(leader, switches=4, links=8)
        time.sleep(1.5)
        with FabricClient(standby.grpc_target) as client:
            first = client.apply_policy(_pin_policy()).policy.version
            assert client.get_policy("pin-7777").version == first  # the standby followed
        wait_until(
            lambda: (
                "tp_dst=7777" in fab.dump_flows("leaf1")
                or "udp_dst=7777" in fab.dump_flows("leaf1")
            ),
            timeout=10,
            what="the policy's trap on leaf1 (programmed by the leader)",
        )
        leader.proc.send_signal(signal.SIGTERM)  # a clean leave: the lease is given back
        assert leader.proc.wait(timeout=10) == 0
        wait_until(
            lambda: standby.value("fabric_cluster_leader") == 1, timeout=10, what="a new leader"
        )
        with FabricClient(standby.grpc_target) as client:
            assert client.get_policy("pin-7777").version == first
            second = client.apply_policy(_pin_policy(1)).policy.version
        assert second > first
        wait_discovered(standby, switches=4, links=8, timeout=20)
        assert "7777" in fab.dump_flows("leaf1")
        assert standby.value("fabric_cluster_leader_changes_total") >= 1
    finally:
        _stop_all(nodes)


@pytest.mark.timeout(240)
def test_etcd_member_loss_is_survived_and_an_isolated_leader_stops_programming(
    etcd_cluster, cluster_name, fabric_factory, tmp_path
) -> None:
    proxies = {
        name: [TcpProxy(int(url.rsplit(":", 1)[1])) for url in etcd_cluster.endpoints]
        for name in ("a", "b")
    }
    nodes = [
        _node(tmp_path, name, ",".join(p.url for p in proxies[name]), cluster_name)
        for name in ("a", "b")
    ]
    try:
        fab = fabric_factory(2, 2, 1, controller_ports=[n.of_port for n in nodes])
        leader = _leader(nodes)
        other = next(n for n in nodes if n is not leader)
        wait_discovered(leader, switches=4, links=8)
        victim = (
            etcd_cluster.members[0]
            if etcd_cluster.members[0] is not etcd_cluster.leader()
            else etcd_cluster.members[1]
        )
        victim.kill()
        with FabricClient(other.grpc_target, timeout=10) as client:
            assert client.apply_policy(_pin_policy()).created  # forwarded, stored by 2 of 3
        assert leader.value("fabric_cluster_leader") == 1  # one member down changes nothing
        name = "a" if leader is nodes[0] else "b"
        cut_at = time.monotonic()
        for proxy in proxies[name]:
            proxy.cut()
        wait_until(
            lambda: leader.value("fabric_cluster_leader") == 0,
            timeout=6,
            interval=0.05,
            what="the isolated leader to step down",
        )
        stepped = time.monotonic() - cut_at
        wait_until(
            lambda: other.value("fabric_cluster_leader") == 1,
            timeout=10,
            what="the other node to lead",
        )
        wait_until(
            lambda: (
                sorted(fab.connected_controllers("leaf1").values()) == ["master", "slave"]
                and fab.connected_controllers("leaf1").get(f"tcp:127.0.0.1:{other.of_port}")
                == "master"
            ),
            timeout=10,
            what="the switches to take the new leader as master",
        )
        print(f"\nisolated leader stepped down {stepped:.2f} s after losing etcd")
        assert stepped < 2.5
    finally:
        _stop_all(nodes)
        for plist in proxies.values():
            for proxy in plist:
                proxy.close()
