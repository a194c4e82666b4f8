"""Several fabricd on one fabric: leader election on an etcd lease.

:mod:`controller.cluster.election` is the pure state machine,
:mod:`controller.cluster.etcd_backend` its etcd side,
:mod:`controller.cluster.runner` runs it in real time for the daemon.
"""
