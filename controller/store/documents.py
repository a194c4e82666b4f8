"""The store contract: named JSON documents of a few kinds under one revision.

Everything fabricd must remember - policies, jobs, drained links, learned
hosts - is a *document*: a JSON object with a kind and a name. A store keeps
them under one store-wide revision, shaped after etcd so the embedded and the
distributed stores are interchangeable: every write bumps the revision, a
document's version is the revision of its last write (so versions never
repeat, even after a delete and re-create), writes may be compare-and-set on
that version, and a watch reports every change in revision order.
This module holds the contract (:class:`DocumentStore`), the value types, the
compare-and-set rules and the change feed the in-process stores share. It must
not know what a document means: typed views (:mod:`controller.store.views`)
turn policies, hosts and drains into documents and back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.errors import AlreadyExists, FabricError, InvalidArgument, NotFound, Unavailable
from controller.errors import VersionConflict as VersionConflict

__all__ = [
    "KINDS",
    "Body",
    "Document",
    "Change",
    "ChangeCallback",
    "DocumentStore",
    "StoreError",
    "StoreClosed",
    "StoreDamaged",
    "StoreLocked",
    "StoreUnavailable",
    "ChangeFeed",
    "check_kind",
    "check_name",
    "encode_body",
    "decode_body",
    "check_expected_version",
    "check_version_arg",
    "check_delete_version",
    "deliver",
]

log = logging.getLogger(__name__)

#: The kinds of document fabricd keeps. A store refuses any other kind, so a
#: typo cannot create a shadow collection nobody reads.
KINDS = ("policy", "job", "jobplan", "drain", "host", "uplink", "node", "secret")

#: A document's content: a JSON object (str keys, JSON values).
Body = Mapping[str, Any]

# Names become file rows and etcd key segments; keep them printable and bounded.
_MAX_NAME = 512


class StoreError(FabricError):
    """The store cannot be opened, read or written. Messages are one line and
    name the store (file or etcd cluster), so a daemon can print them as is."""


class StoreClosed(StoreError):
    """An operation on a store after ``close()``."""


class StoreDamaged(StoreError):
    """The store lost data it is known to have committed (deleted or emptied
    file, lost write-ahead log, tampered meta data). Never started silently."""


class StoreLocked(StoreError):
    """Another live process holds the state directory."""


class StoreUnavailable(StoreError, Unavailable):
    """The store did not answer in time (e.g. no etcd endpoint reachable)."""


@dataclass(frozen=True)
class Document:
    """One stored document. ``body`` is a fresh JSON object: the store never
    hands out an object it keeps, so callers may not corrupt it by mutation."""

    kind: str
    name: str
    version: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """A committed write: ``document`` is the new content, or None for a delete."""

    kind: str
    name: str
    document: Document | None
    revision: int


ChangeCallback = Callable[[Change], None]


class DocumentStore(Protocol):
    """Versioned documents. Every method is safe to call from any thread."""

    def get(self, kind: str, name: str) -> Document:
        """The stored document; :class:`NotFound` if absent."""
        ...

    def list(self, kind: str) -> list[Document]:
        """Every stored document of ``kind``, sorted by name."""
        ...

    def put(
        self, kind: str, name: str, body: Body, *, expected_version: int | None = None
    ) -> Document:
        """Store ``body`` and return the document with its new version.

        ``expected_version``: None = upsert; 0 = create only (:class:`AlreadyExists`);
        n > 0 = replace only if the stored version is n (:class:`VersionConflict`,
        or :class:`NotFound` if there is none).
        """
        ...

    def delete(self, kind: str, name: str, *, expected_version: int | None = None) -> int:
        """Delete and return the version the document had (:class:`NotFound`;
        :class:`VersionConflict` if ``expected_version`` is given and differs)."""
        ...

    def batch(
        self,
        *,
        puts: Sequence[tuple[str, str, Body]] = (),
        deletes: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Unconditional writes committed together (absent deletes are ignored);
        returns the revision after them (unchanged if nothing was written)."""
        ...

    def revision(self) -> int:
        """The store-wide revision: at least every stored version; it grows with
        every write (0 for an embedded store never written)."""
        ...

    def watch(
        self, callback: ChangeCallback, *, after_revision: int | None = None
    ) -> Callable[[], None]:
        """Call ``callback`` for each committed change, in revision order, never
        concurrently with itself; it must return quickly. ``after_revision``:
        start with the changes after that revision (read a snapshot, note
        :meth:`revision`, then watch from it: nothing is missed or repeated);
        None = from now. Returns the unsubscribe function."""
        ...

    def seed_if_empty(self, kind: str, documents: Iterable[tuple[str, Body]]) -> bool:
        """On a store that has never been written, store ``documents`` together and
        return True; else do nothing and return False. Seeds are initial
        defaults, not a second truth: once a store has history, its content wins."""
        ...

    def describe(self) -> str:
        """Where the store lives, for messages (a file path, an etcd cluster)."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- checks


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument("name", "must be a non-empty string")
    if len(name) > _MAX_NAME:
        raise InvalidArgument("name", f"at most {_MAX_NAME} characters, got {len(name)}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidArgument("name", "control characters are not allowed")
    return name


def encode_body(body: Body) -> str:
    """Canonical JSON text of a body; refuses what would not load back the same."""
    if not isinstance(body, Mapping):
        raise InvalidArgument("body", f"must be a JSON object, got {type(body).__name__}")
    try:
        return json.dumps(body, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument("body", f"not storable as JSON: {exc}") from None


def decode_body(text: str | bytes, *, where: str) -> dict[str, Any]:
    """A stored body back as a dict; :class:`StoreError` naming ``where`` if it is not."""
    try:
        body = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{where} is unreadable: {exc}") from None
    if not isinstance(body, dict):
        raise StoreError(f"{where} is not a JSON object")
    return body


def check_expected_version(kind: str, name: str, expected: int | None, current: int | None) -> None:
    """The compare-and-set rule of :meth:`DocumentStore.put`; ``current`` is the
    stored version or None if there is no such document."""
    if expected is None:
        return
    check_version_arg(expected)
    if expected == 0:
        if current is not None:
            raise AlreadyExists(kind, name)
        return
    if current is None:
        raise NotFound(kind, name)
    if current != expected:
        raise VersionConflict(name, expected, current, kind=kind)


def check_version_arg(expected: int | None) -> None:
    """Refuse an ``expected_version`` that is neither None nor an integer >= 0."""
    if expected is None:
        return
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidArgument("expected_version", f"must be an integer >= 0, got {expected!r}")


def check_delete_version(kind: str, name: str, expected: int | None, current: int | None) -> int:
    """The version a delete removes, after the existence and compare-and-set checks."""
    if current is None:
        raise NotFound(kind, name)
    if expected is not None and current != expected:
        raise VersionConflict(name, expected, current, kind=kind)
    return current


# --------------------------------------------------------------------------- change feed


class ChangeFeed:
    """Subscribers of an in-process store, and its recent changes for replay.

    Stores call :meth:`publish` and :meth:`subscribe` under their write lock, so
    a subscriber replayed from revision R and then fed live sees every change
    after R exactly once, in order. The last ``keep`` changes are kept: enough
    for the moment between a snapshot and a subscription, not a history.
    """

    def __init__(self, *, base_revision: int, keep: int = 4096) -> None:
        self._callbacks: dict[int, ChangeCallback] = {}
        self._recent: deque[Change] = deque(maxlen=keep)
        # Every change after ``_floor`` is in ``_recent``: the store's revision at
        # open, raised as old changes are dropped.
        self._floor = base_revision
        self._next_id = 0
        self._lock = threading.Lock()

    def subscribe(
        self, callback: ChangeCallback, *, after_revision: int | None, where: str
    ) -> Callable[[], None]:
        if after_revision is not None and after_revision < self._floor:
            raise StoreError(
                f"{where}: changes after revision {after_revision} are no longer kept "
                f"(kept from {self._floor}); read the documents again"
            )
        if after_revision is not None:
            for change in [c for c in self._recent if c.revision > after_revision]:
                deliver(callback, change)
        with self._lock:
            token = self._next_id
            self._next_id += 1
            self._callbacks[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return unsubscribe

    def publish(self, changes: Iterable[Change]) -> None:
        changes = list(changes)
        for change in changes:
            if len(self._recent) == self._recent.maxlen:
                self._floor = self._recent[0].revision
            self._recent.append(change)
        with self._lock:
            callbacks = list(self._callbacks.values())
        for change in changes:
            for callback in callbacks:
                deliver(callback, change)


def deliver(callback: ChangeCallback, change: Change) -> None:
    """Call a watch callback, logging (never raising) what it throws."""
    # The change is already committed; a failing watcher must not make the
    # writer believe it was not.
    try:
        callback(change)
    except Exception:
        log.exception(
            "store watch callback failed for %s %r at revision %d",
            change.kind,
            change.name,
            change.revision,
        )
