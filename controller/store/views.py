"""Typed views over a document store: one kind of object in, the same kind out.

A :class:`Codec` says how an object of one kind becomes a document body and
back, what its name is, and where its version goes; :class:`TypedView` then
offers get, list, compare-and-set put, delete and watch on those objects.
Policies, hosts, drains and jobs are all views over one
:class:`~controller.store.documents.DocumentStore`, so they share its
revision and its watch. A view must not decide anything about its objects
beyond "this is what was stored": validation belongs to the codec's
``check``, which runs before every write so the store only holds what can
be loaded back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from controller.errors import InvalidArgument
from controller.store.documents import Change, Document, DocumentStore, StoreError, check_kind

__all__ = ["Codec", "TypedView", "ItemCallback"]

T = TypeVar("T")

#: (name, the object as stored now or None if deleted, store revision of the change)
ItemCallback = Callable[[str, T | None, int], None]


def _unchecked(item: object) -> None:
    return None


def _unversioned(item: T, version: int) -> T:
    return item


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How objects of one kind are stored.

    ``from_body`` may raise ValueError, KeyError or TypeError on a body it
    cannot read; the view turns that into a :class:`StoreError` naming the
    document. ``with_version`` returns the object carrying its stored version
    (objects without a version field keep the default, which ignores it).
    """

    kind: str
    name_of: Callable[[T], str]
    to_body: Callable[[T], dict[str, Any]]
    from_body: Callable[[dict[str, Any]], T]
    with_version: Callable[[T, int], T] = _unversioned
    check: Callable[[T], None] = _unchecked

    def __post_init__(self) -> None:
        check_kind(self.kind)


class TypedView(Generic[T]):
    """Objects of ``codec.kind`` in ``store``. Thread-safe as the store is."""

    def __init__(self, store: DocumentStore, codec: Codec[T]) -> None:
        self.store = store
        self.codec = codec

    def decode(self, doc: Document) -> T:
        try:
            item = self.codec.from_body(doc.body)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreError(
                f"{self.store.describe()}: stored {doc.kind} {doc.name!r} is unreadable: {reason}"
            ) from None
        if self.codec.name_of(item) != doc.name:
            raise StoreError(
                f"{self.store.describe()}: stored {doc.kind} {doc.name!r} names itself "
                f"{self.codec.name_of(item)!r}"
            )
        return self.codec.with_version(item, doc.version)

    def get(self, name: str) -> T:
        return self.decode(self.store.get(self.codec.kind, name))

    def list(self) -> list[T]:
        return [self.decode(doc) for doc in self.store.list(self.codec.kind)]

    def put(self, item: T, *, expected_version: int | None = None) -> T:
        """Store ``item`` (after ``codec.check``); returns it with its new version."""
        self.codec.check(item)
        body = self.codec.to_body(item)
        doc = self.store.put(
            self.codec.kind, self.codec.name_of(item), body, expected_version=expected_version
        )
        return self.codec.with_version(item, doc.version)

    def delete(self, name: str, *, expected_version: int | None = None) -> int:
        return self.store.delete(self.codec.kind, name, expected_version=expected_version)

    def sync(self, items: Sequence[T]) -> int:
        """Make the stored objects of this kind exactly ``items``, in one write of what
        differs (puts and deletes together, checked first); returns how many documents
        changed (0: nothing written)."""
        kind = self.codec.kind
        stored = {doc.name: doc.body for doc in self.store.list(kind)}
        wanted: dict[str, dict[str, Any]] = {}
        for item in items:
            self.codec.check(item)
            wanted[self.codec.name_of(item)] = self.codec.to_body(item)
        puts = [(kind, n, body) for n, body in sorted(wanted.items()) if stored.get(n) != body]
        deletes = [(kind, n) for n in sorted(stored) if n not in wanted]
        if puts or deletes:
            self.store.batch(puts=puts, deletes=deletes)
        return len(puts) + len(deletes)

    def seed_if_empty(self, items: Sequence[T]) -> bool:
        """Store ``items`` if the store has never been written (all checked first)."""
        names: set[str] = set()
        for item in items:
            self.codec.check(item)
            name = self.codec.name_of(item)
            if name in names:
                raise InvalidArgument("name", f"{self.codec.kind} {name!r} given twice")
            names.add(name)
        return self.store.seed_if_empty(
            self.codec.kind, [(self.codec.name_of(i), self.codec.to_body(i)) for i in items]
        )

    def watch(
        self, callback: ItemCallback[T], *, after_revision: int | None = None
    ) -> Callable[[], None]:
        """Changes of this kind only, decoded; see :meth:`DocumentStore.watch`."""
        kind = self.codec.kind

        def on_change(change: Change) -> None:
            if change.kind != kind:
                return
            item = None if change.document is None else self.decode(change.document)
            callback(change.name, item, change.revision)

        return self.store.watch(on_change, after_revision=after_revision)
