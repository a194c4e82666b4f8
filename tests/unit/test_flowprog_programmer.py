"""DesiredTables (owners, shared groups), Programmer (installed state, warm-up) and group ids."""

from __future__ import annotations

import zlib
from dataclasses import replace

import pytest

from controller.devtools.fakeoftable import FakeFabric
from controller.flowprog.entries import (
    Bucket,
    FlowEntry,
    GroupAction,
    GroupType,
    Match,
    Output,
)
from controller.flowprog.groups import failover_group, group_id_for, select_group
from controller.flowprog.plan import FlowAdd, FlowDelete, GroupDelete
from controller.flowprog.programmer import Programmer
from controller.flowprog.tables import ConflictError, DesiredTables, OwnerNeeds, SwitchTable

SW = 7


def host_route(mac: str, *actions: object) -> FlowEntry:
    return FlowEntry(20000, Match.of(eth_dst=mac), tuple(actions), cookie=2)  # type: ignore[arg-type]


def needs(*flows: FlowEntry, groups: tuple = ()) -> OwnerNeeds:
    return OwnerNeeds.build(flows={SW: flows}, groups={SW: groups} if groups else None)


ECMP = select_group([1, 2])
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


# ------------------------------------------------------------------ groups
def test_group_ids_follow_contents() -> None:
    assert select_group([2, 1]).group_id == select_group([1, 2]).group_id
    assert select_group([1, 2]).group_id != select_group([1, 3]).group_id
    assert select_group([1, 2]).group_id >> 28 == 1
    assert failover_group(1, 2).group_id >> 28 == 2
    assert failover_group(1, 2).group_id != failover_group(2, 1).group_id
    grp = select_group([3, 1])
    assert grp.type is GroupType.SELECT
    assert [(b.actions, b.watch_port) for b in grp.buckets] == [
        ((Output(1),), 1),
        ((Output(3),), 3),
    ]
    assert group_id_for(GroupType.SELECT, grp.buckets) == grp.group_id


@pytest.mark.parametrize("count", [0, 1, 2, 63])
def test_group_ids_are_the_crc_of_the_contents_text(count: int) -> None:
    # Switches keep their groups across controller restarts and upgrades: the id of a
    # content is fixed by this text, however it is computed.
    for gtype in GroupType:
        buckets = tuple(
            Bucket(
                actions=(Output(p),), weight=p % 3, watch_port=p, watch_group=7 if p % 2 else None
            )
            for p in range(1, count + 1)
        )
        text = repr((gtype.value, buckets)).encode()
        want = {GroupType.SELECT: 1, GroupType.FAST_FAILOVER: 2}.get(gtype, 3) << 28
        assert group_id_for(gtype, buckets) == want | (zlib.crc32(text) & 0x0FFFFFFF)


def test_select_group_weights_drop_zero_buckets_and_reject_all_zero() -> None:
    grp = select_group([1, 2, 3], weights={1: 3, 2: 0})
    assert [(b.watch_port, b.weight) for b in grp.buckets] == [(1, 3), (3, 1)]
    with pytest.raises(ValueError, match="no bucket with a positive weight"):
        select_group([1, 2], weights={1: 0, 2: 0})


# ----------------------------------------------------------- DesiredTables
def test_a_shared_group_is_added_once_and_deleted_with_its_last_user() -> None:
    tables = DesiredTables()
    first = tables.set_owner(
        "a", needs(host_route(MAC_A, GroupAction(ECMP.group_id)), groups=(ECMP,))
    )
    copy = replace(ECMP)  # equal contents, another object
    assert copy == ECMP and copy is not ECMP
    second = tables.set_owner(
        "b", needs(host_route(MAC_B, GroupAction(ECMP.group_id)), groups=(copy,))
    )
    assert first[SW].group_adds == [ECMP]
    assert second[SW].group_adds == [] and second[SW].group_mods == []
    assert len(second[SW].flow_adds) == 1
    assert tables.drop_owner("a")[SW].group_deletes == []
    assert tables.drop_owner("b")[SW].group_deletes == [ECMP]
    assert tables.table(SW).groups == {} and tables.owners() == []


def test_setting_the_same_needs_again_changes_nothing() -> None:
    tables = DesiredTables()
    want = needs(host_route(MAC_A, GroupAction(ECMP.group_id)), groups=(ECMP,))
    tables.set_owner("a", want)
    assert tables.set_owner("a", want) == {}


def test_a_new_owner_gets_each_key_once_as_an_update_would() -> None:
    first, last = host_route(MAC_A, Output(1)), host_route(MAC_A, Output(2))
    other = host_route(MAC_B, Output(3))
    fresh, updated = DesiredTables(), DesiredTables()
    added = fresh.set_owner("a", needs(first, other, last))
    updated.set_owner("a", needs(other))
    changed = updated.set_owner("a", needs(first, other, last))
    assert added[SW].flow_adds == [last, other]  # first place of the key, last entry
    assert DesiredTables().set_owner("x", needs(first, last))[SW].flow_adds == [last]
    assert changed[SW].flow_adds == [last]
    assert fresh.table(SW).flows == updated.table(SW).flows
    assert fresh.table(SW).flows[last.key] is last
    # The owner holds both keys: a second owner of either is a conflict.
    with pytest.raises(ConflictError, match="both want"):
        fresh.set_owner("b", needs(host_route(MAC_B, Output(4))))
    assert fresh.drop_owner("a")[SW].flow_deletes and fresh.table(SW).flows == {}
    # An owner's update records it as the holder of the keys it adds.
    with pytest.raises(ConflictError, match="both want"):
        updated.set_owner("b", needs(host_route(MAC_A, Output(5))))


def test_two_owners_of_one_entry_is_a_conflict() -> None:
    tables = DesiredTables()
    tables.set_owner("a", needs(host_route(MAC_A, Output(1))))
    with pytest.raises(ConflictError, match="both want"):
        tables.set_owner("b", needs(host_route(MAC_A, Output(2))))
    assert tables.table(SW).flows[host_route(MAC_A).key].actions == (Output(1),)


# -------------------------------------------------------------- Programmer
def synced(prog: Programmer, fake: FakeFabric, *, now: float, warm: bool = True) -> None:
    fake.apply_ops(SW, prog.switch_synced(SW, fake.switches[SW].reported(), now=now, warm=warm))


def test_an_unsynced_switch_gets_nothing_until_it_connects() -> None:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    program = prog.set_owner("a", needs(host_route(MAC_A, Output(1))), now=0.0)
    assert not program
    synced(prog, fake, now=1.0)
    assert list(fake.switches[SW].flows) == [host_route(MAC_A).key]


def test_reapplying_the_same_state_sends_nothing() -> None:
    prog, fake = Programmer(), FakeFabric(switches=[SW])
    synced(prog, fake, now=0.0)
    want = needs(host_route(MAC_A, GroupAction(ECMP.group_id)), groups=(ECMP,))
    fake.apply(prog.set_owner("a", want, now=0.0))
    before = fake.table_hash(SW)
    assert not prog.set_owner("a", want, now=1.0)
    assert not prog.switch_synced(SW, fake.switches[SW].reported(), now=2.0)
    assert fake.table_hash(SW) == before


def test_warm_up_keeps_stale_entries_then_removes_them() -> None:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    stale_group = select_group([5, 6])
    fake.switches[SW].groups[stale_group.group_id] = stale_group
    stale = host_route(MAC_B, GroupAction(stale_group.group_id))
    fake.switches[SW].flows[stale.key] = stale
    prog.set_owner("a", needs(host_route(MAC_A, Output(1))), now=0.0)
    synced(prog, fake, now=10.0)
    assert stale.key in fake.switches[SW].flows and fake.mods()["FlowDelete"] == 0
    assert prog.warming(SW, 13.9)
    assert not prog.end_warmups(now=13.9)
    cleanup = prog.end_warmups(now=14.0)
    ops = [op for phase in cleanup.phases for op in phase.ops[SW]]
    assert FlowDelete(stale) in ops and GroupDelete(stale_group) in ops
    assert ops.index(FlowDelete(stale)) < ops.index(GroupDelete(stale_group))
    fake.apply(cleanup)
    assert list(fake.switches[SW].flows) == [host_route(MAC_A).key]
    assert fake.switches[SW].groups == {}
    assert not prog.end_warmups(now=20.0)


def test_deletes_of_reported_entries_wait_for_the_warm_up() -> None:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    # The switch kept both routes from an earlier run: they are protected.
    for route in (host_route(MAC_A, Output(1)), host_route(MAC_B, Output(2))):
        fake.switches[SW].flows[route.key] = route
    prog.set_owner("a", needs(host_route(MAC_A, Output(1)), host_route(MAC_B, Output(2))), now=0.0)
    synced(prog, fake, now=0.0)
    shrink = prog.set_owner("a", needs(host_route(MAC_A, Output(1))), now=1.0)
    assert not shrink
    assert len(fake.switches[SW].flows) == 2
    fake.apply(prog.end_warmups(now=4.0))
    assert list(fake.switches[SW].flows) == [host_route(MAC_A).key]


def test_what_the_controller_installed_itself_changes_during_warm_up() -> None:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    synced(prog, fake, now=0.0)  # a fresh switch: nothing to protect
    fake.apply(
        prog.set_owner(
            "a", needs(host_route(MAC_A, Output(1)), host_route(MAC_B, Output(2))), now=0.5
        )
    )
    shrink = prog.set_owner("a", needs(host_route(MAC_A, Output(1))), now=1.0)
    assert any(
        isinstance(op, FlowDelete) for p in shrink.phases for ops in p.ops.values() for op in ops
    )
    fake.apply(shrink)
    assert list(fake.switches[SW].flows) == [host_route(MAC_A).key]


def test_a_cold_sync_fixes_everything_at_once() -> None:
    prog, fake = Programmer(warmup_s=4.0), FakeFabric(switches=[SW])
    stale = host_route(MAC_B, Output(9))
    fake.switches[SW].flows[stale.key] = stale
    prog.set_owner("a", needs(host_route(MAC_A, Output(1))), now=0.0)
    ops = prog.switch_synced(SW, fake.switches[SW].reported(), now=0.0, warm=False)
    assert FlowAdd(host_route(MAC_A, Output(1))) in ops and FlowDelete(stale) in ops
    assert not prog.warming(SW, 0.0)


def test_a_group_the_switch_holds_alike_is_not_sent_again() -> None:
    prog = Programmer()
    prog.switch_synced(SW, SwitchTable(), now=0.0, warm=False)
    prog.installed[SW].groups[ECMP.group_id] = replace(ECMP)  # as read back from the switch
    program = prog.set_owner(
        "a", needs(host_route(MAC_A, GroupAction(ECMP.group_id)), groups=(ECMP,)), now=1.0
    )
    ops = [op for phase in program.phases for op in phase.ops[SW]]
    assert [type(op).__name__ for op in ops] == ["FlowAdd"]


def test_losing_a_switch_forgets_what_it_held() -> None:
    prog = Programmer()
    prog.switch_synced(SW, SwitchTable(), now=0.0)
    assert prog.is_synced(SW)
    prog.switch_lost(SW)
    assert not prog.is_synced(SW)
    assert not prog.set_owner("a", needs(host_route(MAC_A, Output(1))), now=1.0)


# ------------------------------------------------------------------ takes
def test_an_entry_takes_an_action_only_when_desired_and_installed_do_just_that() -> None:
    prog = Programmer()
    key = host_route(MAC_A, Output(3)).key
    takes = prog.takes(key)
    assert not takes(SW, Output(3))  # nothing desired, switch never seen
    prog.set_owner("hosts", needs(host_route(MAC_A, Output(3))), now=0.0)
    assert not takes(SW, Output(3))  # desired, but the switch is not synced: not installed
    prog.switch_synced(SW, SwitchTable(), now=0.0, warm=False)
    assert takes(SW, Output(3))
    assert not takes(SW, Output(4))
    assert not takes(SW + 1, Output(3))
    assert not prog.takes(host_route(MAC_B, Output(3)).key)(SW, Output(3))
    # Installed as the switch reported it (an equal entry, not the same object).
    prog.installed[SW].flows[key] = host_route(MAC_A, Output(3))
    assert prog.installed[SW].flows[key] is not prog.desired.table(SW).flows[key]
    assert takes(SW, Output(3))
    # Installed differs from desired (the switch still holds an older route).
    prog.installed[SW].flows[key] = host_route(MAC_A, Output(4))
    assert not takes(SW, Output(3)) and not takes(SW, Output(4))
    # Doing more than the action is not doing just it.
    both = host_route(MAC_A, Output(3), Output(5))
    prog.set_owner("hosts", needs(both), now=0.0)
    prog.installed[SW].flows[key] = both
    assert not takes(SW, Output(3))
