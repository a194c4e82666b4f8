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


def _mods(fd) -> float:
    return sum(fd.value("fabric_openflow_messages_sent_total", type=t) for t in _MODS)


_MODS = ("FlowMod", "GroupMod", "MeterMod")
_COUNTERS = ("duration=", "n_packets=", "n_bytes=", "idle_age=", "hard_age=")


def test_a_restart_on_four_spines_rewrites_nothing(fabricd_factory, fabric_factory):
    """The restarted controller holds default forwarding until it has found the fabric
    and compiles it once: the same rules, so not one flow, group or meter mod. (Compiled
    link by link as discovery finds them, every leaf's spread set grew back spine by
    spine: tens of flow and group mods here, hundreds of thousands at 64 x 512.)"""
    fd, fab = _four_spines(fabricd_factory, fabric_factory)
    time.sleep(1.0)
    _restart_rewrites_nothing(fd, fab, fabricd_factory, links=16)


def test_a_restart_after_a_lost_spine_rewrites_nothing(fabricd_factory, fabric_factory):
    """A spine's cables cut before the restart: each leaf's spread set is still named
    after all four uplinks (the lost one kept in the state directory), so the restarted
    controller finds every rule as it left it. (Named after the three that are up, it
    renamed every leaf's routes and sets: tens of flow and group mods here, hundreds of
    thousands at 64 x 512.) The lost spine, holding no route, may be read first."""
    fd, fab = _four_spines(fabricd_factory, fabric_factory)
    for leaf in ("leaf1", "leaf2"):
        fab.set_link(leaf, "spine4", up=False)
    wait_discovered(fd, switches=6, links=12)
    time.sleep(1.5)  # the forwarding without spine4 programmed, the lost uplinks saved
    assert fab.ping_mesh() == []
    _restart_rewrites_nothing(fd, fab, fabricd_factory, links=12)


def _four_spines(fabricd_factory, fabric_factory):
    """fabricd on 4 spines x 2 leaves, one host each, every host learned."""
    fd = fabricd_factory()
    fab = fabric_factory(4, 2, 1, controller_port=fd.of_port)
    wait_discovered(fd, switches=6, links=16)
    failed = fab.ping_mesh()  # hosts learned: every leaf has its routes (one retry: ARP)
    assert [(a, b) for a, b in failed if fab.ping(fab.net.get(a), fab.net.get(b).IP()) < 1] == []
    return fd, fab


def _restart_rewrites_nothing(fd, fab, fabricd_factory, *, links: int) -> None:
    """Stop ``fd``, start it again on its state directory: not one flow, group or meter
    mod, the same rules, every host still reaches every other."""
    before = {name: _rules(fab, name) for name in ("leaf1", "leaf2", "spine1")}
    assert fd.stop() == 0
    again = fabricd_factory(of_port=fd.of_port, state_dir=fd.state_dir, name="fabricd-restarted")
    wait_discovered(again, switches=6, links=links, timeout=20)
    time.sleep(6.0)  # past the hold (3 probe intervals) and the warm-up (4 s)
    sent = {t: again.value("fabric_openflow_messages_sent_total", type=t) for t in _MODS}
    assert _mods(again) == 0, sent
    assert {name: _rules(fab, name) for name in before} == before
    assert fab.ping_mesh() == []  # the hosts' ARP caches are warm now
    again.assert_clean_log()


def _rules(fab, switch: str) -> list[str]:
    """The switch's flow entries without their counters and ages."""
    keep = []
    for line in fab.dump_flows(switch).splitlines():
        fields = line.strip().split(", ")
        keep.append(", ".join(f for f in fields if not f.startswith(_COUNTERS)))
    return sorted(keep)
