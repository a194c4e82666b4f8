"""The common new flow's short path through the programmer equals the general one.

``Programmer.set_owner`` takes a new owner with one ingress entry on one synced
switch, whose group (if any) the switch holds already, in a few steps
(``_plain_new`` and ``DesiredTables.add_plain_owner``). Everything else, and
every case that looks like it but is not (a key held by another owner, a group
to add, a group clashing with the one held, a key a warming switch reported,
an unsynced switch, an entry already on the switch), goes the general way. Checked against a
programmer whose short path is switched off, on random sequences: the same
programs, the same errors, the same desired and installed tables (the very
objects), reference counts and owners.
"""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from controller.flowprog.entries import (
    Bucket,
    FlowEntry,
    GroupAction,
    GroupEntry,
    GroupType,
    Match,
    Output,
)
from controller.flowprog.groups import failover_chain
from controller.flowprog.plan import FlowAdd
from controller.flowprog.programmer import Programmer
from controller.flowprog.tables import ConflictError, OwnerNeeds, SwitchTable

SWITCHES = (1, 2, 3)  # 3 never syncs
SHARED = failover_chain([1, 2, 3])  # forwarding holds it on every synced switch
NEW = failover_chain([2, 3])  # nobody holds it
CLASH = GroupEntry(  # SHARED's id, other content
    SHARED.group_id,
    GroupType.FAST_FAILOVER,
    (Bucket(actions=(Output(9),), watch_port=9),),
)


FORWARDING = OwnerNeeds.build(
    flows={
        d: [FlowEntry(1, Match.of(eth_dst="aa:00:00:00:00:01"), (Output(1),), 0)] for d in (1, 2)
    },
    groups={d: [SHARED] for d in (1, 2)},
)
# What switch 2 reports at connect: the key of a flow on udp source port 1.
REPORTED = FlowEntry(
    1000,
    Match.of(eth_type=0x0800, ip_proto=17, udp_src=1),
    (Output(2),),
    cookie=99,
    idle_timeout=10,
    ingress=True,
)


def _equal_copy(group: GroupEntry) -> GroupEntry:
    return GroupEntry(group.group_id, group.type, tuple(group.buckets))


_GROUPS = {"none": None, "shared": SHARED, "copy": "copy", "new": NEW, "clash": CLASH}

_op = st.one_of(
    st.tuples(
        st.just("flow"),
        st.integers(0, 6),  # owner
        st.sampled_from(SWITCHES),
        st.integers(1, 3),  # udp source port: the key (collisions are conflicts)
        st.sampled_from(sorted(_GROUPS)),
        st.booleans(),  # ingress
        st.sampled_from([1, 2]),  # output port when no group
    ),
    st.tuples(st.just("drop"), st.integers(0, 6)),
    st.tuples(st.just("time"), st.sampled_from([0.5, 3.0])),
    st.tuples(st.just("pre"), st.sampled_from(SWITCHES), st.integers(1, 3)),
)


def _programmer(*, plain: bool) -> Programmer:
    prog = Programmer(warmup_s=2.0)
    if not plain:
        prog._plain_new = lambda *a, **k: None  # type: ignore[method-assign]
    prog.switch_synced(1, SwitchTable(), now=0.0, warm=False)
    # Warm until t = 2, holding a flow's entry from before: protected until then.
    prog.switch_synced(2, SwitchTable(flows={REPORTED.key: REPORTED}), now=0.0, warm=True)
    prog.set_owner("forwarding", FORWARDING, now=0.0)  # the same objects in both
    return prog


def _needs(dpid: int, sport: int, group: str, ingress: bool, port: int) -> OwnerNeeds:
    grp = _GROUPS[group]
    if grp == "copy":
        grp = _equal_copy(SHARED)
    actions = (GroupAction(grp.group_id),) if isinstance(grp, GroupEntry) else (Output(port),)
    entry = FlowEntry(
        1000,
        Match.of(eth_type=0x0800, ip_proto=17, udp_src=sport),
        actions,
        cookie=sport,
        idle_timeout=10,
        ingress=ingress,
    )
    groups = {dpid: (grp,)} if isinstance(grp, GroupEntry) else {}
    return OwnerNeeds(flows={dpid: (entry,)}, groups=groups)


def _apply(prog: Programmer, owner: Hashable, needs: OwnerNeeds, now: float) -> object:
    try:
        return prog.set_owner(owner, needs, now=now, reason="flow-setup")
    except ConflictError as exc:
        return type(exc)


def _state(prog: Programmer) -> object:
    desired = prog.desired
    tables = {}
    for dpid in SWITCHES:
        t = desired.table(dpid)
        tables[dpid] = (
            {k: id(e) for k, e in t.flows.items()},
            {g: id(e) for g, e in t.groups.items()},
        )
    installed = {
        dpid: ({k: id(e) for k, e in t.flows.items()}, {g: id(e) for g, e in t.groups.items()})
        for dpid, t in prog.installed.items()
    }
    return (
        tables,
        installed,
        dict(desired._group_refs),
        {d: dict(o) for d, o in desired._flow_owner.items() if o},
        {o: id(n) for o, n in desired._owners.items()},
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, max_size=25))
@example([("flow", 1, 2, 1, "none", True, 1)])  # onto the entry switch 2 protects
@example([("pre", 1, 2), ("flow", 1, 1, 2, "none", True, 1)])  # the switch has it already
def test_the_short_path_leaves_everything_as_the_general_path(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    plain, general = _programmer(plain=True), _programmer(plain=False)
    now = 0.0
    for op in ops:
        if op[0] == "time":
            now += op[1]
            continue
        if op[0] == "drop":
            results = [p.drop_owner(("flow", op[1]), now=now) for p in (plain, general)]
        elif op[0] == "pre":  # the switch holds a flow's entry already (e.g. reported)
            _, dpid, sport = op
            entry = _needs(dpid, sport, "none", True, 1).flows[dpid][0]
            for p in (plain, general):
                if dpid in p.installed:
                    p.installed[dpid].flows[entry.key] = entry
            continue
        else:
            _, owner, dpid, sport, group, ingress, port = op
            needs = _needs(dpid, sport, group, ingress, port)
            results = [_apply(p, ("flow", owner), needs, now) for p in (plain, general)]
        assert results[0] == results[1]
        assert _state(plain) == _state(general)


def test_the_common_case_is_one_flow_mod_and_takes_the_short_path() -> None:
    """A mutant that never takes the short path, or takes it wrongly, fails here."""
    prog = _programmer(plain=True)
    calls = []
    add = prog.desired.add_plain_owner
    prog.desired.add_plain_owner = lambda o, n: calls.append(o) or add(o, n)  # type: ignore[method-assign]
    needs = _needs(1, 1, "copy", True, 1)
    program = prog.set_owner(("flow", 1), needs, now=3.0)
    assert calls == [("flow", 1)]
    assert len(program.phases) == 1 and program.joined() == {1: [FlowAdd(needs.flows[1][0])]}
    assert prog.desired.table(1).groups[SHARED.group_id] is needs.groups[1][0]  # as set_owner
    assert prog.desired._group_refs[(1, SHARED.group_id)] == 2
    # A group the switch lacks: the general path adds it first, in its own phase.
    program = prog.set_owner(("flow", 2), _needs(1, 2, "new", True, 1), now=3.0)
    assert calls == [("flow", 1), ("flow", 2)] and len(program.phases) == 2
    with pytest.raises(ConflictError):
        prog.set_owner(("flow", 3), _needs(1, 1, "none", True, 1), now=3.0)
