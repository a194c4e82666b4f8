"""Hosts, drains and lost uplinks as documents: one write per change, stable names, shared
revision."""

from __future__ import annotations

import pytest

from controller.fabric.model import Host, LinkId, PortRef
from controller.store.documents import Change, StoreError
from controller.store.drains import Drain, DrainView, drain_name
from controller.store.hosts import HostView
from controller.store.memory import MemoryStore
from controller.store.uplinks import UplinkView

H1 = Host(mac="02:00:00:00:00:01", ipv4="10.0.1.1", attach=PortRef(1, 3), last_seen=9.0)
H2 = Host(mac="02:00:00:00:00:02", ipv4=None, attach=PortRef(2, 3), last_seen=9.0)
UP = LinkId(PortRef(0x1, 1), PortRef(0x11, 4))
DOWN = LinkId(PortRef(0x11, 4), PortRef(0x1, 1))


def test_host_sync_writes_only_differences_in_one_revision() -> None:
    store = MemoryStore()
    hosts = HostView(store)
    changes: list[Change] = []
    store.watch(changes.append)
    assert hosts.sync([H1, H2]) == 2
    assert store.revision() == 1
    assert hosts.sync([H1, H2]) == 0  # nothing changed: nothing written
    assert store.revision() == 1
    moved = Host(mac=H2.mac, ipv4="10.0.2.2", attach=PortRef(2, 4), last_seen=1.0)
    assert hosts.sync([moved]) == 2  # H1 gone, H2 moved
    assert [(c.name, c.document is None) for c in changes[2:]] == [
        (H2.mac, False),
        (H1.mac, True),
    ]
    (restored,) = hosts.list()
    assert (restored.mac, restored.ipv4, restored.attach) == (H2.mac, "10.0.2.2", PortRef(2, 4))
    assert restored.last_seen == 0.0  # remembered, not seen


def test_drains_are_kept_by_dpid_and_port_with_their_label() -> None:
    store = MemoryStore()
    drains = DrainView(store)
    revision = drains.set_drained(
        [Drain(UP, "leaf1/1->spine1/4"), Drain(DOWN, "spine1/4->leaf1/1")], drained=True
    )
    assert drains.links() == {UP, DOWN}
    assert {d.version for d in store.list("drain")} == {revision}
    assert drain_name(UP) == "0000000000000001/1->0000000000000011/4"
    assert drains.get(drain_name(UP)).label == "leaf1/1->spine1/4"
    drains.set_drained([Drain(UP)], drained=False)
    assert drains.links() == {DOWN}


def test_lost_uplinks_are_kept_per_leaf_port_and_saved_as_a_difference() -> None:
    store = MemoryStore()
    uplinks = UplinkView(store)
    assert uplinks.lost() == {}
    assert uplinks.save({0x1001: [(4, 0x100004), (2, 0x100002)], 0x1002: [(4, 0x100004)]}) == 3
    assert uplinks.lost() == {0x1001: ((2, 0x100002), (4, 0x100004)), 0x1002: ((4, 0x100004),)}
    assert sorted(d.name for d in store.list("uplink")) == [
        "0000000000001001/2",
        "0000000000001001/4",
        "0000000000001002/4",
    ]
    revision = store.revision()
    assert uplinks.save(uplinks.lost()) == 0 and store.revision() == revision
    assert uplinks.save({0x1002: [(4, 0x100004)]}) == 2  # leaf 0x1001's came back
    assert uplinks.lost() == {0x1002: ((4, 0x100004),)}
    assert store.revision() == revision + 1  # both deletes in one write


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"dpid": "0000000000001001", "port": 0, "spine": "1"}, "port"),
        ({"dpid": "0000000000001001", "port": "2", "spine": "1"}, "port"),
        ({"dpid": "zz", "port": 2, "spine": "1"}, "invalid literal"),
        ({"dpid": "0000000000001001", "port": 2}, "spine"),
    ],
)
def test_an_unreadable_stored_uplink_is_named_in_one_line(body: dict, says: str) -> None:
    store = MemoryStore()
    store.put("uplink", "0000000000001001/2", body)
    with pytest.raises(StoreError, match=says) as err:
        UplinkView(store).lost()
    assert "uplink '0000000000001001/2'" in str(err.value) and "\n" not in str(err.value)
