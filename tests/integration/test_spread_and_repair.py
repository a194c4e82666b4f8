"""Default traffic spread by source port, and local repair of a spine's last hop.

Issue 10 item 6: with OpenFlow 1.3 SELECT groups Open vSwitch sent every UDP
flow from a leaf up one spine; the spread table must use several. Issue 13
item 14: a cut spine->leaf link used to lose an AI flow's packets until the
controller moved it (50-100 ms); with local repair the spine bounces them
back for another spine within milliseconds. Both are measured with the
feature off too, and printed side by side. Assertions are functional, with
generous bounds.
"""

from __future__ import annotations

import random
import time

from streams import RATE_PPS, roce_stream

from controller.api.client import FabricClient
from controller.devtools.process import wait_discovered, wait_until

CAP = 20  # Mbit/s on every leaf-spine link
PLAIN_PORT = 5001  # no policy but the catch-all governs it


def _ready(fabricd_factory, fabric_factory, spines, leaves, hosts, *flags, **kw):
    fd = fabricd_factory("--link-capacity-mbps", str(CAP), "--poll-interval", "0.5", *flags, **kw)
    fab = fabric_factory(spines, leaves, hosts, controller_port=fd.of_port, bw=CAP)
    wait_discovered(fd, switches=spines + leaves, links=2 * spines * leaves)
    time.sleep(1.5)  # edge ports become trusted after 2 LLDP intervals
    for j in range(1, leaves + 1):  # every host talks once: the controller learns all of them
        for i in range(1, hosts + 1):
            assert fab.ping(fab.host(j, i), fab.ip(1 + j % leaves, 1), count=2) >= 1
    return fd, fab


def _uplink_tx(fab, leaf: int, spines: int) -> dict[int, int]:
    counters = fab.port_counters(f"leaf{leaf}")
    return {k: counters[fab.uplink_port(leaf, k)][3] for k in range(1, spines + 1)}


def _spread_run(fd, fab, tmp_path, seed: int) -> tuple[dict[int, int], list[tuple[int, int]]]:
    """8 paced UDP flows leaf1 -> 4 hosts on leaf2/leaf3 from random ephemeral ports:
    (bytes each spine got from leaf1, [(sent, received)] per flow)."""
    rng = random.Random(seed)
    dsts = [fab.host(j, i) for j in (2, 3) for i in (1, 2)]
    sinks = [
        fab.start_sink(d, proto="udp", port=PLAIN_PORT, duration=9, workdir=str(tmp_path))
        for d in dsts
    ]
    time.sleep(0.3)
    before = _uplink_tx(fab, 1, 4)
    senders = [
        (
            k,
            i,
            fab.start_sender(
                fab.host(1, i),
                dst,
                proto="udp",
                port=PLAIN_PORT,
                sport=rng.randrange(32768, 61000),
                rate=1,
                size=500,
                duration=4,
                workdir=str(tmp_path),
                tag=i,
            ),
        )
        for k, dst in enumerate(dsts)
        for i in (1, 2)
    ]
    sent = {(k, i): fab.finish(h) for k, i, h in senders}
    got = [fab.finish(s) for s in sinks]
    after = _uplink_tx(fab, 1, 4)
    per_flow = [
        (report["packets"], got[k]["flows"].get(str(i), {}).get("packets", 0))
        for (k, i), report in sent.items()
    ]
    return {k: after[k] - before[k] for k in after}, per_flow


def test_default_udp_flows_from_one_leaf_use_several_spines(
    fabricd_factory, fabric_factory, tmp_path
):
    results = {}
    for spread in ("true", "false"):
        fd, fab = _ready(
            fabricd_factory,
            fabric_factory,
            4,
            3,
            2,
            "--spread-l4",
            spread,
            state_dir=tmp_path / f"state-{spread}",
            name=f"fabricd-spread-{spread}",
        )
        by_spine, per_flow = _spread_run(fd, fab, tmp_path, seed=10)
        used = sorted(k for k, b in by_spine.items() if b > 100_000)  # a flow is ~500 kB
        results[spread] = (used, by_spine)
        for sent, received in per_flow:
            assert received >= 0.97 * sent, (spread, per_flow)
        if spread == "true":
            assert len(used) > 1, f"all UDP flows left leaf1 on spine(s) {used}: {by_spine}"
            assert "goto_table:1" in fab.dump_flows("leaf1")
        fd.assert_clean_log()
        fab.stop()
        fd.stop()
    for spread, (used, by_spine) in results.items():
        print(f"\nspread-l4 {spread}: spines used {used}, bytes per spine {by_spine}")


def _cut_egress_link(fabricd_factory, fabric_factory, tmp_path, repair: str):
    """A 1000 pps RoCE flow leaf1 -> leaf2; its spine's link to leaf2 is cut mid-stream."""
    fd, fab = _ready(
        fabricd_factory,
        fabric_factory,
        2,
        2,
        1,
        "--local-repair",
        repair,
        state_dir=tmp_path / f"state-{repair}",
        name=f"fabricd-repair-{repair}",
    )
    with FabricClient(fd.grpc_target) as client:
        stream = roce_stream(fab, tmp_path, 8)
        flow = wait_until(
            lambda: next((f for f in client.list_flows() if f.five_tuple.dst_port == 4791), None),
            timeout=8,
            what="the RoCE flow placed",
        )
        spine = next(s for s in flow.path if s.startswith("spine"))
        time.sleep(2.0)
        fab.set_link(spine, "leaf2", up=False)
        sent, got = fab.finish_flow(stream)
        moved = next(f for f in client.list_flows() if f.five_tuple.dst_port == 4791)
    fd.assert_clean_log()
    fab.stop()
    fd.stop()
    return sent, got, spine, moved


def test_a_cut_spine_to_leaf_link_is_repaired_in_the_switches(
    fabricd_factory, fabric_factory, tmp_path
):
    measured = {}
    for repair in ("true", "false"):
        sent, got, spine, moved = _cut_egress_link(
            fabricd_factory, fabric_factory, tmp_path, repair
        )
        measured[repair] = (got["lost"], got["max_gap_s"] * 1000, sent["packets"])
        assert spine not in moved.path, f"the controller did not move the flow off {spine}"
        assert got["packets"] >= sent["packets"] - RATE_PPS // 2, (repair, got["lost"])
    for repair, (lost, gap_ms, total) in measured.items():
        print(
            f"\nlocal-repair {repair}: {lost} of {total} packets lost "
            f"({lost / RATE_PPS * 1000:.0f} ms at {RATE_PPS} pps), max gap {gap_ms:.0f} ms"
        )
    lost_with = measured["true"][0]
    assert lost_with <= 20 * RATE_PPS // 1000, f"{lost_with} packets (> 20 ms) lost with repair"


def test_a_spine_without_its_controller_leaves_no_trap_on_the_leaves_ports_to_it(
    fabricd_factory, fabric_factory
):
    """spine4 loses its controller connection; its ports stay up (fail-secure: it keeps
    forwarding by its tables). The leaves' ports to it carry no link any more, but they
    are lost uplinks, not edge ports: no class trap goes there (one would send the
    first packets of AI flows arriving from spine4 to the controller as new flows from
    a host), and every host still reaches every other. Reconnected, spine4 is used
    again."""
    fd, fab = _ready(fabricd_factory, fabric_factory, 4, 2, 1)
    spine4 = fab.net.get("spine4")
    target = spine4.vsctl("get-controller spine4").strip()
    uplink, host_port = fab.uplink_port(1, 4), fab.port_between("leaf1", "l1h1")
    assert _trapped_ports(fab, "leaf1") == {host_port}  # the policy's trap, at the host
    spine4.vsctl("del-controller spine4")
    wait_until(lambda: fd.value("fabric_switches_connected") == 5, timeout=20, what="spine4 gone")
    time.sleep(3.0)  # past the edge ports' grace (2 probe intervals), forwarding settled
    assert _trapped_ports(fab, "leaf1") == {host_port}, f"a trap on uplink {uplink}"
    assert fab.ping_mesh() == []
    spine4.vsctl(f"set-controller spine4 {target}")
    wait_discovered(fd, switches=6, links=16, timeout=30)
    assert fab.ping_mesh() == []
    fd.assert_clean_log()


def _trapped_ports(fab, switch: str) -> set[int]:
    """The in_ports of ``switch``'s entries that send packets to the controller from a
    port (the class traps)."""
    out = fab.net.get(switch).cmd(f"ovs-ofctl --no-names -O OpenFlow13 dump-flows {switch}")
    ports = set()
    for line in out.splitlines():
        if "CONTROLLER" in line and "in_port=" in line:
            ports.add(int(line.split("in_port=")[1].split(",")[0].split(" ")[0]))
    return ports
