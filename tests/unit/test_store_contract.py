"""The DocumentStore contract on the in-process stores (memory and SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.devtools.store_contract import DocumentStoreContract
from controller.store.documents import DocumentStore, StoreError
from controller.store.memory import MemoryStore
from controller.store.sqlite import SqliteStore


class TestMemoryStore(DocumentStoreContract):
    @pytest.fixture
    def docstore(self) -> Iterator[DocumentStore]:
        store = MemoryStore()
        yield store
        store.close()


class TestSqliteStore(DocumentStoreContract):
    @pytest.fixture
    def docstore(self, tmp_path: Path) -> Iterator[DocumentStore]:
        store = SqliteStore(tmp_path / "store.db")
        yield store
        store.close()


def test_watch_from_a_revision_older_than_what_is_kept_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SqliteStore(path) as store:
        store.put("job", "j1", {"n": 1})
        store.put("job", "j2", {"n": 2})
    with SqliteStore(path) as store:  # a reopened store keeps no change history
        with pytest.raises(StoreError, match="changes after revision 1 are no longer kept"):
            store.watch(lambda change: None, after_revision=1)
        seen: list[str] = []
        store.watch(lambda change: seen.append(change.name), after_revision=2)
        store.put("job", "j3", {"n": 3})
        assert seen == ["j3"]
