"""Moved to :mod:`controller.store.hosts` (hosts now live in the store).

Kept only so existing imports work until the runtime reads hosts through
:class:`controller.store.hosts.HostView`; then delete this module.
"""

from controller.store.hosts import load_hosts, save_hosts

__all__ = ["load_hosts", "save_hosts"]
