"""Where accepted policies live: the store interface and an in-memory store.

:class:`PolicyStore` is the whole contract the controller relies on, shaped
after etcd so a distributed store can replace the embedded one: a
store-wide revision that every write bumps, each stored policy carrying the
revision of its last write as its version (so versions never repeat, even
after a delete and re-create), compare-and-set on that version, and a watch
that reports every change in revision order. :class:`MemoryPolicyStore`
implements it for tests and for running without a state directory. The
store keeps only valid policies but must not apply them or resolve priority
conflicts: that is the caller's decision, made before the write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

from controller.errors import AlreadyExists, FabricError, InvalidArgument, NotFound, VersionConflict
from controller.policy.model import Policy
from controller.policy.validate import validate_policy

__all__ = [
    "WatchCallback",
    "PolicyStore",
    "StoreError",
    "StoreClosed",
    "Watchers",
    "check_expected_version",
    "check_delete_version",
    "check_storable",
    "check_seed",
    "MemoryPolicyStore",
]

log = logging.getLogger(__name__)

# (policy name, the policy as stored now or None if deleted, store revision of the change)
WatchCallback = Callable[[str, Policy | None, int], None]


class StoreError(FabricError):
    """The store cannot be opened or read (corrupt file, newer schema, I/O error)."""


class StoreClosed(StoreError):
    """An operation on a store after :meth:`PolicyStore.close`."""


class PolicyStore(Protocol):
    """Persistent, versioned policies. Every method is safe to call from any thread."""

    def get(self, name: str) -> Policy:
        """The stored policy (with its version); :class:`NotFound` if absent."""
        ...

    def list(self) -> list[Policy]:
        """Every stored policy, sorted by name."""
        ...

    def put(self, policy: Policy, *, expected_version: int | None = None) -> Policy:
        """Store ``policy`` and return it with its new version (the new revision).

        ``expected_version``: None = upsert; 0 = create only (:class:`AlreadyExists`);
        n > 0 = replace only if the stored version is n (:class:`VersionConflict`,
        or :class:`NotFound` if there is none). ``policy.version`` is ignored.
        """
        ...

    def delete(self, name: str, *, expected_version: int | None = None) -> int:
        """Delete ``name`` and return the version it had (:class:`NotFound`,
        :class:`VersionConflict` if ``expected_version`` is given and differs)."""
        ...

    def revision(self) -> int:
        """The store-wide revision: 0 for a store never written, +1 per write."""
        ...

    def watch(self, callback: WatchCallback) -> Callable[[], None]:
        """Call ``callback`` after each committed change, in revision order, on the
        writer's thread; it must return quickly. Returns the unsubscribe function."""
        ...

    def seed_if_empty(self, policies: Iterable[Policy]) -> bool:
        """On a store never written, store ``policies`` and return True; else do nothing.

        The files shipped in ``policies/`` are initial defaults, not a second truth:
        once a store has history, its content wins, even if everything was deleted.
        """
        ...

    def close(self) -> None: ...


def check_expected_version(name: str, expected: int | None, current: Policy | None) -> None:
    """Apply the compare-and-set rule of :meth:`PolicyStore.put` for one write."""
    if expected is None:
        return
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidArgument("expected_version", f"must be an integer >= 0, got {expected!r}")
    if expected == 0:
        if current is not None:
            raise AlreadyExists("policy", name)
        return
    if current is None:
        raise NotFound("policy", name)
    if current.version != expected:
        raise VersionConflict(name, expected, current.version)


def check_delete_version(name: str, expected: int | None, current: Policy | None) -> Policy:
    """The policy a delete removes, after the existence and compare-and-set checks."""
    if current is None:
        raise NotFound("policy", name)
    if expected is not None and current.version != expected:
        raise VersionConflict(name, expected, current.version)
    return current


def check_storable(policy: Policy) -> None:
    """Refuse an invalid policy: what the store holds must load back later."""
    validate_policy(policy)


def check_seed(policies: Iterable[Policy]) -> list[Policy]:
    """The seed policies as a list, all valid and uniquely named, or an error."""
    seed = list(policies)
    names: set[str] = set()
    for policy in seed:
        check_storable(policy)
        if policy.name in names:
            raise InvalidArgument("name", f"policy {policy.name!r} given twice")
        names.add(policy.name)
    return seed


class Watchers:
    """Subscribers to a store's changes. Not locked itself: stores call
    :meth:`notify` under their write lock so callbacks see revisions in order."""

    def __init__(self) -> None:
        self._callbacks: dict[int, WatchCallback] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def add(self, callback: WatchCallback) -> Callable[[], None]:
        with self._lock:
            token = self._next_id
            self._next_id += 1
            self._callbacks[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return unsubscribe

    def notify(self, name: str, policy: Policy | None, revision: int) -> None:
        with self._lock:
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            # The change is already committed; a failing watcher must not make
            # the writer believe it was not.
            try:
                callback(name, policy, revision)
            except Exception:
                log.exception("policy watch callback failed for %s at revision %d", name, revision)


class MemoryPolicyStore:
    """A :class:`PolicyStore` in memory (lost when the process ends)."""

    def __init__(self, policies: Iterable[Policy] = ()) -> None:
        self._lock = threading.RLock()
        self._policies: dict[str, Policy] = {}
        self._revision = 0
        self._closed = False
        self._watchers = Watchers()
        self.seed_if_empty(policies)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the policy store is closed")

    def get(self, name: str) -> Policy:
        with self._lock:
            self._check_open()
            policy = self._policies.get(name)
        if policy is None:
            raise NotFound("policy", name)
        return policy

    def list(self) -> list[Policy]:
        with self._lock:
            self._check_open()
            return [self._policies[name] for name in sorted(self._policies)]

    def put(self, policy: Policy, *, expected_version: int | None = None) -> Policy:
        check_storable(policy)
        with self._lock:
            self._check_open()
            check_expected_version(policy.name, expected_version, self._policies.get(policy.name))
            self._revision += 1
            stored = replace(policy, version=self._revision)
            self._policies[policy.name] = stored
            self._watchers.notify(policy.name, stored, self._revision)
        return stored

    def delete(self, name: str, *, expected_version: int | None = None) -> int:
        with self._lock:
            self._check_open()
            current = check_delete_version(name, expected_version, self._policies.get(name))
            del self._policies[name]
            self._revision += 1
            self._watchers.notify(name, None, self._revision)
        return current.version

    def revision(self) -> int:
        with self._lock:
            return self._revision

    def watch(self, callback: WatchCallback) -> Callable[[], None]:
        return self._watchers.add(callback)

    def seed_if_empty(self, policies: Iterable[Policy]) -> bool:
        seed = check_seed(policies)
        with self._lock:
            self._check_open()
            if self._revision:
                return False
            for policy in seed:
                self.put(policy)
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
