"""A controller restart must not interrupt traffic that was flowing (fail-secure + reconcile)."""

from __future__ import annotations

import time

from controller.devtools.process import wait_discovered


def test_restart_keeps_traffic_flowing(fabricd_factory, fabric_factory, tmp_path):
    fd = fabricd_factory("--link-capacity-mbps", "20", "--poll-interval", "0.5")
    fab = fabric_factory(2, 2, 1, controller_port=fd.of_port, bw=20)
    wait_discovered(fd, switches=4, links=8)
    time.sleep(1.5)
    assert fab.ping(fab.host(1, 1), fab.ip(2, 1), count=2) >= 1
    assert fab.ping(fab.host(2, 1), fab.ip(1, 1), count=2) >= 1
    src, dst = fab.host(1, 1), fab.host(2, 1)
    # One AI flow (exact per-flow rules) and one default-policy flow (ECMP groups).
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
    time.sleep(3.0)
    flows_before = fab.dump_flows("leaf1")
    assert "udp_dst=4791" in flows_before or "tp_dst=4791" in flows_before
    assert fd.stop() == 0
    time.sleep(1.0)  # switches run headless (fail-secure) for a moment
    again = fabricd_factory(
        "--link-capacity-mbps",
        "20",
        "--poll-interval",
        "0.5",
        of_port=fd.of_port,
        state_dir=fd.state_dir,
        name="fabricd-restarted",
    )
    wait_discovered(again, switches=4, links=8, timeout=20)
    results = {name: fab.finish_flow(h) for name, h in (("ai", ai), ("plain", plain))}
    for name, (sent, got) in results.items():
        gap_ms = got["max_gap_s"] * 1000
        print(f"\n{name}: {got['lost']} lost of {sent['packets']}, max gap {gap_ms:.0f} ms")
        assert got["lost"] == 0, f"{name} flow lost {got['lost']} packets across the restart"
        assert got["packets"] == sent["packets"]
    # The restarted controller kept serving both kinds of traffic and adopted the fabric.
    assert again.value("fabric_switches_connected") == 4
    again.assert_clean_log()
