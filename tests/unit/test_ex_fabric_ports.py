"""A port that lost its link but stayed up (the peer reported first, or LLDP went
quiet) faces a switch, not a host: a spine with such a port is still a spine.

Before, such a port made its spine "have edge ports", so forwarding took the spine
for a leaf: every leaf's routes over it counted as detours through another leaf
and fell back from the spread table to SELECT groups, fabric-wide, for one lost
cable (80,646 operations at 16 x 128 for a single uplink reported by its leaf).
"""

from __future__ import annotations

import pytest
from enginelab import EngineLab
from synthetic import leaf_spine

from controller.flowprog.entries import GroupAction, GroupType
from controller.flowprog.forwarding import PRIO_HOST, ForwardingCompiler, ForwardingInputs
from controller.flowprog.tables import OwnerNeeds


def tables(lab: EngineLab) -> dict[int, tuple[object, ...]]:
    return {d: sw.contents() for d, sw in sorted(lab.fake.switches.items())}


def grouped_routes(lab: EngineLab, name: str) -> set[str]:
    """The hosts ``name`` routes to through a SELECT group (not the spread table)."""
    sw = lab.fake.switches[lab.dpid(name)]
    select = {g.group_id for g in sw.groups.values() if g.type is GroupType.SELECT}
    return {
        str(e.match.as_dict()["eth_dst"])
        for e in sw.flows.values()
        if e.priority == PRIO_HOST
        and any(isinstance(a, GroupAction) and a.group_id in select for a in e.actions)
    }


def test_a_spine_keeps_facing_switches_after_its_peer_reports_the_cable_down() -> None:
    lab = EngineLab(leaf_spine(2, 4)).ready()
    topo = lab.net.topo
    cable = lab.cable("leaf1", "spine1")
    spine, leaf = cable.dst.dpid, cable.src.dpid
    assert not topo.host_facing(spine) and topo.host_facing(leaf)

    lab.set_port(cable.src, up=False)  # the leaf reports; the spine's port stays up
    assert topo.edge_ports(spine) == [cable.dst.port]  # an up port without a link ...
    assert not topo.host_facing(spine)  # ... that carried one: still a spine

    lab.set_port(cable.dst, up=False)
    lab.set_port(cable.dst, up=True)  # re-plugged: anything may be on it now
    assert topo.host_facing(spine)
    lab.set_port(cable.src, up=True)
    lab.lldp(cable)
    lab.lldp(cable.reverse())
    assert not topo.host_facing(spine)  # proven a link again


def test_an_lldp_timeout_leaves_a_spine_a_spine() -> None:
    lab = EngineLab(leaf_spine(2, 4)).ready()
    topo = lab.net.topo
    cable = lab.cable("spine2", "leaf3")
    for lid in (cable, cable.reverse()):
        lab.lldp_lost.add(lid.src)
    config = lab.net.config
    for _ in range(int(config.link_timeout_s / config.lldp_interval_s) + 2):
        lab.advance(config.lldp_interval_s)
        lab.tick()
    assert cable not in topo.links and cable.reverse() not in topo.links
    assert topo.edge_ports(cable.src.dpid) == [cable.src.port]
    assert not topo.host_facing(cable.src.dpid)
    assert topo.host_facing(cable.dst.dpid)


@pytest.mark.parametrize(("spines", "leaves"), [(2, 4), (4, 6)])
def test_a_cable_reported_by_one_end_programs_what_both_ends_would(
    spines: int, leaves: int
) -> None:
    both = EngineLab(leaf_spine(spines, leaves)).ready()
    one = EngineLab(leaf_spine(spines, leaves)).ready()
    assert grouped_routes(one, "leaf3") == set()  # every route uses the spread table
    cable = both.cable("leaf1", "spine1")
    one.set_port(cable.src, up=False)
    both.set_port(cable.src, up=False)
    both.set_port(cable.dst, up=False)

    assert tables(one) == tables(both)
    # A leaf away from the cable keeps spreading over the spines; at most its
    # routes to the hosts behind the cut leaf may need a group now.
    leaf1 = {h.mac for h in one.hosts if h.port.dpid == cable.src.dpid}
    assert grouped_routes(one, "leaf3") <= leaf1
    assert one.undelivered() == []


def test_the_second_end_of_a_lost_cable_only_moves_its_switch_traps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its link is gone already and the spine stays a spine: the routes cannot change,
    so default forwarding is not recomputed for the fabric a second time."""
    lab = EngineLab(leaf_spine(2, 4)).ready()
    cable = lab.cable("leaf2", "spine2")
    lab.set_port(cable.src, up=False)
    before = tables(lab)
    compiled: list[int] = []

    real = ForwardingCompiler.compile

    def counted(self: ForwardingCompiler, inp: ForwardingInputs) -> dict[int, OwnerNeeds]:
        compiled.append(1)
        return real(self, inp)

    monkeypatch.setattr(ForwardingCompiler, "compile", counted)
    lab.set_port(cable.dst, up=False)
    assert compiled == []
    assert tables(lab) == before  # no traps without policies: nothing to change
    lab.set_port(cable.src, up=True)  # a leaf's port up: its edge ports move, but it
    assert compiled == []  # faced hosts before and still does
    lab.set_port(cable.dst, up=True)  # a spine's fresh port may face a host: recomputed
    assert compiled == [1]
