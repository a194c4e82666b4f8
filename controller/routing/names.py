"""Switch names as policies and messages use them: labels, and names back to dpids.

Shared by the per-call :class:`~controller.routing.strategies.NetworkView` and
the long-lived :class:`~controller.routing.fabricstate.FabricState`, so both
resolve a policy's switch references the same way. Pure lookups.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.fabric.model import Dpid, Path, dpid_str

__all__ = ["NamedSwitches"]


class NamedSwitches:
    """Mixin: needs ``names`` (dpid -> name) and ``_by_name`` (name -> dpid)."""

    names: Mapping[Dpid, str]

    @property
    def _by_name(self) -> Mapping[str, Dpid]:
        raise NotImplementedError

    def label(self, dpid: Dpid) -> str:
        return self.names.get(dpid) or dpid_str(dpid)

    def dpid_of(self, ref: str) -> Dpid | None:
        """The switch a policy names: by switch name, else as a 16-hex-digit dpid."""
        dpid = self._by_name.get(ref)
        if dpid is not None:
            return dpid
        if len(ref) == 16:
            try:
                return int(ref, 16)
            except ValueError:
                return None
        return None

    def path_label(self, path: Path) -> str:
        return " -> ".join(self.label(d) for d in path.switches)
