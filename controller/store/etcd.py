"""The store of a cluster: documents in etcd under ``/<cluster-name>/``.

Implements :class:`~controller.store.documents.DocumentStore` on etcd, so
every fabricd of a cluster reads and writes one state. Keys::

    /<cluster>/schema                     {"schema_version": 1}: mixed versions refuse to start
    /<cluster>/history                    rewritten by every write: "has this store been written"
    /<cluster>/docs/<kind>/<quoted name>  {"write": <id>, "body": {...}}

A document's version is its key's ``mod_revision`` and the store revision is
etcd's, so versions come from etcd's consensus and never repeat (they grow
by more than one per write when other keys change, e.g. leader election).
Compare-and-set is an etcd transaction on ``mod_revision`` (or
``create_revision == 0`` for create-only). A write whose answer was lost is
resolved by reading back its unique write id instead of being retried
blindly. Watches deliver changes on a watch thread, including this
process's own writes. This module must not elect anyone: leadership lives in
:mod:`controller.cluster`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, unquote

from controller.errors import NotFound, VersionConflict
from controller.store.documents import (
    KINDS,
    Body,
    Change,
    ChangeCallback,
    Document,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    check_delete_version,
    check_expected_version,
    check_kind,
    check_name,
    check_version_arg,
    decode_body,
    deliver,
    encode_body,
)
from controller.store.etcdclient import (
    EtcdClient,
    EtcdCompacted,
    EtcdOutcomeUnknown,
    EtcdWatch,
    KeyValue,
    WatchEvent,
    b64,
    prefix_end,
)

__all__ = ["ETCD_SCHEMA_VERSION", "EtcdStore", "check_cluster_name"]

ETCD_SCHEMA_VERSION = 1

_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_MAX_OPS = 120  # etcd refuses transactions of more than 128 operations by default


def check_cluster_name(name: str) -> str:
    if not _CLUSTER_NAME.fullmatch(name):
        raise StoreError(
            f"cluster name {name!r}: use 1-63 letters, digits, '.', '_' or '-' (key prefix)"
        )
    return name


def _put(key: str, value: str, lease: int = 0) -> dict[str, Any]:
    op: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        op["lease"] = str(lease)
    return {"request_put": op}


def _range(key: str) -> dict[str, Any]:
    return {"request_range": {"key": b64(key)}}


def _compare(key: str, target: str, value: int, result: str = "EQUAL") -> dict[str, Any]:
    field = {"CREATE": "create_revision", "MOD": "mod_revision"}[target]
    return {"key": b64(key), "target": target, "result": result, field: str(value)}


class EtcdStore:
    """Documents of cluster ``cluster`` in the etcd that ``client`` reaches.

    Opening checks the schema key (creating it on a new cluster) and fails with
    one line if etcd is unreachable or holds another schema version.
    """

    def __init__(self, client: EtcdClient, *, cluster: str = "fabric") -> None:
        self.client = client
        self.cluster = check_cluster_name(cluster)
        self.prefix = f"/{cluster}/"
        self._docs = self.prefix + "docs/"
        self._history = self.prefix + "history"
        self._closed = False
        self._watches: list[EtcdWatch] = []
        self._lock = threading.Lock()
        self._check_schema()

    def describe(self) -> str:
        return f"etcd cluster {self.cluster!r} at {self.client.describe()}"

    def _fail(self, exc: StoreError) -> StoreError:
        cls = StoreUnavailable if isinstance(exc, StoreUnavailable) else StoreError
        return cls(f"{self.describe()}: {exc}")

    def _check_schema(self) -> None:
        key = self.prefix + "schema"
        ours = json.dumps({"schema_version": ETCD_SCHEMA_VERSION})
        try:
            created, _, responses = self.client.txn(
                [_compare(key, "CREATE", 0)], [_put(key, ours)], [_range(key)], retry_ambiguous=True
            )
        except StoreError as exc:
            raise self._fail(exc) from None
        if created:
            return
        kvs = responses[0]["response_range"].get("kvs", [])
        stored = decode_body(KeyValue.from_json(kvs[0]).value, where=f"{self.describe()}: {key}")
        theirs = stored.get("schema_version")
        if theirs != ETCD_SCHEMA_VERSION:
            raise StoreError(
                f"{self.describe()}: the stored schema version is {theirs!r} but this "
                f"controller understands {ETCD_SCHEMA_VERSION}; run one controller version "
                "per cluster (mixed versions are refused)"
            )

    # ------------------------------------------------------------------ keys

    def _key(self, kind: str, name: str) -> str:
        return f"{self._docs}{kind}/{quote(name, safe='')}"

    def _parse_key(self, key: str) -> tuple[str, str] | None:
        kind, _, quoted = key[len(self._docs) :].partition("/")
        return (kind, unquote(quoted)) if kind in KINDS and quoted else None

    def _document(self, kv: KeyValue) -> Document:
        parsed = self._parse_key(kv.key)
        if parsed is None:
            raise StoreError(f"{self.describe()}: unexpected key {kv.key!r}")
        kind, name = parsed
        envelope = decode_body(kv.value, where=f"{self.describe()}: stored {kind} {name!r}")
        body = envelope.get("body")
        if not isinstance(body, dict):
            raise StoreError(f"{self.describe()}: stored {kind} {name!r} has no body")
        return Document(kind, name, kv.mod_revision, body)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"{self.describe()}: the store is closed")

    def _read(self, key: str, range_end: str | None = None) -> tuple[list[KeyValue], int]:
        self._check_open()
        try:
            return self.client.range(key, range_end)
        except StoreError as exc:
            raise self._fail(exc) from None

    # ------------------------------------------------------------------ DocumentStore

    def get(self, kind: str, name: str) -> Document:
        check_kind(kind)
        kvs, _ = self._read(self._key(kind, name))
        if not kvs:
            raise NotFound(kind, name)
        return self._document(kvs[0])

    def list(self, kind: str) -> list[Document]:
        check_kind(kind)
        start = f"{self._docs}{kind}/"
        kvs, _ = self._read(start, prefix_end(start))
        return sorted((self._document(kv) for kv in kvs), key=lambda d: d.name)

    def put(
        self, kind: str, name: str, body: Body, *, expected_version: int | None = None
    ) -> Document:
        check_kind(kind)
        check_name(name)
        check_version_arg(expected_version)
        text = encode_body(body)
        key = self._key(kind, name)
        write_id = uuid.uuid4().hex
        value = f'{{"write":"{write_id}","body":{text}}}'
        compare = []
        if expected_version == 0:
            compare = [_compare(key, "CREATE", 0)]
        elif expected_version:
            compare = [_compare(key, "MOD", expected_version)]
        ops = [_put(key, value), _put(self._history, "1")]
        ok, revision, current = self._write(key, compare, ops, lambda kv: _write_id(kv) == write_id)
        if not ok:
            check_expected_version(kind, name, expected_version, current)
            raise VersionConflict(name, expected_version or 0, current or 0, kind=kind)
        return Document(kind, name, revision, json.loads(text))

    def _write(
        self,
        key: str,
        compare: Sequence[dict[str, Any]],
        ops: Sequence[dict[str, Any]],
        applied: Callable[[KeyValue | None], bool],
    ) -> tuple[bool, int, int | None]:
        """Run a write transaction on ``key`` exactly once, within the client's timeout.

        When an attempt goes unanswered (sent, then timed out: typical while etcd
        elects a leader), the key is read back: ``applied(kv)`` says whether that
        state is our write. If not, the same transaction is sent again; its
        compare makes a late first attempt and the retry exclusive, and a failed
        compare is checked with ``applied`` too. Returns (succeeded, revision,
        the key's mod revision or None when the compare failed).
        """
        self._check_open()
        deadline = time.monotonic() + self.client.timeout
        while True:
            try:
                ok, revision, responses = self.client.txn(list(compare), list(ops), [_range(key)])
            except EtcdOutcomeUnknown as exc:
                kvs, revision = self._read(key)
                kv = kvs[0] if kvs else None
                if applied(kv):
                    return True, kv.mod_revision if kv else revision, None
                if time.monotonic() >= deadline:
                    raise StoreUnavailable(f"{self.describe()}: {exc}") from None
                continue
            except StoreError as exc:
                raise self._fail(exc) from None
            if ok:
                return True, revision, None
            kvs = responses[0]["response_range"].get("kvs", [])
            kv = KeyValue.from_json(kvs[0]) if kvs else None
            if applied(kv):  # an earlier, unanswered attempt of ours got through
                return True, kv.mod_revision if kv else revision, None
            return False, revision, kv.mod_revision if kv else None

    def delete(self, kind: str, name: str, *, expected_version: int | None = None) -> int:
        check_kind(kind)
        check_version_arg(expected_version)
        key = self._key(kind, name)
        ops = [{"request_delete_range": {"key": b64(key)}}, _put(self._history, "1")]
        for _ in range(5):
            kvs, _ = self._read(key)
            current = kvs[0].mod_revision if kvs else None
            version = check_delete_version(kind, name, expected_version, current)
            # Deleted (by us or anyone) counts as done; the compare on the version
            # read keeps a retried attempt from deleting a newer document.
            ok, _, now = self._write(
                key, [_compare(key, "MOD", version)], ops, lambda kv: kv is None
            )
            if ok:
                return version
            check_delete_version(kind, name, expected_version, now)
            if expected_version is not None:
                raise VersionConflict(name, expected_version, now or 0, kind=kind)
            # An unconditional delete raced an update: delete the newer version.
        raise StoreUnavailable(f"{self.describe()}: {kind} {name!r} kept changing; try again")

    def batch(
        self,
        *,
        puts: Sequence[tuple[str, str, Body]] = (),
        deletes: Sequence[tuple[str, str]] = (),
    ) -> int:
        ops = []
        for kind, name, body in puts:
            check_kind(kind)
            check_name(name)
            value = f'{{"write":"{uuid.uuid4().hex}","body":{encode_body(body)}}}'
            ops.append(_put(self._key(kind, name), value))
        present: set[str] = set()
        for kind in {k for k, _ in deletes}:
            start = f"{self._docs}{check_kind(kind)}/"
            present |= {kv.key for kv in self._read(start, prefix_end(start))[0]}
        for kind, name in deletes:
            key = self._key(kind, name)
            if key in present:
                ops.append({"request_delete_range": {"key": b64(key)}})
        if not ops:
            return self.revision()
        revision = 0
        for i in range(0, len(ops), _MAX_OPS):
            chunk = [*ops[i : i + _MAX_OPS], _put(self._history, "1")]
            self._check_open()
            try:
                # Unconditional writes: applying one twice changes nothing.
                _, revision, _ = self.client.txn([], chunk, retry_ambiguous=True)
            except StoreError as exc:
                raise self._fail(exc) from None
        return revision

    def revision(self) -> int:
        return self._read(self._history)[1]

    def seed_if_empty(self, kind: str, documents: Iterable[tuple[str, Body]]) -> bool:
        check_kind(kind)
        ops = [
            _put(
                self._key(kind, check_name(name)), f'{{"write":"seed","body":{encode_body(body)}}}'
            )
            for name, body in documents
        ]
        if len(ops) >= _MAX_OPS:
            raise StoreError(f"{self.describe()}: at most {_MAX_OPS - 1} seed documents")
        self._check_open()
        try:
            seeded, _, _ = self.client.txn(
                [_compare(self._history, "CREATE", 0)],
                [*ops, _put(self._history, "1")],
                retry_ambiguous=True,  # a repeat finds the history key and does nothing
            )
        except StoreError as exc:
            raise self._fail(exc) from None
        return seeded

    def watch(
        self, callback: ChangeCallback, *, after_revision: int | None = None
    ) -> Callable[[], None]:
        """Changes on a watch thread of this store, in revision order."""
        self._check_open()
        # What the subscriber knows, kept to bring it up to date after a compaction.
        known: dict[tuple[str, str], int] = {}
        try:
            kvs, revision = self.client.range(
                self._docs, prefix_end(self._docs), revision=after_revision or 0
            )
        except EtcdCompacted:
            raise StoreError(
                f"{self.describe()}: changes after revision {after_revision} are no longer "
                "kept (compacted); read the documents again"
            ) from None
        except StoreError as exc:
            raise self._fail(exc) from None
        for kv in kvs:
            doc = self._document(kv)
            known[(doc.kind, doc.name)] = doc.version
        start = (after_revision if after_revision is not None else revision) + 1

        def on_events(events: list[WatchEvent]) -> None:
            for event in events:
                parsed = self._parse_key(event.kv.key)
                if parsed is None:
                    continue
                doc = None if event.deleted else self._document(event.kv)
                if doc is None:
                    known.pop(parsed, None)
                else:
                    known[parsed] = doc.version
                deliver(callback, Change(*parsed, doc, event.kv.mod_revision))

        def on_compacted(_: int) -> int:
            kvs, revision = self.client.range(self._docs, prefix_end(self._docs))
            docs = {(d.kind, d.name): d for d in map(self._document, kvs)}
            changes = [
                Change(d.kind, d.name, d, d.version)
                for key, d in docs.items()
                if known.get(key) != d.version
            ] + [Change(k, n, None, revision) for (k, n) in known if (k, n) not in docs]
            for change in sorted(changes, key=lambda c: c.revision):
                deliver(callback, change)
            known.clear()
            known.update({key: d.version for key, d in docs.items()})
            return revision

        watch = self.client.watch(
            self._docs, start_revision=start, on_events=on_events, on_compacted=on_compacted
        )
        with self._lock:
            self._watches.append(watch)

        def unsubscribe() -> None:
            watch.stop()
            with self._lock:
                if watch in self._watches:
                    self._watches.remove(watch)

        return unsubscribe

    def close(self) -> None:
        with self._lock:
            self._closed = True
            watches, self._watches = self._watches, []
        for watch in watches:
            watch.stop()


def _write_id(kv: KeyValue | None) -> str | None:
    if kv is None:
        return None
    try:
        envelope = json.loads(kv.value)
    except ValueError:
        return None
    return envelope.get("write") if isinstance(envelope, dict) else None
