"""The per-flow fast paths (programmer, cached hashes) give exactly what the general paths give.

Each shortcut taken for speed (a cached match hash, one owner's changes used as
they come, phases a switch has nothing for skipped, content-named groups built
once, match checks of the fake switch remembered) is compared here with the
general computation, on hand-picked and on random inputs.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.devtools.fakeofcheck import OpenFlowError, check_flow
from controller.fabric.model import Dpid, FiveTuple, LinkId, PortRef, link_order
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
    PushVlan,
    WriteMetadata,
    split_instructions,
)
from controller.flowprog.groups import failover_chain, failover_group, group_id_for
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
    Phase,
    Program,
    plan_changes,
)
from controller.flowprog.programmer import Programmer
from controller.flowprog.repair import bounce_group
from controller.flowprog.tables import OwnerNeeds, SwitchChanges, SwitchTable, TableChanges


# ------------------------------------------------------------------ match hash
def test_a_match_hash_is_the_generated_one_and_not_pickled() -> None:
    m, same = Match.of(ipv4_src="10.0.0.1", udp_src=5), Match.of(udp_src=5, ipv4_src="10.0.0.1")
    assert hash(m) == hash(same) == hash((m.fields,))
    assert hash(m) == hash(m)  # cached now
    assert {(0, 1, m): "x"}[(0, 1, same)] == "x"
    copy = pickle.loads(pickle.dumps(m))
    assert copy == m and "_hash" not in copy.__dict__ and hash(copy) == hash(m)
    assert repr(m) == "Match(fields=(('ipv4_src', '10.0.0.1'), ('udp_src', 5)))"


def test_a_five_tuple_hash_is_the_generated_one_and_not_pickled() -> None:
    ft, same = (
        FiveTuple("10.0.0.1", "10.0.0.2", 17, 5, 4791),
        FiveTuple("10.0.0.1", "10.0.0.2", 17, 5, 4791),
    )
    assert hash(ft) == hash(same) == hash(("10.0.0.1", "10.0.0.2", 17, 5, 4791))
    assert hash(ft) == hash(ft)  # cached now
    assert hash(FiveTuple("10.0.0.1", "10.0.0.2", 17, 6, 4791)) != hash(ft)
    copy = pickle.loads(pickle.dumps(ft))
    assert copy == ft and "_hash" not in copy.__dict__ and hash(copy) == hash(ft)
    assert repr(ft) == (
        "FiveTuple(src_ip='10.0.0.1', dst_ip='10.0.0.2', ip_proto=17, src_port=5, dst_port=4791)"
    )


def test_an_entry_key_is_made_once_and_is_not_part_of_the_entry() -> None:
    m = Match.of(eth_dst="02:00:00:00:00:01")
    e = FlowEntry(100, m, (Output(1),), 7, table_id=2)
    assert e.key == (2, 100, m) and e.key is e.key  # one tuple: tables sharing e share it
    other = FlowEntry(100, Match.of(eth_dst="02:00:00:00:00:01"), (Output(1),), 7, table_id=2)
    assert other == e and hash(other) == hash(e) and other.key == e.key
    assert "key" not in repr(e)
    moved = dataclasses.replace(e, priority=200, table_id=0)
    assert moved.key == (0, 200, m)
    copy = pickle.loads(pickle.dumps(e))
    assert copy == e and copy.key == e.key and copy.key[2] is copy.match


# ---------------------------------------------------------------- plan phases
def _reference_plan(
    changes: TableChanges, *, reason: str = "", egress_first: Sequence[Dpid] = ()
) -> Program:
    """plan_changes as written before its shortcuts: every phase built for every switch."""

    def by_table(entries: list[FlowEntry], op: type, *, later_first: bool) -> list[Op]:
        ops: list[Op] = []
        for table_id in sorted({e.table_id for e in entries}, reverse=later_first):
            ops.append(Barrier())
            ops += [op(e) for e in entries if e.table_id == table_id]
        return ops

    def watched_last(g: GroupEntry) -> bool:
        return any(b.watch_group is not None for b in g.buckets)

    rank = {dpid: i for i, dpid in enumerate(egress_first)}
    build, flip, clean = Phase(), Phase(), Phase()
    for dpid in sorted(changes, key=lambda d: (rank.get(d, len(rank)), d)):
        ch = changes[dpid]
        prep: list[Op] = [MeterAdd(m) for m in ch.meter_adds]
        prep += [MeterModify(m) for m in ch.meter_mods]
        prep += [GroupAdd(g) for g in sorted(ch.group_adds, key=watched_last)]
        prep += [GroupModify(g) for g in ch.group_mods]
        prep += by_table([e for e in ch.flow_adds if not e.ingress], FlowAdd, later_first=True)
        build.add(dpid, prep)
        flip.add(dpid, [FlowAdd(e) for e in ch.flow_adds if e.ingress])
        tidy = by_table(ch.flow_deletes, FlowDelete, later_first=False)
        tidy.append(Barrier())
        tidy += [GroupDelete(g) for g in sorted(ch.group_deletes, key=watched_last, reverse=True)]
        tidy += [MeterDelete(m) for m in ch.meter_deletes]
        clean.add(dpid, tidy)
    return Program(phases=[p for p in (build, flip, clean) if p], reason=reason)


_entries = st.builds(
    FlowEntry,
    priority=st.integers(1, 3),
    match=st.builds(Match.of, udp_src=st.integers(1, 4)),
    actions=st.just((Output(1),)),
    cookie=st.just(1),
    table_id=st.integers(0, 2),
    ingress=st.booleans(),
)
_groups = st.builds(
    GroupEntry,
    group_id=st.integers(1, 5),
    type=st.just(GroupType.FAST_FAILOVER),
    buckets=st.lists(
        st.builds(Bucket, actions=st.just((Output(2),)), watch_group=st.none() | st.just(9)),
        min_size=1,
        max_size=2,
    ).map(tuple),
)
_meters = st.builds(MeterEntry, meter_id=st.integers(1, 3), rate_pps=st.just(10))
_changes = st.builds(
    SwitchChanges,
    flow_adds=st.lists(_entries, max_size=3),
    flow_deletes=st.lists(_entries, max_size=3),
    group_adds=st.lists(_groups, max_size=2),
    group_mods=st.lists(_groups, max_size=1),
    group_deletes=st.lists(_groups, max_size=2),
    meter_adds=st.lists(_meters, max_size=1),
    meter_mods=st.lists(_meters, max_size=1),
    meter_deletes=st.lists(_meters, max_size=1),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(st.integers(1, 5), _changes, max_size=4),
    egress_first=st.lists(st.integers(1, 5), unique=True, max_size=3),
)
def test_planned_phases_equal_the_general_plan(
    changes: TableChanges, egress_first: list[int]
) -> None:
    got = plan_changes(changes, reason="r", egress_first=egress_first)
    want = _reference_plan(changes, reason="r", egress_first=egress_first)
    assert got == want


# ------------------------------------------------------------- one owner alone
_flow_needs = st.dictionaries(
    st.integers(1, 4),
    st.lists(_entries, max_size=2, unique_by=lambda e: e.key).map(tuple),
    max_size=3,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.integers(1, 3), _flow_needs), min_size=1, max_size=8))
def test_one_owner_programs_equal_those_of_the_merged_path(
    steps: list[tuple[int, dict[int, tuple[FlowEntry, ...]]]],
) -> None:
    single, merged = Programmer(warmup_s=0.0), Programmer(warmup_s=0.0)
    for prog in (single, merged):
        for dpid in range(1, 5):
            prog.switch_synced(dpid, SwitchTable(), now=0.0, warm=False)
    for i, (owner, flows) in enumerate(steps):
        # Each owner's entries carry its id in the cookie-free key space of its own
        # priority, so two owners never claim one key.
        flows = {
            d: tuple(FlowEntry(owner * 10 + e.priority, e.match, e.actions, 1) for e in es)
            for d, es in flows.items()
        }
        needs = OwnerNeeds.build(flows=flows)
        a = single.set_owner(("flow", owner), needs, now=float(i), reason="x")
        # A second owner that needs nothing and never did changes nothing: the
        # changes are merged through the general path, with the same result.
        b = merged.set_owners({("flow", owner): needs, "idle": OwnerNeeds()}, now=float(i))
        b.reason = "x"
        assert a == b
    assert single.installed == merged.installed


# ---------------------------------------------------------- content-named groups
def test_cached_groups_equal_freshly_built_ones() -> None:
    for ports in ([1, 2], (3, 1, 2), [7]):
        chain = failover_chain(ports)
        buckets = tuple(Bucket(actions=(Output(p),), watch_port=p) for p in ports)
        assert chain == GroupEntry(
            group_id_for(GroupType.FAST_FAILOVER, buckets), GroupType.FAST_FAILOVER, buckets
        )
    assert failover_group(1, 2) == failover_chain([1, 2])
    assert bounce_group(3) == bounce_group(3) and bounce_group(3) != bounce_group(4)
    with pytest.raises(ValueError, match="at least one port"):
        failover_chain([])


# ------------------------------------------------------------ fake switch checks
def test_a_remembered_valid_match_does_not_excuse_the_rest_of_an_entry() -> None:
    match = Match.of(eth_type=0x0800, ip_proto=17, udp_src=9)
    ok = FlowEntry(1, match, (Output(1),), 1)
    check_flow(1, ok, groups={}, meters={})
    check_flow(1, ok, groups={}, meters={})  # remembered
    with pytest.raises(OpenFlowError, match="BAD_OUT_GROUP") as err:
        check_flow(1, FlowEntry(1, match, (GroupAction(5),), 1), groups={}, meters={})
    assert str(err.value).endswith(f"flow {match} -> 0x5")  # the entry is named in full
    with pytest.raises(OpenFlowError, match="BAD_METER"):
        check_flow(1, FlowEntry(1, match, (Output(1),), 1, meter_id=3), groups={}, meters={})
    with pytest.raises(OpenFlowError, match="BAD_PREREQ"):
        check_flow(1, FlowEntry(1, Match.of(udp_src=9), (Output(1),), 1), groups={}, meters={})


def test_a_remembered_match_shape_does_not_excuse_other_values_or_masks() -> None:
    def check(**fields: object) -> None:
        check_flow(1, FlowEntry(1, Match.of(**fields), (Output(1),), 1), groups={}, meters={})

    check(eth_type=0x0800, ip_proto=17, udp_src=9, udp_dst=4791)
    check(eth_type=0x0800, ip_proto=17, udp_src=10, udp_dst=4792)  # same shape: remembered
    with pytest.raises(OpenFlowError, match="BAD_PREREQ"):  # same names, TCP: not the shape
        check(eth_type=0x0800, ip_proto=6, udp_src=9, udp_dst=4791)
    with pytest.raises(OpenFlowError, match="BAD_PREREQ"):
        check(eth_type=0x0806, ip_proto=17, udp_src=9, udp_dst=4791)
    with pytest.raises(OpenFlowError, match="BAD_WILDCARDS"):  # masked: checked every time
        check(eth_type=0x0800, ip_proto=17, udp_src=(0x0F, 0x01), udp_dst=4791)
    with pytest.raises(OpenFlowError, match="BAD_MASK"):
        check(eth_type=(0x0800, 0xFFFF), ip_proto=17, udp_src=9, udp_dst=4791)
    # A tag is a property of the vlan_vid value, not of the names.
    tagged = (PushVlan(0x8100),)
    with pytest.raises(AssertionError, match="single VLAN tag"):
        check_flow(1, FlowEntry(1, Match.of(vlan_vid=0x1005), tagged, 1), groups={}, meters={})
    check_flow(1, FlowEntry(1, Match.of(vlan_vid=0x0000), tagged, 1), groups={}, meters={})
    with pytest.raises(AssertionError, match="single VLAN tag"):
        check_flow(1, FlowEntry(1, Match.of(vlan_vid=0x1006), tagged, 1), groups={}, meters={})


def test_instructions_are_split_off_the_end_and_nowhere_else() -> None:
    plain = (Output(1), GroupAction(2))
    assert split_instructions(plain) == (plain, None, None)
    assert split_instructions(list(plain)) == (plain, None, None)
    meta, goto = WriteMetadata(7), GotoTable(3)
    assert split_instructions((*plain, meta, goto)) == (plain, meta, goto)
    with pytest.raises(ValueError, match="must end the action list"):
        split_instructions((goto, Output(1)))


def test_a_link_hash_is_the_generated_one_and_not_pickled() -> None:
    from controller.fabric.model import LinkId, PortRef

    lid = LinkId(PortRef(1, 2), PortRef(3, 4))
    assert hash(lid) == hash(LinkId(PortRef(1, 2), PortRef(3, 4))) == hash((lid.src, lid.dst))
    assert {lid: 1}[LinkId(PortRef(1, 2), PortRef(3, 4))] == 1
    copy = pickle.loads(pickle.dumps(lid))
    assert copy == lid and "_hash" not in copy.__dict__ and hash(copy) == hash(lid)
    assert sorted([lid.reverse(), lid]) == [lid, lid.reverse()]


_small = st.integers(min_value=0, max_value=3)
_links = st.builds(LinkId, st.builds(PortRef, _small, _small), st.builds(PortRef, _small, _small))


@given(st.lists(_links, max_size=40))
def test_link_order_sorts_links_as_their_own_ordering_does(links: list[LinkId]) -> None:
    # Topology changes sort every link of the fabric by this key instead of by
    # the dataclass comparison (five times faster on 65,536 shuffled links): the
    # same order.
    assert sorted(links, key=link_order) == sorted(links)
