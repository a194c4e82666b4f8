"""A switch whose routes a lost spine only replaced is reassembled run by run: its
sets claimed again in order, no destination visited when the actions stay, and
only the destinations of a renamed set made again; always what a fresh
compilation makes."""

from __future__ import annotations

import random

import pytest
from synthetic import leaf_spine
from test_forwarding_incremental import World

from controller.fabric.model import Dpid, LinkId
from controller.flowprog import forwarding, fwdassembly, spread
from controller.flowprog.forwarding import ForwardingCompiler
from controller.flowprog.spread import NextHopSet


def _world(spines: int = 4, leaves: int = 12) -> tuple[World, ForwardingCompiler]:
    world = World(leaf_spine(spines, leaves), random.Random(3))
    world.hosts = {f"02:00:00:00:00:{i:02x}": p for i, p in enumerate(world.ports)}
    compiler = ForwardingCompiler()
    compiler.compile(world.inputs())
    return world, compiler


def _cables_of(world: World, name: str) -> set[LinkId]:
    dpid = next(d for d, n in world.fabric.names.items() if n == name)
    return {c for c in world.cables if dpid in (c.src.dpid, c.dst.dpid)}


def _spy(monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[Dpid, Dpid]], list[bool]]:
    """Entries made towards (switch, destination), and each replay's whether it ran."""
    made: list[tuple[Dpid, Dpid]] = []
    entries = ForwardingCompiler._entries

    def making(self: ForwardingCompiler, dpid: Dpid, dst: Dpid, *args: object) -> object:
        made.append((dpid, dst))
        return entries(self, dpid, dst, *args)  # type: ignore[arg-type]

    replays: list[bool] = []
    replay = forwarding.replay

    def replaying(*args: object) -> object:
        replays.append(True)
        return replay(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ForwardingCompiler, "_entries", making)
    monkeypatch.setattr(forwarding, "replay", replaying)
    return made, replays


def _leaves(world: World) -> list[Dpid]:
    return sorted(d for d, n in world.fabric.names.items() if n in world.fabric.leaves)


def test_a_lost_spine_replays_every_leaf_and_makes_no_entry_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, compiler = _world()
    made, replays = _spy(monkeypatch)
    world.down |= _cables_of(world, "spine1")
    held = compiler.compile(world.inputs())
    leaves = _leaves(world)
    assert len(replays) == len(leaves)  # each leaf replayed, none assembled whole
    assert made == []  # (whole, a leaf makes its own hosts' entries at least)
    monkeypatch.undo()
    fresh = ForwardingCompiler().compile(world.inputs())
    assert set(leaves) <= held.keys() and held == {d: fresh[d] for d in held}


def test_after_a_lost_uplink_a_lost_spine_makes_no_entry_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """leaf1 lost its cable to spine2 first: every leaf reaches leaf1 by a set derived
    without spine2. Losing spine1 takes it from that set too, which keeps its name
    (spine1 is lacking towards every destination, so it does not name the set): no
    leaf makes its entries towards leaf1 again, and each leaf's sets are claimed
    under the names they had (leaf1's own set, degraded in place by 2 of 8 spines,
    keeps its name too)."""
    world, compiler = _world(spines=8, leaves=6)
    leaves = _leaves(world)
    leaf1 = next(d for d, n in world.fabric.names.items() if n == "leaf1")
    world.down |= _cables_of(world, "spine2") & _cables_of(world, "leaf1")
    before = compiler.compile(world.inputs())
    made, replays = _spy(monkeypatch)
    world.down |= _cables_of(world, "spine1")
    held = compiler.compile(world.inputs())
    assert len(replays) == len(leaves)
    assert made == []
    for leaf in leaves:
        added = held[leaf].sets.keys() - before[leaf].sets.keys()
        assert before[leaf].sets.keys() <= held[leaf].sets.keys()
        assert all(in_place for _, in_place in added)  # its parent degraded (leaf1's was)
        assert bool(added) == (leaf != leaf1)
        assert held[leaf].routes is before[leaf].routes  # not one route entry compared
    others = [leaf for leaf in leaves if leaf != leaf1]
    derived = {leaf: [k for k in held[leaf].sets if k[0] >> 32 & 0xFFFFFF] for leaf in others}
    assert all(len(keys) == 1 for keys in derived.values())  # towards leaf1, renamed before
    monkeypatch.undo()
    fresh = ForwardingCompiler().compile(world.inputs())
    assert held == {d: fresh[d] for d in held}


def test_a_host_learned_with_the_lost_spine_assembles_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A destination's hosts changing in the same compilation is not a replacement of
    routes only: no replay (its entries must change everywhere)."""
    world, compiler = _world()
    mac = next(iter(world.hosts))
    port = world.hosts.pop(mac)
    made, replays = _spy(monkeypatch)
    world.down |= _cables_of(world, "spine1")
    held = compiler.compile(world.inputs())
    assert replays == [] and made
    monkeypatch.undo()
    fresh = ForwardingCompiler().compile(world.inputs())
    assert held == {d: fresh[d] for d in held}
    world.hosts[mac] = port


@pytest.fixture
def one_set_id(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Every parent set named alike: on a switch the second set claimed finds its id
    taken and its routes fall back to their SELECT group. The sets and their compiled
    entries are cached per value: emptied before and after."""
    caches = (
        spread._interned_set,
        spread._derived,
        spread.bucket_ports,
        spread._compiled_set,
        spread._compiled_derived,
        fwdassembly.set_needs,
    )
    for cache in caches:
        cache.cache_clear()
    named = NextHopSet.set_id

    def set_id(self: NextHopSet) -> int:
        return spread._METADATA_TAG | 1 if self.parent is None else named.func(self)

    monkeypatch.setattr(NextHopSet, "set_id", property(set_id))
    yield
    monkeypatch.undo()
    for cache in caches:
        cache.cache_clear()


def test_routes_on_a_taken_set_id_keep_their_group_through_hosts_moved_and_cut(
    one_set_id: None,
) -> None:
    """leaf1 lost its cables to spine2 and spine3: the others reach leaf1 over a set
    of their own (2 of 4 spines: too few to derive) whose id their full set holds,
    so those routes use its SELECT group; hosts swapped between leaf1 and leaf2
    (entries patched) and then a lost spine keep that, as a fresh compilation has it."""
    world, compiler = _world()
    world.down |= (_cables_of(world, "spine2") | _cables_of(world, "spine3")) & _cables_of(
        world, "leaf1"
    )
    held = dict(compiler.compile(world.inputs()))
    names = world.fabric.names
    leaf1, leaf2 = (next(d for d, n in names.items() if n == name) for name in ("leaf1", "leaf2"))
    fell = {d for d, built in compiler._built.items() for r in built.runs if r.fell}
    assert fell and leaf1 not in fell
    a = next(m for m, p in world.hosts.items() if p.dpid == leaf1)
    b = next(m for m, p in world.hosts.items() if p.dpid == leaf2)
    world.hosts[a], world.hosts[b] = world.hosts[b], world.hosts[a]
    for step in ("hosts", "spine"):
        if step == "spine":
            world.down |= _cables_of(world, "spine1")
        held.update(compiler.compile(world.inputs()))
        assert held == ForwardingCompiler().compile(world.inputs()), step
