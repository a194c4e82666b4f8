"""An honest in-memory JobsFacade on the API fake's two-leaf, two-spine fabric.

Jobs are validated with the project's job rules (unknown hosts against the
fake's host table), stored with the store's version semantics (each write
takes the next store-wide revision as its version; create-only and
compare-and-set), and placed with the real joint solver on a NetworkView
built from the fake's links, so the API is tested against the behaviour the
engine will have, not canned answers. Conflicts with pinned policies are
found with the real overlap rules. It installs no rules: that is the engine's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from dataclasses import replace

import networkx as nx
from api_fakes import NAMES, FakeFacade

from controller.api.jobs_facade import ApplyJobResult, JobConflictView, JobPairView, JobView
from controller.engine.views import HostView
from controller.errors import AlreadyExists, NotFound, VersionConflict
from controller.fabric.model import LinkId, Path
from controller.jobs.model import Job
from controller.jobs.validate import validate_job
from controller.policy.model import FlowMatch, Strategy
from controller.policy.overlap import matches_overlap
from controller.routing.strategies import NetworkView
from controller.te.joint import JointPlan, PairDemand, place_jointly

LINK_BPS = 10e9
EXTRA_HOSTS = (
    HostView(mac="00:00:00:00:00:03", ipv4="10.0.1.2", switch="leaf1", dpid=1, port=2),
    HostView(mac="00:00:00:00:00:04", ipv4="10.0.2.2", switch="leaf2", dpid=2, port=2),
)


class FakeJobsFacade(FakeFacade):
    """FakeFacade plus jobs: four hosts, two per leaf."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts = (*self.hosts, *EXTRA_HOSTS)
        self.jobs: dict[str, Job] = {}
        self.placed: dict[str, dict[Hashable, Path]] = {}
        self.revision = 0

    # ------------------------------------------------------------------ helpers
    def _view(self) -> NetworkView:
        graph = nx.DiGraph()
        graph.add_nodes_from(NAMES)
        for lv in self.links:
            graph.add_edge(lv.link.src.dpid, lv.link.dst.dpid, link=lv.link, port=lv.link.src.port)
        # Other jobs' reservations are background, as the engine counts them.
        load: dict[LinkId, float] = {}
        for name, paths in self.placed.items():
            demand = self.jobs[name].demand_bps(LINK_BPS)
            for path in paths.values():
                for lid in path.links:
                    load[lid] = load.get(lid, 0.0) + demand
        return NetworkView(
            graph=graph,
            capacity={lv.link: lv.capacity_bps for lv in self.links},
            load_bps=load,
            drained=frozenset(lv.link for lv in self.links if lv.drained),
            names=NAMES,
        )

    def _place(self, job: Job) -> tuple[JointPlan, float]:
        leaf = {h.ipv4: h.dpid for h in self.hosts}
        demand = job.demand_bps(LINK_BPS)
        pairs = [
            PairDemand(key=(src, dst), src=leaf[src], dst=leaf[dst], demand_bps=demand)
            for src, dst in job.flow_pairs()
        ]
        previous = self.placed.get(job.name, {})
        saved = self.placed.pop(job.name, None)  # the job's own paths are not background
        try:
            plan = place_jointly(pairs, self._view(), previous=previous)
        finally:
            if saved is not None:
                self.placed[job.name] = saved
        return plan, demand

    def _pairs(self, job: Job, paths: dict[Hashable, Path]) -> tuple[JobPairView, ...]:
        demand = job.demand_bps(LINK_BPS)
        out = []
        for src, dst in job.flow_pairs():
            path = paths.get((src, dst))
            names = tuple(NAMES[d] for d in path.switches) if path else ()
            out.append(JobPairView(src, dst, names, demand, placed=path is not None))
        return tuple(out)

    def _conflicts(self, job: Job) -> tuple[JobConflictView, ...]:
        out = []
        for policy in sorted(self.policies.values(), key=lambda p: p.name):
            if policy.strategy is not Strategy.PINNED:
                continue
            covered = 0
            for src, dst in job.flow_pairs():
                flow = FlowMatch(
                    ip_proto=job.match.ip_proto,
                    dst_ports=job.match.dst_ports,
                    src_hosts=(ipaddress.IPv4Network(f"{src}/32"),),
                    dst_hosts=(ipaddress.IPv4Network(f"{dst}/32"),),
                )
                covered += any(matches_overlap(alt, flow) for alt in policy.match)
            if covered:
                out.append(
                    JobConflictView(
                        policy.name, policy.priority, job.priority > policy.priority, covered
                    )
                )
        return tuple(out)

    # ------------------------------------------------------------------ JobsFacade
    def apply_job(
        self, job: Job, *, dry_run: bool = False, expected_version: int | None = None
    ) -> ApplyJobResult:
        self._enter("apply_job")
        validate_job(job, known_hosts={h.ipv4 for h in self.hosts})
        with self.lock:
            existing = self.jobs.get(job.name)
            if expected_version == 0 and existing is not None:
                raise AlreadyExists("job", job.name)
            if expected_version:
                if existing is None:
                    raise NotFound("job", job.name)
                if existing.version != expected_version:
                    raise VersionConflict(job.name, expected_version, existing.version, kind="job")
            plan, _ = self._place(job)
            paths = {p.key: p.path for p in plan.placements if p.path is not None}
            stored = replace(job, version=self.revision + 1)
            if not dry_run:
                self.revision += 1
                self.jobs[job.name] = stored
                self.placed[job.name] = paths
            changes = (
                (f"create job {job.name}",) if existing is None else (f"replace job {job.name}",)
            )
            return ApplyJobResult(
                job=stored,
                created=existing is None,
                dry_run=dry_run,
                pairs=self._pairs(job, paths),
                pairs_moved=len(plan.moved),
                max_utilization=plan.max_utilization,
                changes=changes,
            )

    def get_job(self, name: str) -> JobView:
        self._enter("get_job")
        with self.lock:
            job = self.jobs.get(name)
            if job is None:
                raise NotFound("job", name)
            return JobView(
                job=job,
                pairs=self._pairs(job, self.placed[name]),
                conflicts=self._conflicts(job),
            )

    def list_jobs(self) -> list[Job]:
        self._enter("list_jobs")
        with self.lock:
            return [self.jobs[n] for n in sorted(self.jobs)]

    def delete_job(self, name: str, *, expected_version: int | None = None) -> int:
        self._enter("delete_job")
        with self.lock:
            job = self.jobs.get(name)
            if job is None:
                raise NotFound("job", name)
            if expected_version is not None and expected_version != job.version:
                raise VersionConflict(name, expected_version, job.version, kind="job")
            del self.jobs[name]
            del self.placed[name]
            self.revision += 1
            return job.version
