"""The etcd store against a real etcd: the DocumentStore contract, then etcd's own duties."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from controller.devtools.etcd import EtcdMember
from controller.devtools.store_contract import DocumentStoreContract
from controller.policy.model import Policy
from controller.store.documents import Change, DocumentStore, StoreError, StoreUnavailable
from controller.store.etcd import ETCD_SCHEMA_VERSION, EtcdStore
from controller.store.etcdclient import EtcdClient, WatchEvent, b64
from controller.store.policies import PolicyView
from controller.store.uplinks import UplinkView


class TestEtcdStore(DocumentStoreContract):
    @pytest.fixture
    def docstore(self, etcd_server: EtcdMember, cluster_name: str) -> Iterator[DocumentStore]:
        store = EtcdStore(EtcdClient([etcd_server.url]), cluster=cluster_name)
        yield store
        store.close()


def test_two_nodes_share_one_store_and_see_each_others_writes(
    etcd_server: EtcdMember, cluster_name: str
) -> None:
    a = EtcdStore(EtcdClient([etcd_server.url]), cluster=cluster_name)
    b = EtcdStore(EtcdClient([etcd_server.url]), cluster=cluster_name)
    seen: list[Change] = []
    got = threading.Event()

    def record(change: Change) -> None:
        seen.append(change)
        got.set()

    try:
        b.watch(record)
        policy = PolicyView(a).put(Policy(name="p", priority=5))
        assert got.wait(10)
        assert PolicyView(b).get("p") == policy
        assert seen[0].name == "p" and seen[0].revision == policy.version
    finally:
        a.close()
        b.close()


def test_cluster_names_keep_stores_apart(etcd_server: EtcdMember, cluster_name: str) -> None:
    a = EtcdStore(EtcdClient([etcd_server.url]), cluster=cluster_name)
    b = EtcdStore(EtcdClient([etcd_server.url]), cluster=cluster_name + "x")
    try:
        a.put("job", "j", {"n": 1})
        assert b.list("job") == []
        assert b.seed_if_empty("policy", [("p", {})]) is True
    finally:
        a.close()
        b.close()


def test_another_schema_version_is_refused_with_one_line(
    etcd_server: EtcdMember, cluster_name: str
) -> None:
    client = EtcdClient([etcd_server.url])
    EtcdStore(client, cluster=cluster_name).close()
    client.call(
        "kv/put",
        {
            "key": b64(f"/{cluster_name}/schema"),
            "value": b64(json.dumps({"schema_version": ETCD_SCHEMA_VERSION + 1})),
        },
    )
    with pytest.raises(StoreError) as info:
        EtcdStore(client, cluster=cluster_name)
    text = str(info.value)
    assert "\n" not in text
    assert f"the stored schema version is {ETCD_SCHEMA_VERSION + 1}" in text
    assert "mixed versions are refused" in text


def test_unreachable_etcd_is_one_line_naming_the_endpoints() -> None:
    from controller.devtools.process import free_ports

    dead = [f"http://127.0.0.1:{port}" for port in free_ports(2)]
    with pytest.raises(StoreUnavailable) as info:
        EtcdStore(EtcdClient(dead, timeout=1.0), cluster="x")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"etcd cluster 'x' at {dead[0]},{dead[1]}: no etcd endpoint answered")


def test_watching_from_a_compacted_revision(etcd_server: EtcdMember, cluster_name: str) -> None:
    store = EtcdStore(EtcdClient([etcd_server.url]), cluster=cluster_name)
    try:
        store.put("job", "a", {"n": 0})
        mark = store.revision()
        store.put("job", "a", {"n": 1})
        compacted = store.revision()
        store.client.call("kv/compaction", {"revision": str(compacted)})
        # A subscriber cannot be brought up to date from a compacted revision.
        with pytest.raises(StoreError, match=f"changes after revision {mark} are no longer kept"):
            store.watch(lambda change: None, after_revision=mark)
        # The raw watch asks its owner to catch up, then goes on after that read.
        caught_up: list[int] = []
        names: list[str] = []
        got, resynced = threading.Event(), threading.Event()

        def on_compacted(revision: int) -> int:
            caught_up.append(revision)
            read_at = store.revision()  # what a fresh read of the documents would see
            resynced.set()
            return read_at

        def on_events(events: list[WatchEvent]) -> None:
            names.extend(e.kv.key.rsplit("/", 1)[-1] for e in events)
            got.set()

        watch = store.client.watch(
            f"/{cluster_name}/docs/",
            start_revision=mark,
            on_events=on_events,
            on_compacted=on_compacted,
        )
        try:
            assert resynced.wait(10)
            store.put("job", "b", {"n": 2})
            assert got.wait(10)
        finally:
            watch.stop()
        assert caught_up == [compacted]
        assert names == ["b"]
    finally:
        store.close()


def test_a_dead_first_endpoint_is_skipped(etcd_server: EtcdMember, cluster_name: str) -> None:
    from controller.devtools.process import free_port

    client = EtcdClient([f"http://127.0.0.1:{free_port()}", etcd_server.url], timeout=2.0)
    store = EtcdStore(client, cluster=cluster_name)
    try:
        doc = store.put("job", "j", {"n": 1}, expected_version=0)
        assert store.get("job", "j") == doc
        assert client.endpoints[1] == etcd_server.url
    finally:
        store.close()


def test_lost_uplinks_of_a_large_fabric_round_trip_between_nodes(
    etcd_server: EtcdMember, cluster_name: str
) -> None:
    """A spine lost at 64 x 512 leaves one lost uplink per leaf: more documents than one
    etcd transaction takes (128 operations), names with a '/' in them."""
    a = EtcdStore(EtcdClient([etcd_server.url]), cluster=cluster_name)
    b = EtcdStore(EtcdClient([etcd_server.url]), cluster=cluster_name)
    lost = {0x20000 + leaf: ((7, 0x10007),) for leaf in range(1, 301)}
    try:
        assert UplinkView(a).save(lost) == 300
        assert UplinkView(b).lost() == lost
        back = {d: ups for d, ups in lost.items() if d % 2}  # half the leaves' cables back
        assert UplinkView(b).save(back) == 150
        assert UplinkView(a).lost() == back
    finally:
        a.close()
        b.close()
