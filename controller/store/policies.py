"""Policies in the store: the :class:`PolicyStore` interface the engine uses.

:class:`PolicyStore` is the contract the policy manager relies on (get,
list, compare-and-set put, delete, revision, ordered watch, seeding); it is
unchanged from when policies had a store of their own. :class:`PolicyView`
implements it over any :class:`~controller.store.documents.DocumentStore`,
so policies share one revision with jobs, drains and hosts, in SQLite, in
memory or in etcd. A stored policy's ``version`` is the revision of its last
write. The store keeps only valid policies but must not apply them or
resolve priority conflicts: that is the caller's decision, made before the
write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from controller.policy.model import Policy
from controller.policy.parse import policy_from_dict, policy_to_dict
from controller.policy.validate import validate_policy
from controller.store.documents import DocumentStore
from controller.store.memory import MemoryStore
from controller.store.sqlite import SqliteStore
from controller.store.views import Codec, ItemCallback, TypedView

__all__ = [
    "POLICY_CODEC",
    "PolicyStore",
    "PolicyView",
    "WatchCallback",
    "MemoryPolicyStore",
    "SqlitePolicyStore",
]

# (policy name, the policy as stored now or None if deleted, store revision of the change)
WatchCallback = ItemCallback[Policy]


def _policy_body(policy: Policy) -> dict[str, Any]:
    # The version lives in the store (the document's version), not in the body.
    return policy_to_dict(replace(policy, version=0))


def _policy_from_body(body: dict[str, Any]) -> Policy:
    # Stored policies were validated before they were written; re-validating at
    # each read would make a stricter future check unable to load old stores.
    return policy_from_dict(body, validate=False)


POLICY_CODEC: Codec[Policy] = Codec(
    kind="policy",
    name_of=lambda p: p.name,
    to_body=_policy_body,
    from_body=_policy_from_body,
    with_version=lambda p, version: replace(p, version=version),
    check=validate_policy,
)


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
        """The store-wide revision (grows with every write of any kind)."""
        ...

    def watch(
        self, callback: WatchCallback, *, after_revision: int | None = None
    ) -> Callable[[], None]:
        """Call ``callback`` after each committed policy change, in revision order
        (see :meth:`DocumentStore.watch`). Returns the unsubscribe function."""
        ...

    def seed_if_empty(self, policies: Iterable[Policy]) -> bool:
        """On a store never written, store ``policies`` together and return True.

        The files shipped in ``policies/`` are initial defaults, not a second truth:
        once a store has history, its content wins, even if everything was deleted.
        """
        ...

    def close(self) -> None: ...


class PolicyView(TypedView[Policy]):
    """A :class:`PolicyStore` over ``store``; ``close()`` closes the store only if
    the view ``owns`` it."""

    def __init__(self, store: DocumentStore, *, owns: bool = False) -> None:
        super().__init__(store, POLICY_CODEC)
        self._owns = owns

    def revision(self) -> int:
        return self.store.revision()

    def seed_if_empty(self, policies: Iterable[Policy]) -> bool:
        return super().seed_if_empty(list(policies))

    def close(self) -> None:
        if self._owns:
            self.store.close()


class MemoryPolicyStore(PolicyView):
    """A :class:`PolicyStore` in memory (lost when the process ends)."""

    def __init__(self, policies: Iterable[Policy] = ()) -> None:
        super().__init__(MemoryStore(), owns=True)
        self.seed_if_empty(policies)


class SqlitePolicyStore(PolicyView):
    """A :class:`PolicyStore` owning a :class:`SqliteStore` at ``path``."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(SqliteStore(path), owns=True)
        self.path = Path(path)

    def __enter__(self) -> SqlitePolicyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
