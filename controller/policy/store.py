"""Moved to :mod:`controller.store.policies`; kept only for imports not yet updated.

``controller/policy/`` holds the policy schema and its rules, not storage.
Delete this module once the engine imports :mod:`controller.store.policies`.
"""

from controller.store.documents import StoreClosed, StoreError
from controller.store.policies import MemoryPolicyStore, PolicyStore, WatchCallback

__all__ = ["MemoryPolicyStore", "PolicyStore", "StoreClosed", "StoreError", "WatchCallback"]
