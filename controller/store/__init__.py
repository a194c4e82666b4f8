"""What fabricd remembers: policies, jobs, drains and hosts as versioned documents.

One store-wide revision, compare-and-set writes and ordered watches, in
memory, in a SQLite file in the state directory, or in etcd for a cluster.
See :mod:`controller.store.documents` for the contract.
"""
