"""Moved to :mod:`controller.store.policies` and :mod:`controller.store.sqlite`.

Kept only for imports not yet updated; delete it once the runtime opens its
state with :func:`controller.store.statedir.open_state_dir`.
"""

from controller.store.policies import SqlitePolicyStore
from controller.store.sqlite import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SqlitePolicyStore"]
