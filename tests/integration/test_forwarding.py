"""Loop-free multipath forwarding on real Mininet leaf-spine fabrics (issue: foundation)."""

from __future__ import annotations

import random
import re
import time

import pytest

from controller.devtools.process import wait_discovered, wait_until


# A full ping mesh with one retry round allowed (ARP warm-up).
def _mesh_ok(fab) -> list[tuple[str, str]]:
    failed = fab.ping_mesh()
    if failed:
        failed = [
            (s, d) for s, d in failed if fab.ping(fab.net.get(s), fab.net.get(d).IP(), count=2) < 1
        ]
    return failed


@pytest.mark.parametrize(
    "shape", [(2, 4, 2), (3, 6, 2)], ids=["leafspine-2-4-2", "leafspine-3-6-2"]
)
def test_every_host_reaches_every_host_without_storm(fabricd_factory, fabric_factory, shape):
    spines, leaves, hosts = shape
    fd = fabricd_factory()
    fab = fabric_factory(spines, leaves, hosts, controller_port=fd.of_port)
    wait_discovered(fd, switches=spines + leaves, links=2 * spines * leaves)
    time.sleep(1.5)  # edge ports become trusted after 2 LLDP intervals

    before = _packet_ins(fd)
    failed = _mesh_ok(fab)
    assert failed == [], f"unreachable pairs: {failed}"
    after = _packet_ins(fd)

    n = leaves * hosts
    pairs = n * (n - 1)
    arp = after["arp"] - before["arp"]
    ipv4 = after["ipv4"] - before["ipv4"]
    # Each ordered pair costs at most one ARP request and one reply at the
    # controller (Linux caches what it learns from a request aimed at it);
    # anything circulating around the fabric's loops would be unbounded.
    assert arp <= 2 * pairs, f"{arp} ARP packet-ins for {pairs} pairs"
    # Unicast reaches the controller only before a route exists (first packets).
    assert ipv4 <= pairs, f"{ipv4} IPv4 packet-ins for {pairs} pairs"
    # ARP never reaches a spine: nothing relays it across the fabric.
    for k in range(1, spines + 1):
        flows = fab.dump_flows(f"spine{k}")
        arp_rule = [
            line for line in flows.splitlines() if "arp" in line and "priority=59000" in line
        ]
        assert arp_rule, f"spine{k} has no ARP trap rule:\n{flows}"
        assert "n_packets=0," in arp_rule[0], f"ARP arrived at spine{k}: {arp_rule[0]}"
    fd.assert_clean_log()


def _route_ports(fab, switch: str) -> set[int]:
    """Ports the host routes of ``switch`` forward to (through their groups too, and
    through the spread table, table 1, that routes over several next hops continue in)."""
    groups: dict[str, set[int]] = {}
    for line in (
        fab.net.get(switch)
        .cmd(f"ovs-ofctl --no-names -O OpenFlow13 dump-groups {switch}")
        .splitlines()
    ):
        m = re.search(r"group_id=(\d+)", line)
        if m:
            groups[m.group(1)] = {int(p) for p in re.findall(r"output:(\d+)", line)}
    ports: set[int] = set()
    for line in (
        fab.net.get(switch)
        .cmd(f"ovs-ofctl --no-names -O OpenFlow13 dump-flows {switch}")
        .splitlines()
    ):
        if "priority=20000" not in line and "table=1," not in line:
            continue
        ports |= {int(p) for p in re.findall(r"output:(\d+)", line)}
        for gid in re.findall(r"group:(\d+)", line):
            ports |= groups.get(gid, set())
    return ports


def _packet_ins(fd) -> dict[str, float]:
    return {
        kind: fd.value("fabric_packet_in_total", kind=kind)
        for kind in ("arp", "ipv4", "lldp", "other")
    }


def test_link_down_and_back(fabricd_factory, fabric_factory):
    fd = fabricd_factory()
    fab = fabric_factory(2, 4, 2, controller_port=fd.of_port)
    wait_discovered(fd, switches=6, links=16)
    time.sleep(1.5)
    assert _mesh_ok(fab) == []

    uplink = fab.uplink_port(1, 1)
    assert uplink in _route_ports(fab, "leaf1")
    fab.set_link("leaf1", "spine1", up=False)
    wait_discovered(fd, switches=6, links=14, timeout=10)
    wait_until(
        lambda: uplink not in _route_ports(fab, "leaf1"),
        timeout=5,
        what="leaf1's routes to stop using the down uplink",
    )
    assert _mesh_ok(fab) == [], "hosts unreachable after one uplink went down"

    fab.set_link("leaf1", "spine1", up=True)
    wait_discovered(fd, switches=6, links=16, timeout=15)
    wait_until(
        lambda: uplink in _route_ports(fab, "leaf1"),
        timeout=10,
        what="leaf1's routes to use the restored uplink",
    )

    def pings() -> None:
        for i in (1, 2):
            for j in (2, 3, 4):
                for h in (1, 2):
                    fab.ping(fab.host(1, i), fab.ip(j, h), count=3)

    # LLDP probes cross the uplink too: measure them alone over the same time first.
    started, quiet_before = time.monotonic(), fab.port_counters("leaf1")[uplink][1]
    time.sleep(4.0)
    lldp_rate = (fab.port_counters("leaf1")[uplink][1] - quiet_before) / (
        time.monotonic() - started
    )
    started, tx_before = time.monotonic(), fab.port_counters("leaf1")[uplink][1]
    pings()
    elapsed = time.monotonic() - started
    tx_after = fab.port_counters("leaf1")[uplink][1]
    pinged = tx_after - tx_before - lldp_rate * elapsed
    # 36 echo requests hashed over two uplinks: about 18 each; 6 proves routes use it.
    assert pinged >= 6, f"the restored uplink carried {pinged:.0f} packets beyond LLDP"
    fd.assert_clean_log()


def test_ecmp_spreads_tcp_flows_over_both_spines(fabricd_factory, fabric_factory):
    fd = fabricd_factory()
    fab = fabric_factory(2, 2, 1, controller_port=fd.of_port)
    wait_discovered(fd, switches=4, links=8)
    time.sleep(1.5)
    assert _mesh_ok(fab) == []
    src, dst = fab.host(1, 1), fab.host(2, 1)
    up1, up2 = fab.uplink_port(1, 1), fab.uplink_port(1, 2)
    both = False
    tries = []
    rng = random.Random(7)
    # Each try is an independent coin flip of the switch's hash (~50% to split):
    # 10 tries fail together with probability ~0.1%.
    for _ in range(10):
        servers = [fab.spawn(dst, f"iperf3 -s -1 -p {p}") for p in (5201, 5202)]
        time.sleep(0.5)
        before = fab.port_counters("leaf1")
        cports = rng.sample(range(30000, 60000), 2)
        clients = [
            fab.spawn(src, f"iperf3 -c {dst.IP()} -p {5201 + k} -t 2 -b 20M --cport {cports[k]}")
            for k in (0, 1)
        ]
        for pid in clients + servers:
            assert fab.wait_pid(pid, timeout=20), "iperf3 did not finish"
        after = fab.port_counters("leaf1")
        d1 = after[up1][3] - before[up1][3]
        d2 = after[up2][3] - before[up2][3]
        tries.append((d1, d2))
        # Each flow sends ~5 MB; a spine "carried traffic" when it sent > 1 MB.
        if d1 > 1_000_000 and d2 > 1_000_000:
            both = True
            break
    assert both, f"TCP flows never used both spines (tx bytes per uplink per try: {tries})"
    assert re.search(r"type=select", fab.dump_groups("leaf1"))
    fd.assert_clean_log()
