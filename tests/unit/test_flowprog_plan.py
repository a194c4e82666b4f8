"""Make-before-break ordering (plan_changes) and minimal reconciling (reconcile)."""

from __future__ import annotations

from controller.devtools.fakeoftable import FakeFabric
from controller.fabric.model import LinkId, PortRef
from controller.flowprog.entries import (
    Bucket,
    FlowEntry,
    GotoTable,
    GroupAction,
    GroupEntry,
    GroupType,
    Match,
    MeterEntry,
    Output,
    WriteMetadata,
)
from controller.flowprog.plan import (
    Barrier,
    FlowAdd,
    FlowDelete,
    GroupAdd,
    GroupDelete,
    GroupModify,
    MeterAdd,
    MeterDelete,
    MeterModify,
    Op,
    plan_changes,
    reconcile,
)
from controller.flowprog.tables import SwitchChanges, SwitchTable

MAC = "02:00:00:00:00:01"
G1 = GroupEntry(0x11, GroupType.SELECT, (Bucket((Output(1),), 1, 1), Bucket((Output(2),), 1, 2)))
G1_ONE = GroupEntry(0x11, GroupType.SELECT, (Bucket((Output(1),), 1, 1),))
G2 = GroupEntry(0x22, GroupType.SELECT, (Bucket((Output(3),), 1, 3),))


def entry(prio: int, *actions: object, ingress: bool = False, cookie: int = 7) -> FlowEntry:
    return FlowEntry(prio, Match.of(eth_dst=MAC), tuple(actions), cookie, ingress=ingress)  # type: ignore[arg-type]


def kinds(ops: list[Op]) -> list[str]:
    return [type(op).__name__ for op in ops]


# -------------------------------------------------------------- plan_changes
def test_build_flip_clean_phases_in_make_before_break_order() -> None:
    ch = SwitchChanges(
        flow_adds=[entry(10, GroupAction(G1.group_id)), entry(20, Output(4), ingress=True)],
        flow_deletes=[entry(30, Output(5))],
        group_adds=[G1],
        group_mods=[G2],
        group_deletes=[GroupEntry(0x33, GroupType.SELECT, ())],
        meter_adds=[MeterEntry(1, 100)],
        meter_mods=[MeterEntry(2, 50)],
        meter_deletes=[MeterEntry(3, 10)],
    )
    program = plan_changes({5: ch}, reason="test")
    assert program.reason == "test"
    build, flip, clean = program.phases
    assert kinds(build.ops[5]) == [
        "MeterAdd",
        "MeterModify",
        "GroupAdd",
        "GroupModify",
        "Barrier",
        "FlowAdd",
    ]
    assert build.ops[5][-1] == FlowAdd(ch.flow_adds[0])  # not the ingress entry
    assert flip.ops[5] == [FlowAdd(ch.flow_adds[1])]
    assert kinds(clean.ops[5]) == ["FlowDelete", "Barrier", "GroupDelete", "MeterDelete"]
    assert program.op_count() == 9  # barriers are not operations


def test_phases_without_work_are_left_out_and_barriers_trimmed() -> None:
    only_adds = plan_changes({5: SwitchChanges(flow_adds=[entry(10, Output(1))])})
    assert len(only_adds.phases) == 1
    assert only_adds.phases[0].ops[5] == [FlowAdd(entry(10, Output(1)))]
    only_group_delete = plan_changes({5: SwitchChanges(group_deletes=[G2])})
    assert only_group_delete.phases[0].ops[5] == [GroupDelete(G2)]
    assert not plan_changes({})
    assert not plan_changes({5: SwitchChanges()})


def test_one_switch_with_only_ingress_adds_is_one_phase_as_the_general_plan_gives() -> None:
    """A new flow's rules on its ingress: one phase; anything else on that switch
    (a transit entry, a group, a delete) keeps the make-before-break phases."""
    flips = [entry(20, Output(4), ingress=True), entry(21, Output(5), ingress=True)]
    program = plan_changes({5: SwitchChanges(flow_adds=list(flips))}, reason="flow-setup")
    assert program.reason == "flow-setup"
    assert [p.ops for p in program.phases] == [{5: [FlowAdd(e) for e in flips]}]
    transit = entry(10, Output(1))
    mixed = plan_changes({5: SwitchChanges(flow_adds=[transit, flips[0]])})
    assert [p.ops[5] for p in mixed.phases] == [[FlowAdd(transit)], [FlowAdd(flips[0])]]
    extras = {
        "flow_deletes": transit,
        "group_adds": G1,
        "group_mods": G2,
        "group_deletes": G2,
        "meter_adds": MeterEntry(1, 5),
        "meter_mods": MeterEntry(2, 5),
        "meter_deletes": MeterEntry(3, 5),
    }
    for name, extra in extras.items():  # each keeps its own phase next to the flip
        ch = SwitchChanges(flow_adds=[flips[0]], **{name: [extra]})  # type: ignore[arg-type]
        phases = plan_changes({5: ch}).phases
        assert len(phases) == 2, name
        assert FlowAdd(flips[0]) in [op for p in phases for op in p.ops[5]], name


def test_egress_first_orders_the_build_phase_then_dpid_order() -> None:
    changes = {d: SwitchChanges(flow_adds=[entry(10, Output(d))]) for d in (1, 2, 3, 4, 9)}
    program = plan_changes(changes, egress_first=[4, 2])
    assert list(program.phases[0].ops) == [4, 2, 1, 3, 9]
    assert list(plan_changes(changes).phases[0].ops) == [1, 2, 3, 4, 9]


def test_joined_keeps_each_switchs_phase_order_with_a_barrier_between_phases() -> None:
    ch = SwitchChanges(
        flow_adds=[entry(10, GroupAction(G1.group_id)), entry(20, Output(4), ingress=True)],
        group_adds=[G1],
    )
    program = plan_changes({5: ch, 6: SwitchChanges(flow_adds=[entry(10, Output(1))])})
    assert program.switches() == {5, 6}
    joined = program.joined()
    build, flip = program.phases
    assert joined[5] == [*build.ops[5], Barrier(), *flip.ops[5]]
    assert joined[6] == build.ops[6]  # one phase: no barrier added
    assert kinds(joined[5]) == ["GroupAdd", "Barrier", "FlowAdd", "Barrier", "FlowAdd"]
    assert plan_changes({}).switches() == set() and plan_changes({}).joined() == {}


def test_a_moved_flow_is_delivered_after_every_phase() -> None:
    """Leaf 1 moves a flow from spine 3 to spine 4; leaf 2 delivers on port 9.

    Walking the packet after each phase proves the order is make-before-break,
    and applying the same phases in the wrong order proves the walk can tell.
    """
    cables = [(1, 1, 3, 1), (1, 2, 4, 1), (2, 1, 3, 2), (2, 2, 4, 2)]
    links = []
    for a, pa, b, pb in cables:
        links += [LinkId(PortRef(a, pa), PortRef(b, pb)), LinkId(PortRef(b, pb), PortRef(a, pa))]
    old = {1: entry(40, Output(1), ingress=True), 3: entry(40, Output(2)), 2: entry(40, Output(9))}
    new = {1: entry(40, Output(2), ingress=True), 4: entry(40, Output(2))}

    def fresh() -> FakeFabric:
        fake = FakeFabric(switches=[1, 2, 3, 4], links=links)
        for dpid, e in old.items():
            fake.apply_ops(dpid, [FlowAdd(e)])
        return fake

    changes = {
        1: SwitchChanges(flow_adds=[new[1]]),
        4: SwitchChanges(flow_adds=[new[4]]),
        3: SwitchChanges(flow_deletes=[old[3]]),
    }
    program = plan_changes(changes, egress_first=[2, 4, 1])
    fake = fresh()
    for phase in program.phases:
        fake.apply_phase(phase)
        assert fake.walk(1, 9, {"eth_dst": MAC}).only_to(PortRef(2, 9))
    assert fake.walk(1, 9, {"eth_dst": MAC}).paths == {(1, 4, 2)}

    broken = fresh()
    broken.apply_phase(program.phases[2])  # clean before build: the old path is gone
    assert broken.walk(1, 9, {"eth_dst": MAC}).dropped


# ----------------------------------------------------------------- reconcile
def table(*flows: FlowEntry, groups: tuple = (), meters: tuple = ()) -> SwitchTable:
    return SwitchTable(
        flows={e.key: e for e in flows},
        groups={g.group_id: g for g in groups},
        meters={m.meter_id: m for m in meters},
    )


def test_reconcile_of_equal_tables_sends_nothing() -> None:
    want = table(entry(10, GroupAction(G1.group_id)), groups=(G1,), meters=(MeterEntry(1, 5),))
    have = table(entry(10, GroupAction(G1.group_id)), groups=(G1,), meters=(MeterEntry(1, 5),))
    assert reconcile(want, have) == []


def test_reconcile_ignores_metadata_but_not_cookie_or_actions() -> None:
    assert reconcile(table(entry(10, Output(1), ingress=True)), table(entry(10, Output(1)))) == []
    assert reconcile(table(entry(10, Output(1))), table(entry(10, Output(2)))) == [
        FlowAdd(entry(10, Output(1)))
    ]
    assert reconcile(table(entry(10, Output(1))), table(entry(10, Output(1), cookie=8))) == [
        FlowAdd(entry(10, Output(1)))
    ]


def test_reconcile_sends_only_the_differences_in_a_safe_order() -> None:
    stale_entry = FlowEntry(5, Match.of(eth_dst="02:00:00:00:00:99"), (GroupAction(0x22),), 7)
    keep = entry(10, Output(3))
    want = table(keep, entry(20, GroupAction(0x11)), groups=(G1,), meters=(MeterEntry(1, 9),))
    have = table(
        keep, stale_entry, groups=(G1_ONE, G2), meters=(MeterEntry(1, 5), MeterEntry(2, 1))
    )
    ops = reconcile(want, have)
    assert ops == [
        MeterModify(MeterEntry(1, 9)),
        GroupModify(G1),
        Barrier(),
        FlowAdd(entry(20, GroupAction(0x11))),
        Barrier(),  # new entries are in before anything is removed
        FlowDelete(stale_entry),
        Barrier(),
        GroupDelete(G2),
        MeterDelete(MeterEntry(2, 1)),
    ]
    fake = FakeFabric(switches=[1])
    fake.apply_ops(1, [MeterAdd(m) for m in have.meters.values()])
    fake.apply_ops(1, [GroupAdd(g) for g in have.groups.values()])
    fake.apply_ops(1, [FlowAdd(e) for e in have.flows.values()])
    fake.apply_ops(1, ops)  # the fake raises if a group is deleted while still in use
    expect = FakeFabric(switches=[1])
    expect.apply_ops(1, [MeterAdd(m) for m in want.meters.values()])
    expect.apply_ops(1, [GroupAdd(g) for g in want.groups.values()])
    expect.apply_ops(1, [FlowAdd(e) for e in want.flows.values()])
    assert fake.table_hash(1) == expect.table_hash(1)


def test_reconcile_into_an_empty_switch_adds_shared_objects_before_flows() -> None:
    want = table(entry(10, GroupAction(0x11)), groups=(G1,), meters=(MeterEntry(1, 9),))
    ops = reconcile(want, SwitchTable())
    assert kinds(ops) == ["MeterAdd", "GroupAdd", "Barrier", "FlowAdd"]


def test_later_tables_are_filled_first_and_emptied_last() -> None:
    """A route may continue into table 1: its entries there exist before the route
    points at them, and outlive it."""
    goto = (WriteMetadata(5), GotoTable(1))
    old_t1 = FlowEntry(10, Match.of(metadata=4), (Output(1),), 7, table_id=1)
    new_t1 = FlowEntry(10, Match.of(metadata=5), (Output(2),), 7, table_id=1)
    gone = FlowEntry(20, Match.of(eth_dst="02:00:00:00:00:02"), (WriteMetadata(4), GotoTable(1)), 7)
    ch = SwitchChanges(flow_adds=[entry(20, *goto), new_t1], flow_deletes=[old_t1, gone])
    (build, clean) = plan_changes({5: ch}).phases
    assert build.ops[5] == [FlowAdd(new_t1), Barrier(), FlowAdd(entry(20, *goto))]
    assert clean.ops[5] == [FlowDelete(gone), Barrier(), FlowDelete(old_t1)]
    assert reconcile(table(entry(20, *goto), new_t1), table(gone, old_t1)) == [
        FlowAdd(new_t1),
        Barrier(),
        FlowAdd(entry(20, *goto)),
        Barrier(),
        FlowDelete(gone),
        Barrier(),
        FlowDelete(old_t1),
    ]
