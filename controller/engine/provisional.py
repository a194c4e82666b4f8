"""The provisional ingress rule of a new flow: its first packets go at once.

A just-placed flow's program writes the path make-before-break, ingress rule
last. Ahead of it the engine sends one rule to the ingress switch forwarding
as the default route does, a barrier and the packet, so the flow stops
meeting the class trap before its placed rules are confirmed.
"""

from __future__ import annotations

from dataclasses import replace

from controller.fabric.model import Dpid
from controller.flowprog.entries import Action, FlowEntry
from controller.flowprog.plan import FlowAdd, Program

__all__ = ["ahead_of"]


def ahead_of(program: Program, dpid: Dpid, route: tuple[Action, ...]) -> FlowEntry | None:
    """The rule to send to ``dpid`` before ``program`` so a new flow's packets are
    forwarded at once by the default ``route``; None when the program does not write
    the flow's ingress rule (switch not synced, or the rule protected after a restart).

    If the placed ingress rule (in the last phase) forwards like the route, it moves
    out of the program and goes first; otherwise a copy forwarding by the route goes
    first and the program replaces it (same table, priority and match).
    """
    if not program.phases:
        return None
    last = program.phases[-1].ops
    ops = last.get(dpid, [])
    for i, op in enumerate(ops):
        if not (isinstance(op, FlowAdd) and op.entry.ingress):
            continue
        if op.entry.actions != route:
            return replace(op.entry, actions=route)
        del ops[i]
        if not ops:
            del last[dpid]
        if not last:
            program.phases.pop()
        return op.entry
    return None
