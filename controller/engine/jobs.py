"""JobManager: declared collectives, placed jointly and installed before their first packet.

A scheduler declares a job (its ranks, pattern and transport); the manager
solves the placement of all its pairs together (:mod:`controller.te.joint`),
counting measured load and the reservations of other jobs, installs rules
for every pair along its path make-before-break (so the job's packets never
reach the controller), and records the plan in the store. When a link the
job uses fails, is drained or becomes congested by other traffic, or a host
moves, the job is re-solved as a whole, keeping every pair whose path the new
optimum allows, and only the pairs that must move are moved. Pairs a pinned
policy of higher priority covers follow that policy instead.

Hub-owned, like the rest of the engine: no clocks, no threads; store writes
happen before anything is applied, so a refused write changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace

from controller.engine.connectivity import Connectivity
from controller.engine.jobviews import conflicts_of, covering_policy, pair_views
from controller.engine.outputs import EngineOutput, EventKind, Notice
from controller.engine.views import ApplyJobResult, JobView
from controller.errors import AlreadyExists, NotFound, VersionConflict
from controller.fabric.events import FabricEvent, HostLearned, HostMoved, LinkDown, LinkUp
from controller.fabric.model import Dpid, LinkId, Path, PortNo
from controller.flowprog.jobrules import PairRoute, compile_job, job_cookie, job_id
from controller.flowprog.plan import Program
from controller.jobs.model import HostPair, Job
from controller.jobs.validate import validate_job
from controller.policy.book import PolicyBook
from controller.routing.strategies import NetworkView
from controller.store.jobs import JobPlan, JobStore, PlanStore
from controller.te.joint import JointPlan, PairDemand, place_jointly

__all__ = ["JobManager", "JOB_DONE"]

log = logging.getLogger("fabricd.jobs")

JOB_DONE = "job-ready"  # Program.done_key kind of a job's placement


@dataclass
class _Placed:
    """What the manager knows of one job: its declaration and where its pairs run."""

    job: Job
    paths: dict[HostPair, Path]
    notes: dict[HostPair, str]
    generation: int = 0  # bumped at every re-placement
    confirmed: int = -1  # the generation whose rules the switches confirmed
    max_utilization: float = 0.0


class JobManager:
    def __init__(
        self,
        net: Connectivity,
        *,
        jobs: JobStore,
        plans: PlanStore,
        book: Callable[[], PolicyBook],
        view: Callable[[], NetworkView],
        settled: Callable[[float], bool],
        link_capacity_bps: float,
        now: float,
        failover: bool = True,
        local_repair: bool = True,
        next_hops: Callable[[Dpid, Dpid], tuple[PortNo, ...]],
    ) -> None:
        """``next_hops(src, dst)``: ports of ``src`` on a cheapest path to ``dst`` (the
        backup uplinks of a pair's ingress rule): the placement state's, which answers
        from two array rows instead of walking every link per destination."""
        self.net = net
        self._next_hops = next_hops
        self.store = jobs
        self.plans = plans
        self.book = book
        self.view = view
        self.settled = settled
        self.link_capacity_bps = link_capacity_bps
        self.failover = failover
        self.local_repair = local_repair
        saved = {p.name: dict(p.paths) for p in plans.list()}
        self._jobs: dict[str, _Placed] = {
            job.name: _Placed(job, saved.get(job.name, {}), {}) for job in jobs.list()
        }
        self._by_id = {job_id(name): name for name in self._jobs}
        self._pending: set[str] = set()  # to re-solve once the fabric settled
        net.listeners.append(self.on_fabric_events)
        # The stored plans are the desired state from the start: switches that kept
        # the rules through a restart reconcile without a single flow-mod.
        for placed in self._jobs.values():
            self._install(placed, now=now, reason="restore", persist=False)

    # ----------------------------------------------------------------- reads
    def __len__(self) -> int:
        return len(self._jobs)

    def jobs(self) -> list[Job]:
        return [self._jobs[n].job for n in sorted(self._jobs)]

    def view_of(self, name: str) -> JobView:
        placed = self._jobs.get(name)
        if placed is None:
            raise NotFound("job", name)
        return JobView(
            job=placed.job,
            pairs=pair_views(
                placed.job,
                placed.paths,
                placed.notes,
                self.net.topo,
                capacity_bps=self.link_capacity_bps,
                confirmed=placed.confirmed == placed.generation,
            ),
            conflicts=conflicts_of(placed.job, self.book()),
            max_utilization=placed.max_utilization,
        )

    # -------------------------------------------------------------- commands
    def apply(
        self, job: Job, *, dry_run: bool, expected_version: int | None, now: float
    ) -> tuple[ApplyJobResult, EngineOutput]:
        """Validate, place jointly, store and install ``job`` (or only say how, for a dry run)."""
        validate_job(job, known_hosts=self._known_ips())
        old = self._jobs.get(job.name)
        _check_version(job.name, expected_version, old.job if old else None)
        self._check_pairs_free(job)
        previous = dict(old.paths) if old else {}
        plan, notes = self._solve(job, previous)
        paths = _paths_of(plan)
        moved = sum(1 for key in plan.moved if key in previous)
        if dry_run:
            shown = replace(job, version=old.job.version if old else 0)
            views = pair_views(  # "placed" in a dry run: would be placed
                shown, paths, notes, self.net.topo, self.link_capacity_bps, confirmed=True
            )
            result = ApplyJobResult(
                shown, old is None, True, views, moved, plan.max_utilization, _changes(old, job)
            )
            return result, EngineOutput()
        stored = self.store.put(job, expected_version=expected_version)
        placed = _Placed(stored, paths, notes, generation=(old.generation + 1) if old else 0)
        placed.max_utilization = plan.max_utilization
        self._jobs[stored.name] = placed
        self._by_id[job_id(stored.name)] = stored.name
        out = self._install(placed, now=now, reason="job")
        # The facade answers only once the switches confirmed these rules.
        views = pair_views(
            stored, paths, notes, self.net.topo, self.link_capacity_bps, confirmed=True
        )
        result = ApplyJobResult(
            stored, old is None, False, views, moved, plan.max_utilization, _changes(old, job)
        )
        return result, out

    def delete(
        self, name: str, *, expected_version: int | None, now: float
    ) -> tuple[int, EngineOutput]:
        if name not in self._jobs:
            raise NotFound("job", name)
        version = self.store.delete(name, expected_version=expected_version)
        self.plans.delete(name)
        del self._jobs[name]
        self._by_id.pop(job_id(name), None)
        out = EngineOutput()
        out.add_program(self.net.prog.drop_owner(("job", name), now=now, reason="job-delete"))
        out.notices.append(
            Notice(EventKind.JOB_DELETED, name, attributes=(("version", str(version)),))
        )
        return version, out

    def confirmed(self, key: tuple[str, int, int]) -> list[Notice]:
        """The switches confirmed a job's program: the job is in place."""
        _, jid, generation = key
        name = self._by_id.get(jid)
        placed = self._jobs.get(name) if name else None
        if placed is None or placed.generation != generation or placed.confirmed == generation:
            return []  # stale, or a refresh of rules already in place
        placed.confirmed = generation
        kind = EventKind.JOB_PLACED if generation == 0 else EventKind.JOB_REPLACED
        return [
            Notice(
                kind,
                placed.job.name,
                attributes=(
                    ("version", str(placed.job.version)),
                    ("generation", str(generation)),
                    ("pairs", str(len(placed.paths))),
                ),
            )
        ]

    # -------------------------------------------------------------- reactions
    def on_fabric_events(self, events: list[FabricEvent], now: float) -> EngineOutput:
        down = {e.link for e in events if isinstance(e, LinkDown)}
        hosts = {e.ipv4 for e in events if isinstance(e, HostLearned | HostMoved) if e.ipv4}
        healed = any(isinstance(e, LinkUp) for e in events)
        names = [
            name
            for name, placed in sorted(self._jobs.items())
            if healed or _uses_any(placed, down) or (hosts and hosts & set(placed.job.hosts))
        ]
        return self.resolve(names, now=now, reason="failure" if down else "fabric")

    def on_links(self, links: Iterable[LinkId], *, now: float, reason: str) -> EngineOutput:
        """Links changed for placement (drained, undrained, congested): re-solve their jobs."""
        hot = set(links)
        names = [n for n, p in sorted(self._jobs.items()) if reason != "drain" or _uses_any(p, hot)]
        if reason == "congestion":
            names = [n for n in names if _uses_any(self._jobs[n], hot)]
        return self.resolve(names, now=now, reason=reason)

    def tick(self, *, now: float) -> EngineOutput:
        """Re-solve what changed while the fabric was settling (discovery, warm-ups)."""
        if not self._pending or not self.settled(now):
            return EngineOutput()
        names, self._pending = sorted(self._pending), set()
        return self.resolve(names, now=now, reason="settled")

    def resolve(self, names: Iterable[str], *, now: float, reason: str) -> EngineOutput:
        """Re-solve ``names`` as wholes; pairs keep their paths where the optimum allows.

        While the fabric settles (switches reconnecting, links being rediscovered)
        a half-known topology would move pairs for nothing: they wait.
        """
        if not self.settled(now):
            self._pending.update(names)
            return EngineOutput()
        out = EngineOutput()
        for name in names:
            if name not in self._jobs:
                continue
            placed = self._jobs[name]
            plan, notes = self._solve(placed.job, placed.paths)
            paths = _paths_of(plan)
            placed.max_utilization = plan.max_utilization
            if paths == placed.paths and notes == placed.notes:
                # Same plan; the rules still follow the topology (backup uplinks).
                out.merge(self._install(placed, now=now, reason=f"job-{reason}", persist=False))
                continue
            log.info("job %s re-placed (%s): %d pair(s) moved", name, reason, len(plan.moved))
            placed.paths, placed.notes = paths, notes
            placed.generation += 1
            out.merge(self._install(placed, now=now, reason=f"job-{reason}"))
        return out

    # -------------------------------------------------------------- internals
    def _known_ips(self) -> set[str]:
        return {h.ipv4 for h in self.net.topo.hosts.values() if h.ipv4}

    def _check_pairs_free(self, job: Job) -> None:
        """Two jobs may not claim the same pair with the same transport."""
        pairs = set(job.flow_pairs())
        for other in self._jobs.values():
            if other.job.name == job.name or other.job.match != job.match:
                continue
            shared = pairs & set(other.job.flow_pairs())
            if shared:
                src, dst = min(shared)
                raise AlreadyExists(
                    "job pair", f"{src}->{dst} ({other.job.name} already carries it)"
                )

    def _solve(
        self, job: Job, previous: dict[HostPair, Path]
    ) -> tuple[JointPlan, dict[HostPair, str]]:
        topo = self.net.topo
        book = self.book()
        demand = job.demand_bps(self.link_capacity_bps)
        pairs: list[PairDemand] = []
        notes: dict[HostPair, str] = {}
        for src, dst in job.flow_pairs():
            s, d = topo.host_by_ip(src), topo.host_by_ip(dst)
            if s is None or d is None:
                notes[(src, dst)] = f"host {src if s is None else dst} is not learned yet"
                continue
            winner = covering_policy(job, src, dst, book)
            if winner is not None:
                notes[(src, dst)] = f"follows pinned policy {winner} (higher priority)"
                continue
            pairs.append(PairDemand((src, dst), s.attach.dpid, d.attach.dpid, demand))
        view = self._background(job, previous, demand)
        prev: dict[Hashable, Path] = {k: v for k, v in previous.items()}
        plan = place_jointly(pairs, view, previous=prev)
        for key in plan.unplaced:
            src, dst = key  # type: ignore[misc]
            notes[(src, dst)] = "no path joins its hosts' switches"
        return plan, notes

    def _background(self, job: Job, own: dict[HostPair, Path], demand: float) -> NetworkView:
        """Load the job must share links with: measured traffic not its own, or what
        other jobs reserved, whichever is more (jobs declared but not started yet)."""
        view = self.view()
        measured = dict(view.load_bps)
        for path in own.values():
            for lid in path.links:
                measured[lid] = max(0.0, measured.get(lid, 0.0) - demand)
        reserved: dict[LinkId, float] = {}
        for other in self._jobs.values():
            if other.job.name == job.name:
                continue
            rate = other.job.demand_bps(self.link_capacity_bps)
            for path in other.paths.values():
                for lid in path.links:
                    reserved[lid] = reserved.get(lid, 0.0) + rate
        load = {lid: max(measured.get(lid, 0.0), reserved.get(lid, 0.0)) for lid in measured}
        for lid, value in reserved.items():
            load.setdefault(lid, value)
        return replace(view, load_bps=load)

    def _install(
        self, placed: _Placed, *, now: float, reason: str, persist: bool = True
    ) -> EngineOutput:
        """Program the job's rules for its current plan (only differences are sent);
        ``persist``: the plan changed and is written to the store first."""
        job = placed.job
        if persist:
            self.plans.put(JobPlan(job.name, tuple(sorted(placed.paths.items()))))
        routes = self._routes(placed)
        needs, order = compile_job(
            routes,
            transport=job.match,
            cookie=job_cookie(job.name, job.version),
            failover=self.failover,
            host_facing=self.net.topo.host_facing if self.local_repair else None,
            default_takes=self.net.default_takes,
        )
        program = self.net.prog.set_owner(
            ("job", job.name), needs, now=now, reason=reason, egress_first=order
        )
        program.created_at = now
        program.done_key = (JOB_DONE, job_id(job.name), placed.generation)
        out = EngineOutput()
        if program:
            out.programs.append(program)
        elif placed.confirmed != placed.generation:  # nothing to send: in place already
            out.notices += self.confirmed(program.done_key)
        return out

    def _routes(self, placed: _Placed) -> list[PairRoute]:
        topo = self.net.topo
        routes = []
        for (src, dst), path in sorted(placed.paths.items()):
            host = topo.host_by_ip(dst)
            if host is None:
                continue
            backup = self._next_hops(path.switches[0], host.attach.dpid)
            routes.append(PairRoute(src, dst, path, host.attach.port, backup))
        return routes


def _paths_of(plan: JointPlan) -> dict[HostPair, Path]:
    return {p.key: p.path for p in plan.placements if p.path is not None}  # type: ignore[misc]


def _uses_any(placed: _Placed, links: set[LinkId]) -> bool:
    return bool(links) and any(lid in links for p in placed.paths.values() for lid in p.links)


def _check_version(name: str, expected: int | None, current: Job | None) -> None:
    if expected is None:
        return
    if expected == 0 and current is not None:
        raise AlreadyExists("job", name)
    if expected > 0:
        if current is None:
            raise NotFound("job", name)
        if current.version != expected:
            raise VersionConflict(name, expected, current.version, kind="job")


def _changes(old: _Placed | None, new: Job) -> tuple[str, ...]:
    if old is None:
        return (f"create job {new.name} ({new.pair_count} flows, pattern {new.pattern.value})",)
    diffs = []
    for field in ("hosts", "pattern", "pairs", "match", "demand_mbps", "priority", "description"):
        if getattr(old.job, field) != getattr(new, field):
            diffs.append(f"{field} changed")
    return tuple(diffs) or ("no change",)


def program_key(program: Program) -> tuple[str, int, int] | None:
    """The job key of a confirmed program, or None if it is not a job's."""
    key = program.done_key
    return key if key is not None and key[0] == JOB_DONE else None
