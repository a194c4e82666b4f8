"""The job model: an AI collective a scheduler declares before it starts.

A :class:`Job` names its hosts in rank order (IPv4 addresses), the traffic
pattern between them (a ring, all-to-all, or explicit pairs), the transport
its flows use (a :class:`~controller.policy.model.FlowMatch` restricted to
``ip_proto`` and ``dst_ports``, the same types policies use), the rate each
flow wants and a priority. :meth:`Job.flow_pairs` expands the pattern into
the ordered (source, destination) host pairs the placement solves for.
Plain frozen values only: parsing, validation and storage live in
:mod:`controller.jobs.parse` and :mod:`controller.jobs.validate`; nothing here
knows the fabric or places anything.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from controller.policy.model import FlowMatch

__all__ = ["Pattern", "HostPair", "Job", "DEFAULT_JOB_PRIORITY", "pattern_pair_count"]

# Above the shipped policies (100), so a declared job wins over them unless an
# operator gives a policy a higher priority on purpose.
DEFAULT_JOB_PRIORITY = 1000

HostPair = tuple[str, str]  # (source IPv4, destination IPv4)


class Pattern(enum.Enum):
    """Which host pairs of a job exchange traffic."""

    RING = "ring"  # hosts[i] -> hosts[i + 1], the last -> the first
    ALL_TO_ALL = "all-to-all"  # every host -> every other host
    PAIRS = "pairs"  # the explicit list in Job.pairs

    @classmethod
    def parse(cls, text: str) -> Pattern:
        """Pattern from its name (``all-to-all``, ``all_to_all``, ``ALL_TO_ALL``)."""
        norm = text.strip().lower().replace("_", "-")
        for member in cls:
            if member.value == norm:
                return member
        raise ValueError(f"unknown pattern {text!r}; expected one of {[m.value for m in cls]}")


def pattern_pair_count(pattern: Pattern, hosts: int, pairs: int = 0) -> int:
    """How many flows ``pattern`` makes between ``hosts`` ranks, without listing them."""
    if pattern is Pattern.RING:
        return hosts if hosts >= 2 else 0
    if pattern is Pattern.ALL_TO_ALL:
        return hosts * (hosts - 1)
    return pairs


@dataclass(frozen=True)
class Job:
    """A named, versioned collective of AI flows, placed jointly.

    ``hosts`` are IPv4 addresses in rank order; ``pairs`` is used only by
    :attr:`Pattern.PAIRS`. ``match`` says which packets between a pair belong
    to the job (``ip_proto`` and ``dst_ports``; the other match fields stay
    empty: the hosts are the job's own). ``demand_mbps`` is the rate of each
    flow; None means "as much as a link carries" (the link capacity).
    ``version`` is assigned by the store (0 = never stored).
    """

    name: str
    hosts: tuple[str, ...]
    match: FlowMatch
    pattern: Pattern = Pattern.RING
    pairs: tuple[HostPair, ...] = ()
    demand_mbps: float | None = None
    priority: int = DEFAULT_JOB_PRIORITY
    description: str = ""
    version: int = 0

    @property
    def pair_count(self) -> int:
        return pattern_pair_count(self.pattern, len(self.hosts), len(self.pairs))

    def flow_pairs(self) -> tuple[HostPair, ...]:
        """The (source, destination) pairs of the pattern, in rank order.

        >>> from controller.policy.model import FlowMatch
        >>> Job("r", ("10.0.0.1", "10.0.0.2", "10.0.0.3"), FlowMatch(ip_proto=17)).flow_pairs()
        (('10.0.0.1', '10.0.0.2'), ('10.0.0.2', '10.0.0.3'), ('10.0.0.3', '10.0.0.1'))
        """
        hosts = self.hosts
        if self.pattern is Pattern.RING:
            if len(hosts) < 2:
                return ()
            return tuple((hosts[i], hosts[(i + 1) % len(hosts)]) for i in range(len(hosts)))
        if self.pattern is Pattern.ALL_TO_ALL:
            return tuple((src, dst) for src in hosts for dst in hosts if src != dst)
        return self.pairs

    def demand_bps(self, link_capacity_bps: float) -> float:
        """Each flow's demand in bits/s: the declared rate, or the link capacity."""
        if self.demand_mbps is None:
            return link_capacity_bps
        return self.demand_mbps * 1e6
