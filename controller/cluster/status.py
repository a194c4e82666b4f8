"""How one node sees the controller cluster, as an immutable value for the API.

Built by the application from the election's state, the etcd endpoints' health
and the node records in the store; read by ``GetClusterStatus`` and
``fabricctl status``. Values only.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NodeInfo", "ClusterStatusView"]


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    grpc: str  # where its API listens
    leader: bool


@dataclass(frozen=True)
class ClusterStatusView:
    mode: str  # "single" or "etcd"
    role: str  # "single", "starting", "standby", "leader", "stopped"
    store: str = ""  # where the state lives, for people
    node_id: str = ""
    leader_id: str = ""
    generation_id: int = 0
    lease_id: int = 0
    lease_ttl_s: int = 0
    leader_changes: int = 0
    endpoints: tuple[tuple[str, bool, str], ...] = ()  # (url, healthy, why not)
    nodes: tuple[NodeInfo, ...] = ()
