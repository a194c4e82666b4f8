"""Default forwarding compiled incrementally equals a fresh compilation, after any
sequence of cables lost and restored, hosts learned, moved and forgotten, links
drained and option changes; and a compilation with nothing changed is empty."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import Fabric, leaf_spine, three_tier

from controller.fabric.model import Dpid, Host, LinkId, PortRef
from controller.flowprog import forwarding
from controller.flowprog.forwarding import ForwardingCompiler, ForwardingInputs, SwitchForwarding
from controller.flowprog.fwdroutes import RouteView

FABRICS = {
    "2x4": lambda: leaf_spine(2, 4),
    "4x6": lambda: leaf_spine(4, 6),
    "3-tier": lambda: three_tier(pods=2, leaves_per_pod=2, aggs_per_pod=2, spines=2),
}


class World:
    """A fabric's links and hosts, changed at random."""

    def __init__(self, fabric: Fabric, rng: random.Random) -> None:
        self.fabric, self.rng = fabric, rng
        self.cables = sorted(
            {
                min(lid, lid.reverse())
                for _, _, a in fabric.graph.edges(data=True)
                for lid in [a["link"]]
            }
        )
        self.down: set[LinkId] = set()
        self.drained: set[LinkId] = set()
        self.ports = [fabric.host_port(leaf, i) for leaf in fabric.leaves for i in range(2)]
        self.hosts: dict[str, PortRef] = {}
        for i, port in enumerate(self.ports):
            if rng.random() < 0.7:
                self.hosts[f"02:00:00:00:00:{i:02x}"] = port
        self.options = {"spread_l4": True, "local_repair": True, "single_path": False}
        self.facing: set[Dpid] = set()  # switches that face a host besides the leaves

    def step(self) -> str:
        rng = self.rng
        steps = ["cable", "cable", "cables", "switch", "host", "host", "move", "drain", "swap"]
        what = rng.choice([*steps, "option", "facing"])
        if what == "cable":
            self.down ^= {rng.choice(self.cables)}
        elif what == "cables":  # several at once, some maybe already down
            self.down ^= set(rng.sample(self.cables, min(3, len(self.cables))))
        elif what == "switch":  # every cable of one switch down, or back up
            dpid = rng.choice(sorted(self.fabric.names))
            mine = {c for c in self.cables if dpid in (c.src.dpid, c.dst.dpid)}
            self.down = self.down - mine if mine <= self.down else self.down | mine
        elif what == "host":
            i = rng.randrange(len(self.ports))
            mac = f"02:00:00:00:00:{i:02x}"
            if self.hosts.pop(mac, None) is None:
                self.hosts[mac] = self.ports[i]
        elif what == "swap" and self.hosts:
            # A host replaced by another on its port (its switch keeps as many hosts)
            # while a cable changes: switches redone for the cable must not keep the
            # gone host's entries.
            mac = rng.choice(sorted(self.hosts))
            self.hosts[f"02:00:00:00:01:{rng.randrange(256):02x}"] = self.hosts.pop(mac)
            self.down ^= {rng.choice(self.cables)}
        elif what == "move" and self.hosts:
            self.hosts[rng.choice(sorted(self.hosts))] = rng.choice(self.ports)
        elif what == "drain":
            self.drained ^= {rng.choice(self.cables)}
        elif what == "facing":
            self.facing ^= {rng.choice(sorted(self.fabric.names))}
        elif what == "option":
            name = rng.choice(sorted(self.options))
            self.options[name] = not self.options[name]
        return what

    def inputs(self) -> ForwardingInputs:
        links = [
            lid
            for cable in self.cables
            if cable not in self.down
            for lid in (cable, cable.reverse())
        ]
        edge: dict[Dpid, list[int]] = {}
        for port in self.ports:
            edge.setdefault(port.dpid, []).append(port.port)
        drained = {lid for c in self.drained for lid in (c, c.reverse())}
        lost: dict[Dpid, list[tuple[int, Dpid]]] = {}  # both ends of a cable down (the
        for cable in self.down:  # topology's are uplinks only: any do for this property)
            for end, peer in ((cable.src, cable.dst), (cable.dst, cable.src)):
                lost.setdefault(end.dpid, []).append((end.port, peer.dpid))
        return ForwardingInputs(
            switches=sorted(self.fabric.names),
            links=links,
            hosts=[
                Host(mac, f"10.0.0.{i}", port, 1.0)
                for i, (mac, port) in enumerate(sorted(self.hosts.items()))
            ],
            edge_ports=lambda d: edge.get(d, []),
            host_facing=lambda d: d in self.facing or d in edge,
            drained=frozenset(drained),
            lost_uplinks=lambda d: sorted(lost.get(d, [])),
            **self.options,  # type: ignore[arg-type]
        )


@settings(max_examples=100, deadline=None)
@given(fabric=st.sampled_from(sorted(FABRICS)), seed=st.integers(0, 10**6))
def test_incremental_compilation_equals_a_fresh_one(fabric: str, seed: int) -> None:
    world = World(FABRICS[fabric](), random.Random(seed))
    compiler = ForwardingCompiler()
    held: dict[Dpid, SwitchForwarding] = dict(compiler.compile(world.inputs()))
    for _ in range(10):
        what = world.step()
        inp = world.inputs()
        held.update(compiler.compile(inp))
        fresh = ForwardingCompiler().compile(inp)
        assert held == fresh, what
        assert compiler.compile(inp) == {}  # nothing changed: nothing to do


def test_a_learned_host_redoes_no_route_and_a_lost_cable_only_its_own() -> None:
    world = World(leaf_spine(4, 6), random.Random(1))
    world.hosts = {f"02:00:00:00:00:{i:02x}": p for i, p in enumerate(world.ports) if i % 2}
    compiler = ForwardingCompiler()
    compiler.compile(world.inputs())
    routes = {d: dict(r) for d, r in compiler._routes.items()}

    world.hosts["02:00:00:00:00:00"] = world.ports[0]  # a second host on leaf1
    compiler.compile(world.inputs())
    assert {d: dict(r) for d, r in compiler._routes.items()} == routes  # the same objects

    cable = next(c for c in world.cables if world.fabric.names[c.src.dpid] == "leaf1")
    world.down.add(cable)
    compiler.compile(world.inputs())
    redone = {
        (d, dst)
        for d, r in compiler._routes.items()
        for dst, route in r.items()
        if routes[d].get(dst) is not route
    }
    leaf1, spine = cable.src.dpid, cable.dst.dpid
    # leaf1's routes (one uplink fewer), the others' routes to leaf1, the spine's.
    assert redone and all(leaf1 in (d, dst) or d == spine for d, dst in redone)


def _searched(monkeypatch: pytest.MonkeyPatch) -> list[list[Dpid]]:
    """The destinations each compilation searched next hops for, from now on."""
    calls: list[list[Dpid]] = []
    search = forwarding.next_hops_many

    def recording(dsts: list[Dpid], *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(list(dsts))
        return search(dsts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(forwarding, "next_hops_many", recording)
    return calls


def _compiled(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[World, ForwardingCompiler, list[list[Dpid]]]:
    """A 4 x 6 fabric with a host on every port, compiled; then searches recorded."""
    world = World(leaf_spine(4, 6), random.Random(1))
    world.hosts = {f"02:00:00:00:00:{i:02x}": p for i, p in enumerate(world.ports)}
    compiler = ForwardingCompiler()
    compiler.compile(world.inputs())
    return world, compiler, _searched(monkeypatch)


def test_a_lost_uplink_searches_only_the_destination_whose_distances_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, compiler, searched = _compiled(monkeypatch)
    names = world.fabric.names
    cable = next(c for c in world.cables if names[c.src.dpid] == "leaf1")
    leaf1, spine = cable.src.dpid, cable.dst.dpid
    world.down.add(cable)
    held = compiler.compile(world.inputs())
    # The spine's last link into leaf1 is gone: only leaf1's distances change. The
    # other leaves keep theirs; leaf1 only forwards over one spine fewer to them.
    assert searched == [[leaf1]]
    fresh = ForwardingCompiler().compile(world.inputs())
    leaves = sorted(d for d, name in names.items() if name.startswith("leaf"))
    assert searched.pop() == leaves  # a fresh compiler searches every destination
    assert held and all(fresh[d] == needs for d, needs in held.items())
    for dst in leaves[1:]:
        assert cable.src.port not in compiler._routes[leaf1][dst].ports

    world.drained.add(next(c for c in world.cables if names[c.src.dpid] == "leaf2"))
    compiler.compile(world.inputs())
    assert len(searched) == 2 and len(searched[1]) == 1  # the drained link's leaf only

    world.down.discard(cable)  # back: leaf1 is nearer again to the spine
    world.facing.add(spine)  # and a switch key changes with no link change
    compiler.compile(world.inputs())
    assert searched[2] == [leaf1]


def test_a_lost_spine_searches_no_destination_and_moves_every_leaf_off_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, compiler, searched = _compiled(monkeypatch)
    names = world.fabric.names
    spine = next(d for d, name in names.items() if name == "spine1")
    cables = {c for c in world.cables if spine in (c.src.dpid, c.dst.dpid)}
    world.down |= cables  # the spine's every cable at once, as when it dies
    held = compiler.compile(world.inputs())
    # Every leaf keeps three spines to every other leaf: no distance changes, so
    # no destination is searched; the leaves' routes lose the spine's port.
    assert searched == [[]]
    fresh = ForwardingCompiler().compile(world.inputs())
    assert held and all(fresh[d] == needs for d, needs in held.items())
    assert compiler._routes[spine] == {}
    leaves = sorted(d for d, name in names.items() if name.startswith("leaf"))
    to_spine = {c.src.port for c in cables if c.src.dpid != spine} | {
        c.dst.port for c in cables if c.dst.dpid != spine
    }
    for leaf in leaves:
        routes = compiler._routes[leaf]
        assert sorted(routes) == [d for d in leaves if d != leaf]
        assert all(len(r.ports) == 3 and to_spine.isdisjoint(r.ports) for r in routes.values())


def test_a_lost_spine_hands_back_every_leafs_routes_as_the_very_same_needs() -> None:
    """Each leaf's sets degrade in place: its routes part is the object it was (the
    programmer compares none of its ~1,000 entries at 64 x 512), and so is its full
    set's (~500 entries), beside which the degraded set comes."""
    world = World(leaf_spine(8, 4), random.Random(2))  # (of 4 spines, 3 take 4/3 of
    compiler = ForwardingCompiler()  # their share: over what a degraded set may)
    before = compiler.compile(world.inputs())
    spine = next(d for d, name in world.fabric.names.items() if name == "spine2")
    world.down |= {c for c in world.cables if spine in (c.src.dpid, c.dst.dpid)}
    after = compiler.compile(world.inputs())
    leaves = [d for d, name in world.fabric.names.items() if name in world.fabric.leaves]
    assert leaves and set(leaves) <= after.keys()
    for leaf in leaves:
        assert after[leaf].routes is before[leaf].routes
        assert after[leaf].sets != before[leaf].sets  # a set degraded beside its parent
        (parent,) = set(after[leaf].sets.keys()) & set(before[leaf].sets.keys())
        assert after[leaf].sets[parent] is before[leaf].sets[parent]
    # The same as a fresh compilation's, part by part.
    fresh = ForwardingCompiler().compile(world.inputs())
    assert {leaf: after[leaf] for leaf in leaves} == {leaf: fresh[leaf] for leaf in leaves}


def test_a_lost_spine_redoes_each_leafs_shared_routes_once_not_per_destination(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A leaf's routes to the other leaves share one route object; the lost spine cuts
    its ports once and every destination follows (262,144 routes at 64 x 512)."""
    world = World(leaf_spine(4, 12), random.Random(3))
    world.hosts = {f"02:00:00:00:00:{i:02x}": p for i, p in enumerate(world.ports)}
    compiler = ForwardingCompiler()
    compiler.compile(world.inputs())
    made: list[tuple[Dpid, Dpid]] = []
    route = RouteView.route

    def counting(self: RouteView, dpid: Dpid, dst: Dpid, *args: object) -> object:
        made.append((dpid, dst))
        return route(self, dpid, dst, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(RouteView, "route", counting)
    spine = next(d for d, name in world.fabric.names.items() if name == "spine1")
    world.down |= {c for c in world.cables if spine in (c.src.dpid, c.dst.dpid)}
    held = compiler.compile(world.inputs())
    leaves = [d for d, name in world.fabric.names.items() if name in world.fabric.leaves]
    assert len(made) == len(leaves)  # one route redone per leaf, for 11 destinations each
    for leaf in leaves:
        routes = compiler._routes[leaf]
        assert len(routes) == len(leaves) - 1 and len({id(r) for r in routes.values()}) == 1
    monkeypatch.undo()
    fresh = ForwardingCompiler().compile(world.inputs())
    assert held == {d: fresh[d] for d in held}
