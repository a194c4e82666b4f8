"""Real etcd on loopback for the store and cluster tests (no Mininet, no root)."""

from controller.devtools.etcd_pytest import cluster_name, etcd_cluster, etcd_server

__all__ = ["cluster_name", "etcd_cluster", "etcd_server"]
