"""A large owner's recomputed entries are compared by identity first (the entries a
recomputation gets back unchanged are the same objects): the changes and tables
must be exactly those of comparing every entry by key, whatever mix of kept,
rebuilt-equal, changed, added and dropped entries comes back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.flowprog import tables
from controller.flowprog.entries import FlowEntry, Match, Output
from controller.flowprog.tables import DesiredTables, OwnerNeeds, TableChanges

KEEP, REBUILD, CHANGE, DROP = range(4)


def entry(i: int, port: int) -> FlowEntry:
    return FlowEntry(
        20000, Match.of(eth_dst=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"), (Output(port),), 1
    )


def rendered(changes: TableChanges) -> dict[int, tuple[list[str], list[str]]]:
    return {
        d: (sorted(map(repr, c.flow_adds)), sorted(map(repr, c.flow_deletes)))
        for d, c in changes.items()
        if c
    }


steps = st.lists(
    st.tuples(
        st.lists(
            st.sampled_from((KEEP, KEEP, KEEP, REBUILD, CHANGE, DROP)), min_size=40, max_size=40
        ),
        st.integers(0, 30),  # new entries appended
        st.booleans(),  # also a second switch
        st.integers(0, 50),  # the list rotated by this much: same objects, other places
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(steps=steps)
def test_identity_first_comparison_equals_the_full_comparison(
    steps: list[tuple[list[int], int, bool, int]],
) -> None:
    fast, full = DesiredTables(), DesiredTables()
    other = DesiredTables()  # a second owner on the same switch: never disturbed
    current = {i: entry(i, 1) for i in range(40)}
    next_id = 40
    for tables_ in (fast, full, other):
        tables_.set_owner("other", OwnerNeeds.build(flows={1: [entry(10_000, 9)]}))
    for actions, added, second, turn in steps:
        for i, action in zip(list(current), actions, strict=False):
            if action == REBUILD:
                current[i] = entry(i, current[i].actions[0].port)  # type: ignore[union-attr]
            elif action == CHANGE:
                current[i] = entry(i, current[i].actions[0].port + 1)  # type: ignore[union-attr]
            elif action == DROP:
                del current[i]
        for _ in range(added):
            current[next_id] = entry(next_id, 3)
            next_id += 1
        listed = list(current.values())
        turn %= max(1, len(listed))
        flows = {1: listed[turn:] + listed[:turn]}
        if second:
            flows[2] = list(current.values())[:5]
        needs = OwnerNeeds.build(flows=flows)
        got = fast.set_owner("fwd", needs)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tables, "_SMALL", 10**9)  # every entry compared by key
            want = full.set_owner("fwd", needs)
        assert rendered(got) == rendered(want)
        for dpid in (1, 2):
            assert fast.table(dpid).flows == full.table(dpid).flows
        assert fast.table(1).flows[entry(10_000, 9).key] == entry(10_000, 9)


def test_a_recomputation_that_changed_nothing_changes_nothing() -> None:
    desired = DesiredTables()
    entries = [entry(i, 1) for i in range(100)]
    desired.set_owner("fwd", OwnerNeeds.build(flows={1: entries}))
    rebuilt = [*entries[:50], entry(50, 1), *entries[51:]]  # one equal, new object
    assert rendered(desired.set_owner("fwd", OwnerNeeds.build(flows={1: rebuilt}))) == {}
    changed = [*entries[:7], entry(7, 2), *entries[8:99]]  # one changed, one dropped
    got = rendered(desired.set_owner("fwd", OwnerNeeds.build(flows={1: changed})))
    assert got == {1: ([repr(entry(7, 2))], [repr(entries[99])])}
    assert len(desired.table(1).flows) == 99
    dropped = rendered(desired.set_owner("fwd", OwnerNeeds.build(flows={1: changed[:-1]})))
    assert dropped == {1: ([], [repr(entries[98])])}  # only dropped: still a change
