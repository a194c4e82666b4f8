"""The election backend on a real etcd: leases, the leader key, node-id keys.

Keys (beside the store's, under the same ``/<cluster>/`` prefix)::

    /<cluster>/leader              {"node_id": ...}, under the leader's lease
    /<cluster>/nodes/<node id>     {"instance": ...}, under each node's lease

Winning is a transaction "create the leader key if it does not exist", so
etcd's consensus, not ours, decides; the key's create revision is the
leader's generation. Every call has a short deadline (``timeout``) so a
tick never waits long on an unreachable etcd. This module must not decide
when to refresh or step down: :class:`~controller.cluster.election.Elector`
does.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from controller.cluster.election import LeaderRecord
from controller.store.documents import StoreError, decode_body
from controller.store.etcd import check_cluster_name
from controller.store.etcdclient import EtcdClient, KeyValue, b64

__all__ = ["EtcdElection"]


def _put(key: str, value: dict[str, Any], lease: int) -> dict[str, Any]:
    return {"request_put": {"key": b64(key), "value": b64(json.dumps(value)), "lease": str(lease)}}


def _absent(key: str) -> dict[str, Any]:
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


class EtcdElection:
    """:class:`~controller.cluster.election.ElectionBackend` on ``client``."""

    def __init__(self, client: EtcdClient, *, cluster: str, timeout: float = 0.5) -> None:
        self.client = client
        self.timeout = timeout
        prefix = f"/{check_cluster_name(cluster)}/"
        self.leader_key = prefix + "leader"
        self._nodes = prefix + "nodes/"

    def grant(self, ttl: int) -> tuple[int, int]:
        return self.client.lease_grant(ttl, timeout=self.timeout)

    def keepalive(self, lease: int) -> int:
        return self.client.lease_keepalive(lease, timeout=self.timeout)

    def register(self, node_id: str, instance: str, lease: int) -> str:
        key = self._nodes + quote(node_id, safe="")
        mine = {"instance": instance}
        # Creating twice is harmless (the second finds our own key), so an
        # unanswered attempt may be retried on another endpoint.
        created, _, responses = self.client.txn(
            [_absent(key)],
            [_put(key, mine, lease)],
            [{"request_range": {"key": b64(key)}}],
            retry_ambiguous=True,
            timeout=self.timeout,
        )
        if created:
            return instance
        kv = _first(responses)
        if kv is None:  # deleted in between: try again next tick
            raise StoreError(f"node id {node_id!r}: registration raced a delete")
        holder = str(decode_body(kv.value, where=key).get("instance", ""))
        if holder == instance and kv.lease != lease:
            # Our own key under a lease we gave up: move it to the current one.
            self.client.txn(
                [{"key": b64(key), "target": "MOD", "result": "EQUAL",
                  "mod_revision": str(kv.mod_revision)}],
                [_put(key, mine, lease)],
                retry_ambiguous=True,
                timeout=self.timeout,
            )  # fmt: skip
        return holder

    def leader(self) -> LeaderRecord | None:
        kvs, _ = self.client.range(self.leader_key, timeout=self.timeout)
        return _record(kvs[0]) if kvs else None

    def campaign(self, node_id: str, lease: int) -> LeaderRecord:
        won, revision, responses = self.client.txn(
            [_absent(self.leader_key)],
            [_put(self.leader_key, {"node_id": node_id}, lease)],
            [{"request_range": {"key": b64(self.leader_key)}}],
            retry_ambiguous=True,  # a repeat finds the key; the read below settles it
            timeout=self.timeout,
        )
        if won:
            return LeaderRecord(node_id, revision, lease)
        kv = _first(responses)
        if kv is None:
            raise StoreError("the leader key vanished during the campaign")
        return _record(kv)

    def resign(self, lease: int) -> None:
        self.client.lease_revoke(lease, timeout=self.timeout)


def _first(responses: list[dict[str, Any]]) -> KeyValue | None:
    kvs = responses[0]["response_range"].get("kvs", []) if responses else []
    return KeyValue.from_json(kvs[0]) if kvs else None


def _record(kv: KeyValue) -> LeaderRecord:
    node_id = str(decode_body(kv.value, where="the leader key").get("node_id", ""))
    return LeaderRecord(node_id, kv.create_revision, kv.lease)
