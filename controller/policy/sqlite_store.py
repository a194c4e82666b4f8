"""The embedded policy store: one SQLite file in the state directory.

Implements :class:`controller.policy.store.PolicyStore` with the standard
library's sqlite3: WAL journal with ``synchronous=FULL`` so a put is on disk
before it returns, one connection guarded by a lock so any thread may call
it, documents kept as the JSON of :func:`policy_to_dict`, and a ``meta``
table holding the schema version and the store revision (which survives
deletes, so versions never repeat). It refuses a file it does not
understand - corrupt, foreign, or written by a newer schema - with an error
naming the file, rather than guessing. It must not decide what is applied:
it only remembers what the controller accepted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from controller.errors import InvalidArgument, NotFound
from controller.policy.model import Policy
from controller.policy.parse import policy_from_dict, policy_to_dict
from controller.policy.store import (
    StoreClosed,
    StoreError,
    WatchCallback,
    Watchers,
    check_delete_version,
    check_expected_version,
    check_seed,
    check_storable,
)

__all__ = ["SCHEMA_VERSION", "SqlitePolicyStore"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    # version is the store revision of the policy's last write: unique by construction.
    "CREATE TABLE policies ("
    " name TEXT PRIMARY KEY, version INTEGER NOT NULL UNIQUE, document TEXT NOT NULL)",
)


class SqlitePolicyStore:
    """A :class:`PolicyStore` in the SQLite file ``path`` (created if missing)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._watchers = Watchers()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are begun explicitly (BEGIN IMMEDIATE)
            # so a read-modify-write never races another writer on the file.
            self._conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the policy store: {exc}") from exc
        try:
            self._open()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"{self.path}: not a readable policy store: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ schema

    def _open(self) -> None:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: WAL journal unavailable (journal_mode=%s)", self.path, mode)
        conn.execute("PRAGMA synchronous=FULL")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"{self.path}: the policy store is corrupt: {check}")
        with self._transaction():
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "meta" not in tables:
                if tables:
                    found = ", ".join(sorted(tables))
                    raise StoreError(f"{self.path}: not a policy store (it has tables {found})")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema_version", SCHEMA_VERSION), ("revision", 0)],
                )
                return
            schema = self._meta("schema_version")
            if schema > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {schema} is newer than this controller "
                    f"understands ({SCHEMA_VERSION}); run a newer controller or move the file"
                )
            if schema < 1:
                raise StoreError(f"{self.path}: invalid schema version {schema}")

    def _meta(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None or not isinstance(row[0], int):
            raise StoreError(f"{self.path}: the policy store has no valid {key}")
        return row[0]

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreClosed(f"{self.path}: the policy store is closed")
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.path}: {exc}") from exc
                raise

    # ------------------------------------------------------------------ rows

    def _decode(self, name: str, version: int, document: str) -> Policy:
        try:
            policy = policy_from_dict(json.loads(document), validate=False)
        except (ValueError, InvalidArgument) as exc:
            raise StoreError(f"{self.path}: stored policy {name!r} is unreadable: {exc}") from exc
        return replace(policy, version=version)

    def _current(self, conn: sqlite3.Connection, name: str) -> Policy | None:
        row = conn.execute(
            "SELECT version, document FROM policies WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else self._decode(name, row[0], row[1])

    def _write(self, conn: sqlite3.Connection, policy: Policy) -> Policy:
        revision = self._meta("revision") + 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (revision,))
        stored = replace(policy, version=revision)
        conn.execute(
            "INSERT INTO policies (name, version, document) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
            "document = excluded.document",
            (stored.name, revision, json.dumps(policy_to_dict(stored))),
        )
        return stored

    # ------------------------------------------------------------------ PolicyStore

    def get(self, name: str) -> Policy:
        with self._transaction(write=False) as conn:
            policy = self._current(conn, name)
        if policy is None:
            raise NotFound("policy", name)
        return policy

    def list(self) -> list[Policy]:
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT name, version, document FROM policies").fetchall()
            policies = [self._decode(name, version, doc) for name, version, doc in rows]
        return sorted(policies, key=lambda p: p.name)

    def put(self, policy: Policy, *, expected_version: int | None = None) -> Policy:
        check_storable(policy)
        with self._lock:
            with self._transaction() as conn:
                current = self._current(conn, policy.name)
                check_expected_version(policy.name, expected_version, current)
                stored = self._write(conn, policy)
            # Notified after COMMIT (the change is durable) and under the lock,
            # so watchers see revisions in order.
            self._watchers.notify(stored.name, stored, stored.version)
        return stored

    def delete(self, name: str, *, expected_version: int | None = None) -> int:
        with self._lock:
            with self._transaction() as conn:
                current = check_delete_version(name, expected_version, self._current(conn, name))
                revision = self._meta("revision") + 1
                conn.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (revision,))
                conn.execute("DELETE FROM policies WHERE name = ?", (name,))
            self._watchers.notify(name, None, revision)
        return current.version

    def revision(self) -> int:
        with self._transaction(write=False):
            return self._meta("revision")

    def watch(self, callback: WatchCallback) -> Callable[[], None]:
        return self._watchers.add(callback)

    def seed_if_empty(self, policies: Iterable[Policy]) -> bool:
        seed = check_seed(policies)
        with self._lock:
            with self._transaction() as conn:
                if self._meta("revision"):
                    return False
                stored = [self._write(conn, policy) for policy in seed]
            for policy in stored:
                self._watchers.notify(policy.name, policy, policy.version)
        return True

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> SqlitePolicyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
