"""A :class:`DocumentStore` in memory: for tests and for running without state.

Same contract as the durable stores (one revision, compare-and-set, ordered
watch with replay), nothing remembered after the process ends. Bodies are
copied through JSON on the way in and out, exactly as a durable store would,
so a test on this store cannot pass by aliasing what a real store copies.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence

from controller.errors import NotFound
from controller.store.documents import (
    Body,
    Change,
    ChangeCallback,
    ChangeFeed,
    Document,
    StoreClosed,
    check_delete_version,
    check_expected_version,
    check_kind,
    check_name,
    encode_body,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._docs: dict[tuple[str, str], tuple[int, str]] = {}
        self._revision = 0
        self._closed = False
        self._feed = ChangeFeed(base_revision=0)

    def describe(self) -> str:
        return "the in-memory store"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the in-memory store is closed")

    @staticmethod
    def _doc(kind: str, name: str, version: int, text: str) -> Document:
        return Document(kind, name, version, json.loads(text))

    def get(self, kind: str, name: str) -> Document:
        check_kind(kind)
        with self._lock:
            self._check_open()
            found = self._docs.get((kind, name))
        if found is None:
            raise NotFound(kind, name)
        return self._doc(kind, name, *found)

    def list(self, kind: str) -> list[Document]:
        check_kind(kind)
        with self._lock:
            self._check_open()
            rows = sorted((n, v) for (k, n), v in self._docs.items() if k == kind)
        return [self._doc(kind, name, version, text) for name, (version, text) in rows]

    def put(
        self, kind: str, name: str, body: Body, *, expected_version: int | None = None
    ) -> Document:
        check_kind(kind)
        check_name(name)
        text = encode_body(body)
        with self._lock:
            self._check_open()
            current = self._docs.get((kind, name))
            check_expected_version(kind, name, expected_version, current and current[0])
            self._revision += 1
            self._docs[(kind, name)] = (self._revision, text)
            doc = self._doc(kind, name, self._revision, text)
            self._feed.publish([Change(kind, name, doc, self._revision)])
        return self._doc(kind, name, doc.version, text)

    def delete(self, kind: str, name: str, *, expected_version: int | None = None) -> int:
        check_kind(kind)
        with self._lock:
            self._check_open()
            current = self._docs.get((kind, name))
            version = check_delete_version(kind, name, expected_version, current and current[0])
            del self._docs[(kind, name)]
            self._revision += 1
            self._feed.publish([Change(kind, name, None, self._revision)])
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
        with self._lock:
            self._check_open()
            gone = [(k, n) for k, n in deletes if (k, n) in self._docs]
            if not encoded and not gone:
                return self._revision
            self._revision += 1
            rev = self._revision
            changes = []
            for kind, name, text in encoded:
                self._docs[(kind, name)] = (rev, text)
                changes.append(Change(kind, name, self._doc(kind, name, rev, text), rev))
            for kind, name in gone:
                del self._docs[(kind, name)]
                changes.append(Change(kind, name, None, rev))
            self._feed.publish(changes)
            return rev

    def revision(self) -> int:
        with self._lock:
            return self._revision

    def watch(
        self, callback: ChangeCallback, *, after_revision: int | None = None
    ) -> Callable[[], None]:
        with self._lock:
            self._check_open()
            return self._feed.subscribe(
                callback, after_revision=after_revision, where=self.describe()
            )

    def seed_if_empty(self, kind: str, documents: Iterable[tuple[str, Body]]) -> bool:
        seed = list(documents)
        with self._lock:
            self._check_open()
            if self._revision:
                return False
            self.batch(puts=[(kind, name, body) for name, body in seed])
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
