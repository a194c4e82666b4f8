"""The documented limits on policies, and the flow-entry budget they are checked against.

Every per-flow policy becomes class-trap entries on every edge port of every
switch: each match alternative expands to the cross product of its port
prefixes, DSCP values and address prefixes
(:func:`controller.flowprog.classmatch.of_matches`). A handful of
alternatives with wide port lists can therefore ask for hundreds of thousands
of entries, which would stall the controller while it compiles them and
overflow switch tables. These limits keep one policy, and all of them
together, small enough to compile in milliseconds:

=======================  =======  ============================================
limit                    value    what it bounds
=======================  =======  ============================================
``max_policies``         256      policies stored at once
``max_name``             63       characters of a policy name
``max_rules_per_policy`` 4096     flow entries one policy compiles to, per
                                  edge port (the sum over its alternatives)
``max_rules_total``      16384    the same, summed over all policies
``max_list_entries``     64       entries of any list: alternatives, ports,
                                  DSCP values, prefixes, weights
``max_pinned_hops``      16       switches in a pinned path
``max_description``      256      characters of a description
``max_version``          2**63-1  a version (it travels as a signed 64-bit int)
=======================  =======  ============================================

A catch-all policy (one with an empty alternative) is forwarded per
destination and compiles to no class traps, so it counts 0 entries.
Rejections are :class:`InvalidArgument` naming the field and the limit. This
module computes counts and compares them; it does not compile, store or
apply anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.errors import InvalidArgument
from controller.policy.model import Policy
from controller.policy.overlap import match_term_count

__all__ = [
    "MAX_POLICIES",
    "MAX_NAME_CHARS",
    "MAX_RULES_PER_POLICY",
    "MAX_RULES_TOTAL",
    "MAX_LIST_ENTRIES",
    "MAX_PINNED_HOPS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_VERSION",
    "rule_entries",
    "check_policy_rules",
    "check_rule_budget",
]

MAX_POLICIES = 256
MAX_NAME_CHARS = 63
MAX_RULES_PER_POLICY = 4096
MAX_RULES_TOTAL = 16384
MAX_LIST_ENTRIES = 64
MAX_PINNED_HOPS = 16
MAX_DESCRIPTION_CHARS = 256
MAX_VERSION = 2**63 - 1


def rule_entries(policy: Policy) -> int:
    """Class-trap flow entries ``policy`` compiles to on each edge port.

    Equal to ``sum(len(of_matches(m)) for m in policy.match)`` for a per-flow
    policy, and 0 for a catch-all, computed without building the matches.
    """
    if policy.is_catch_all:
        return 0
    return sum(match_term_count(m) for m in policy.match)


def check_policy_rules(policy: Policy) -> None:
    """Refuse a policy that compiles to more than ``max_rules_per_policy`` entries.

    Counts alternative by alternative and stops at the first that crosses the
    limit, naming it (``match[3]``); the message gives the running total.
    """
    if policy.is_catch_all:
        return
    total = 0
    for i, m in enumerate(policy.match):
        total += match_term_count(m)
        if total > MAX_RULES_PER_POLICY:
            raise InvalidArgument(
                f"match[{i}]",
                f"the alternatives up to this one compile to {total} flow entries per edge "
                f"port, over the limit max_rules_per_policy={MAX_RULES_PER_POLICY}; use fewer "
                "alternatives, or fewer and wider port ranges and prefixes",
            )


def check_rule_budget(policies: Iterable[Policy]) -> None:
    """Refuse a policy set over ``max_policies`` or ``max_rules_total``.

    Call it with the complete set a change would produce (the book with the
    new or replaced policy). Raises :class:`InvalidArgument` on field
    ``name`` (too many policies) or ``match`` (too many entries), so an
    apply's error reads ``policy.match: ...``.
    """
    count = 0
    total = 0
    for policy in policies:
        count += 1
        total += rule_entries(policy)
    if count > MAX_POLICIES:
        raise InvalidArgument(
            "name",
            f"{count} policies would exist, over the limit max_policies={MAX_POLICIES}; "
            "delete one first",
        )
    if total > MAX_RULES_TOTAL:
        raise InvalidArgument(
            "match",
            f"all policies together would compile to {total} flow entries per edge port, "
            f"over the limit max_rules_total={MAX_RULES_TOTAL}",
        )
