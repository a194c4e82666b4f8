"""A flow-level (fluid) simulator of AI collectives on leaf-spine fabrics.

Flows get max-min fair rates on the fabric's links and the hosts' NICs
(:mod:`.maxmin`), time advances from event to event (:mod:`.simulate`), and
paths come from the controller's own placement core (:mod:`.strategies`):
hash ECMP and per-flow least-utilized through the real
:class:`~controller.te.engineer.TrafficEngineer`, joint job placement through a
plug-in. Workloads (:mod:`.workload`) are ring and all-to-all collectives of one
or many jobs, background traffic, and link and spine failures. Run
``python -m benchmarks.fluidsim --help``.
"""
