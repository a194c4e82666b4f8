"""What every fabric view answers the same way: capacities, utilization, switch names.

Shared by the per-call :class:`~controller.routing.strategies.NetworkView` and
the long-lived :class:`~controller.routing.fabricstate.FabricState`, so both
substitute unknown capacities and resolve a policy's switch references alike.
Pure lookups over the attributes a view has.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.fabric.model import Dpid, LinkId, Path, dpid_str

__all__ = ["ViewBase"]


class ViewBase:
    """Mixin: needs ``names``, ``capacity``, ``load_bps``, ``unknown_capacity_bps``
    and ``_by_name`` (name -> dpid)."""

    names: Mapping[Dpid, str]
    capacity: Mapping[LinkId, float]
    load_bps: Mapping[LinkId, float]
    unknown_capacity_bps: float

    @property
    def _by_name(self) -> Mapping[str, Dpid]:
        raise NotImplementedError

    def capacity_of(self, lid: LinkId) -> float:
        """Capacity in bits/s; 0 or missing (unknown) stands as ``unknown_capacity_bps``."""
        cap = self.capacity.get(lid, 0.0)
        return cap if cap > 0 else self.unknown_capacity_bps

    def utilization(self, lid: LinkId, *, extra_bps: float = 0.0) -> float:
        """(measured load + ``extra_bps``) / capacity; never negative."""
        load = self.load_bps.get(lid, 0.0) + extra_bps
        return max(0.0, load) / self.capacity_of(lid)

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
