"""Bridges a dead fabric left in Open vSwitch's database are removed; a live one's never.

Open vSwitch keeps bridges across its own restarts, so a fabric whose process was
killed (or a machine stopped mid-run) would otherwise block every later fabric.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from mininet_topos.harness import (
    OWNER_KEY,
    clear_stale_bridges,
    clear_stale_ports,
    list_bridges,
    owner_tag,
)

BRIDGES = ("stale-t1", "stale-t2", "stale-t3")


def _vsctl(*args: str) -> None:
    subprocess.run(["ovs-vsctl", "--timeout=5", *args], check=True, capture_output=True)


@pytest.fixture
def bridges() -> Iterator[None]:
    for name in BRIDGES:
        _vsctl("--may-exist", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev")
    yield
    for name in BRIDGES:
        _vsctl("--if-exists", "del-br", name)


def test_only_bridges_of_dead_owners_are_removed(bridges: None) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    _vsctl("set", "bridge", "stale-t1", f"external_ids:{OWNER_KEY}={owner_tag(dead.pid)}")
    _vsctl("set", "bridge", "stale-t2", f"external_ids:{OWNER_KEY}={owner_tag()}")
    # stale-t3: no owner and no controller connected (left by an older harness)
    removed = clear_stale_bridges(list(BRIDGES))
    assert sorted(removed) == ["stale-t1", "stale-t3"]
    left = set(list_bridges())
    assert "stale-t2" in left and not {"stale-t1", "stale-t3"} & left


def test_a_reused_pid_is_not_its_old_owner(bridges: None) -> None:
    pid, _, start = owner_tag().partition(":")
    _vsctl("set", "bridge", "stale-t1", f"external_ids:{OWNER_KEY}={pid}:{int(start) - 1}")
    assert clear_stale_bridges(["stale-t1"]) == ["stale-t1"]


@pytest.fixture
def veths() -> Iterator[None]:
    subprocess.run(
        ["ip", "link", "add", "stale-t1-eth7", "type", "veth", "peer", "name", "stale-t9-eth1"],
        check=True,
    )
    try:
        subprocess.run(
            ["ip", "link", "add", "stale-t8-eth1", "type", "veth", "peer", "name", "stale-t8-x"],
            check=True,
        )
        yield
    finally:
        for name in ("stale-t1-eth7", "stale-t8-eth1"):
            subprocess.run(["ip", "link", "del", name], capture_output=True)


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_stale_switch_ports_of_the_named_switches_only_are_removed(veths: None) -> None:
    removed = clear_stale_ports({"stale-t1", "stale-t2"})
    assert removed == ["stale-t1-eth7"]  # its veth peer went with it
    left = _links()
    assert not {"stale-t1-eth7", "stale-t9-eth1"} & left
    assert "stale-t8-eth1" in left
