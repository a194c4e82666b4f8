"""The embedded store: one SQLite file in the state directory.

Implements :class:`~controller.store.documents.DocumentStore` with the
standard library's sqlite3: WAL journal with ``synchronous=FULL`` so a write
is on disk before it returns, one connection guarded by a lock so any thread
may call it, and a ``meta`` table holding the schema version and the store
revision (which survives deletes, so versions never repeat). Schema 1 (a
``policies`` table, before jobs, drains and hosts were stored) is migrated in
place at open. Opening refuses, with one line naming the file, anything it
does not fully understand: a corrupt or foreign file, a newer schema, a
damaged meta table, and - through the :class:`RevisionMarker` - a database
that lost commits it had acknowledged. It must not decide what is applied:
it only remembers what the controller accepted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from controller.errors import NotFound
from controller.store.documents import (
    KINDS,
    Body,
    Change,
    ChangeCallback,
    ChangeFeed,
    Document,
    StoreClosed,
    StoreDamaged,
    StoreError,
    check_delete_version,
    check_expected_version,
    check_kind,
    check_name,
    decode_body,
    encode_body,
)
from controller.store.marker import RevisionMarker

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    # version: the store revision of the document's last write. Documents written
    # by one batch share it, as keys written by one etcd transaction do.
    "CREATE TABLE documents (kind TEXT NOT NULL, name TEXT NOT NULL,"
    " version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, name))",
)

_MIGRATE_1_TO_2 = (
    _SCHEMA[1],
    "INSERT INTO documents (kind, name, version, body)"
    " SELECT 'policy', name, version, document FROM policies",
    "DROP TABLE policies",
    "UPDATE meta SET value = 2 WHERE key = 'schema_version'",
)


class SqliteStore:
    """A :class:`DocumentStore` in the SQLite file ``path`` (created if missing).

    ``<path>.committed`` beside it is its revision marker.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._closed = False
        self._pending: list[Change] = []  # changes of the write in progress (under _lock)
        self._marker = RevisionMarker(self.path.with_name(self.path.name + ".committed"))
        committed = self._marker.read()
        self._check_file_present(committed)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are begun explicitly (BEGIN IMMEDIATE)
            # so a read-modify-write never races another writer on the file.
            self._conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the store: {_one_line(exc)}") from None
        try:
            revision = self._open()
            if committed is not None and revision < committed:
                raise StoreDamaged(
                    f"{self.path}: the store is at revision {revision} but revision "
                    f"{committed} was committed: its write-ahead log ({self.path.name}-wal) "
                    "was lost or the file was replaced; restore both from a backup, or "
                    f"delete {self._marker.path.name} to start from what is left"
                )
            self._marker.write(revision)
        except sqlite3.Error as exc:
            self._abandon()
            raise StoreError(f"{self.path}: not a readable store: {_one_line(exc)}") from None
        except BaseException:
            self._abandon()
            raise
        self._feed = ChangeFeed(base_revision=revision)

    def describe(self) -> str:
        return str(self.path)

    def _abandon(self) -> None:
        self._conn.close()
        self._marker.close()

    def _check_file_present(self, committed: int | None) -> None:
        if not committed:
            return
        try:
            size: int | None = self.path.stat().st_size
        except FileNotFoundError:
            size = None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the store: {exc}") from None
        if not size:
            state = "missing" if size is None else "empty (0 bytes)"
            raise StoreDamaged(
                f"{self.path}: the store file is {state} but revision {committed} was "
                "committed to it; restore it from a backup, or delete "
                f"{self._marker.path.name} to start again from the default policies"
            )

    # ------------------------------------------------------------------ schema

    def _open(self) -> int:
        """Check (or create, or migrate) the schema; the store revision."""
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: WAL journal unavailable (journal_mode=%s)", self.path, mode)
        conn.execute("PRAGMA synchronous=FULL")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreDamaged(f"{self.path}: the store is corrupt: {_one_line(check)}")
        with self._transaction():
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "meta" not in tables:
                if tables:
                    found = ", ".join(sorted(tables))
                    raise StoreError(f"{self.path}: not a fabric store (it has tables {found})")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema_version", SCHEMA_VERSION), ("revision", 0)],
                )
                return 0
            schema = self._meta("schema_version")
            if schema > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {schema} is newer than this controller "
                    f"understands ({SCHEMA_VERSION}); run a newer controller or move the file"
                )
            if schema == 1 and tables == {"meta", "policies"}:
                for statement in _MIGRATE_1_TO_2:
                    conn.execute(statement)
                log.info("%s: migrated the store from schema 1 to %d", self.path, SCHEMA_VERSION)
            elif schema != SCHEMA_VERSION or tables != {"meta", "documents"}:
                raise StoreDamaged(
                    f"{self.path}: schema version {schema} with tables "
                    f"{', '.join(sorted(tables))} is not a layout this controller knows"
                )
            return self._check_contents()

    def _check_contents(self) -> int:
        """Refuse a store whose meta data disagrees with its documents: writing on
        would repeat versions or fail every write, after the daemon said SERVING."""
        revision = self._meta("revision")
        if revision < 0:
            raise StoreDamaged(f"{self.path}: the meta table is damaged (revision {revision})")
        rows = self._conn.execute("SELECT kind, name, version, body FROM documents").fetchall()
        for kind, name, version, body in rows:
            where = f"{self.path}: stored {kind} {name!r}"
            if kind not in KINDS or not isinstance(name, str):
                raise StoreDamaged(f"{where} is of an unknown kind")
            if not isinstance(version, int) or not 0 < version <= revision:
                raise StoreDamaged(
                    f"{where} has version {version!r} but the store revision is "
                    f"{revision}: the meta table is damaged; restore the file from a backup"
                )
            decode_body(body, where=where)
        return revision

    def _meta(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None or not isinstance(row[0], int) or isinstance(row[0], bool):
            shown = "missing" if row is None else repr(row[0])
            raise StoreDamaged(f"{self.path}: the meta table is damaged ({key} is {shown})")
        return int(row[0])

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreClosed(f"{self.path}: the store is closed")
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {_one_line(exc)}") from None
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.path}: {_one_line(exc)}") from None
                raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, then the revision marker, then the watchers."""
        with self._lock:
            self._pending = []
            with self._transaction() as conn:
                yield conn
            if self._pending:
                try:
                    self._marker.write(self._pending[-1].revision)
                except StoreError as exc:
                    # The commit is durable; a stale marker only weakens the check.
                    log.error("%s", exc)
                self._feed.publish(self._pending)

    def _bump(self, conn: sqlite3.Connection) -> int:
        revision = self._meta("revision") + 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (revision,))
        return revision

    def _store(self, conn: sqlite3.Connection, kind: str, name: str, text: str, rev: int) -> None:
        conn.execute(
            "INSERT INTO documents (kind, name, version, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, name) DO UPDATE SET version = excluded.version, "
            "body = excluded.body",
            (kind, name, rev, text),
        )
        doc = Document(kind, name, rev, json.loads(text))
        self._pending.append(Change(kind, name, doc, rev))

    def _version(self, conn: sqlite3.Connection, kind: str, name: str) -> int | None:
        row = conn.execute(
            "SELECT version FROM documents WHERE kind = ? AND name = ?", (kind, name)
        ).fetchone()
        return None if row is None else int(row[0])

    def _decode(self, kind: str, name: str, version: int, body: str) -> Document:
        return Document(
            kind, name, version, decode_body(body, where=f"{self.path}: {kind} {name!r}")
        )

    # ------------------------------------------------------------------ DocumentStore

    def get(self, kind: str, name: str) -> Document:
        check_kind(kind)
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT version, body FROM documents WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
        if row is None:
            raise NotFound(kind, name)
        return self._decode(kind, name, row[0], row[1])

    def list(self, kind: str) -> list[Document]:
        check_kind(kind)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT name, version, body FROM documents WHERE kind = ? ORDER BY name",
                (kind,),
            ).fetchall()
        return [self._decode(kind, name, version, body) for name, version, body in rows]

    def put(
        self, kind: str, name: str, body: Body, *, expected_version: int | None = None
    ) -> Document:
        check_kind(kind)
        check_name(name)
        text = encode_body(body)
        with self._write() as conn:
            current = self._version(conn, kind, name)
            check_expected_version(kind, name, expected_version, current)
            self._store(conn, kind, name, text, self._bump(conn))
            stored = self._pending[-1].document
        assert stored is not None
        return Document(kind, name, stored.version, json.loads(text))

    def delete(self, kind: str, name: str, *, expected_version: int | None = None) -> int:
        check_kind(kind)
        with self._write() as conn:
            current = self._version(conn, kind, name)
            version = check_delete_version(kind, name, expected_version, current)
            revision = self._bump(conn)
            conn.execute("DELETE FROM documents WHERE kind = ? AND name = ?", (kind, name))
            self._pending.append(Change(kind, name, None, revision))
        return version

    def batch(
        self,
        *,
        puts: Sequence[tuple[str, str, Body]] = (),
        deletes: Sequence[tuple[str, str]] = (),
    ) -> int:
        encoded = [(check_kind(k), check_name(n), encode_body(b)) for k, n, b in puts]
        for kind, _ in deletes:
            check_kind(kind)
        with self._write() as conn:
            gone = [(k, n) for k, n in deletes if self._version(conn, k, n) is not None]
            if not encoded and not gone:
                return self._meta("revision")
            revision = self._bump(conn)
            for kind, name, text in encoded:
                self._store(conn, kind, name, text, revision)
            for kind, name in gone:
                conn.execute("DELETE FROM documents WHERE kind = ? AND name = ?", (kind, name))
                self._pending.append(Change(kind, name, None, revision))
        return revision

    def revision(self) -> int:
        with self._transaction(write=False):
            return self._meta("revision")

    def watch(
        self, callback: ChangeCallback, *, after_revision: int | None = None
    ) -> Callable[[], None]:
        with self._lock:
            if self._closed:
                raise StoreClosed(f"{self.path}: the store is closed")
            return self._feed.subscribe(
                callback, after_revision=after_revision, where=self.describe()
            )

    def seed_if_empty(self, kind: str, documents: Iterable[tuple[str, Body]]) -> bool:
        check_kind(kind)
        seed = [(kind, check_name(name), encode_body(body)) for name, body in documents]
        with self._write() as conn:
            if self._meta("revision"):
                return False
            if seed:
                revision = self._bump(conn)
                for kind_, name, text in seed:
                    self._store(conn, kind_, name, text, revision)
        return True

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
                self._marker.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())
