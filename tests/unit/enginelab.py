"""EngineLab: the real engine driving a fake OpenFlow fabric built from a synthetic fabric.

The driver itself (:class:`~controller.devtools.enginedriver.EngineDriver`,
shared with the scale benchmark) plays the shim and the switches: it calls
exactly the engine methods the OpenFlow shim calls and applies what comes
back to :class:`~controller.devtools.fakeoftable.FakeFabric` tables, every
program twice (the second time must change nothing). The lab adds the
synthetic fabric's names: switches and cables by name, hosts on every leaf.
Time only moves when a test moves it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from synthetic import Fabric

from controller.devtools.enginedriver import (
    BASE_COOKIE,
    TRAP_COOKIE,
    EngineDriver,
    LabHost,
    SentProbe,
    arp_frame,
)
from controller.engine.engine import EngineConfig
from controller.fabric.model import Dpid, LinkId, PortRef
from controller.policy.model import Policy
from controller.store.documents import DocumentStore

__all__ = ["LabHost", "SentProbe", "EngineLab", "BASE_COOKIE", "TRAP_COOKIE", "arp_frame"]

# What changes a switch's tables (reads, barriers and packet-outs do not).
CHANGES = ("FlowAdd", "FlowDelete", "GroupAdd", "GroupModify", "GroupDelete", "MeterAdd")


class EngineLab(EngineDriver):
    """A :class:`FabricEngine` on a :class:`FakeFabric` built from a synthetic fabric.

    ``fabric`` is a :class:`synthetic.Fabric`; ``names`` renames switches (what
    they report as their bridge name); ``policies`` seed the engine's store.
    """

    def __init__(
        self,
        fabric: Fabric,
        *,
        hosts_per_leaf: int = 2,
        names: Mapping[str, str] | None = None,
        config: EngineConfig | None = None,
        policies: tuple[Policy, ...] = (),
        store: DocumentStore | None = None,
    ) -> None:
        self.fabric = fabric
        rename = names or {}
        host_ports: list[PortRef] = [
            fabric.host_port(leaf, i) for leaf in fabric.leaves for i in range(hosts_per_leaf)
        ]
        super().__init__(
            switches={d: rename.get(n, n) for d, n in fabric.names.items()},
            links=[attrs["link"] for _, _, attrs in fabric.graph.edges(data=True)],
            host_ports=host_ports,
            config=config,
            policies=policies,
            store=store,
        )

    def dpid(self, name: str) -> Dpid:
        return self.fabric.dpid(name)

    def changes_since(self, before: Counter[str]) -> dict[str, int]:
        """Flow, group and meter changes sent since ``before`` (``fake.mods()`` then)."""
        return {k: v for k, v in (self.fake.mods() - before).items() if k in CHANGES}

    def cable(self, a: str, b: str) -> LinkId:
        return self.fabric.link(a, b)

    def set_cable(self, a: str, b: str, *, up: bool) -> None:
        lid = self.cable(a, b)
        self.set_port(lid.src, up=up)
        self.set_port(lid.dst, up=up)
