"""A declared job's compiled rules, installed on a fake fabric and walked.

Guards :mod:`controller.flowprog.jobrules`: the rules of a job carry exactly
the traffic of its pairs (those hosts, that protocol and those destination
ports) along each pair's planned path; the ingress repairs a failed uplink in
the switch when failover is on (the default) and not otherwise; every entry is
permanent, quiet (no flow-removed message), at the job priority and under the
job's cookie; the switch order puts switches nearer an egress first; and
cookies tell jobs and plan generations apart while staying stable.
"""

from __future__ import annotations

from itertools import pairwise

from synthetic import Fabric, leaf_spine

from controller.devtools.fakeoftable import FakeFabric, WalkResult
from controller.fabric.model import Dpid, Path
from controller.flowprog.entries import Cookie, CookieKind, FlowEntry, Match, Output
from controller.flowprog.forwarding import PRIO_FLOW, PRIO_JOB
from controller.flowprog.jobrules import PairRoute, compile_job, job_cookie, job_id
from controller.flowprog.plan import FlowAdd, GroupAdd
from controller.flowprog.tables import OwnerNeeds
from controller.policy.model import FlowMatch, PortRange

ROCE = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
H1, H2, H3 = "10.0.1.1", "10.0.2.1", "10.0.1.2"  # H1 and H3 on leaf1, H2 on leaf2


def path(fab: Fabric, *names: str) -> Path:
    return Path(
        switches=tuple(fab.dpid(n) for n in names),
        links=tuple(fab.link(a, b) for a, b in pairwise(names)),
    )


def route(fab: Fabric, src_ip: str, dst_ip: str, *names: str, backup: str = "") -> PairRoute:
    """A pair placed on ``names``; ``backup``: the spine of the ingress's other uplink."""
    backups = (fab.link(names[0], backup).src.port,) if backup else ()
    return PairRoute(src_ip, dst_ip, path(fab, *names), fab.host_port(names[-1]).port, backups)


def install(fab: Fabric, needs: OwnerNeeds, order: tuple[Dpid, ...]) -> FakeFabric:
    links = [lid for _, _, lid in fab.graph.edges(data="link")]
    fake = FakeFabric(switches=fab.names, links=links)
    for dpid in order:
        ops = [GroupAdd(g) for g in needs.groups.get(dpid, ())]
        fake.apply_ops(dpid, [*ops, *(FlowAdd(e) for e in needs.flows.get(dpid, ()))])
    assert set(needs.flows) <= set(order)
    return fake


def default_route(fake: FakeFabric, fab: Fabric, switch: str, ip: str, leaf: str) -> None:
    """What default forwarding gives a spine, below every job rule: ``ip`` towards ``leaf``."""
    port = fab.link(switch, leaf).src.port
    entry = FlowEntry(10, Match.of(eth_type=0x0800, ipv4_dst=ip), (Output(port),), cookie=0)
    fake.apply_ops(fab.dpid(switch), [FlowAdd(entry)])


def send(
    fake: FakeFabric, fab: Fabric, leaf: str, src: str, dst: str, *, port: int = 4791
) -> WalkResult:
    packet: dict[str, int | str] = {
        "eth_type": 0x0800,
        "ip_proto": 17,
        "ipv4_src": src,
        "ipv4_dst": dst,
        "udp_src": 49152,
        "udp_dst": port,
    }
    return fake.walk(fab.dpid(leaf), fab.host_port(leaf).port, packet)


def two_pairs(fab: Fabric) -> list[PairRoute]:
    return [
        route(fab, H1, H2, "leaf1", "spine1", "leaf2", backup="spine2"),
        route(fab, H2, H1, "leaf2", "spine2", "leaf1", backup="spine1"),
    ]


def test_the_rules_carry_exactly_the_pairs_traffic_along_the_planned_paths() -> None:
    fab = leaf_spine(2, 2)
    needs, order = compile_job(two_pairs(fab), transport=ROCE, cookie=job_cookie("llama", 1))
    fake = install(fab, needs, order)
    there = send(fake, fab, "leaf1", H1, H2)
    assert there.only_to(fab.host_port("leaf2"))
    assert there.paths == {tuple(fab.dpid(n) for n in ("leaf1", "spine1", "leaf2"))}
    back = send(fake, fab, "leaf2", H2, H1)
    assert back.only_to(fab.host_port("leaf1"))
    assert back.paths == {tuple(fab.dpid(n) for n in ("leaf2", "spine2", "leaf1"))}
    # Other destination ports, and other hosts, are not the job's traffic.
    assert not send(fake, fab, "leaf1", H1, H2, port=4792).delivered
    assert not send(fake, fab, "leaf1", H3, H2).delivered
    assert not send(fake, fab, "leaf1", H1, "10.0.2.9").delivered


def test_the_ingress_repairs_a_failed_uplink_only_with_failover() -> None:
    """With its planned uplink down the ingress takes the other one (where the
    spine's default forwarding carries on) - unless failover is off."""
    fab = leaf_spine(2, 2)
    uplink = fab.link("leaf1", "spine1").src
    needs, order = compile_job(two_pairs(fab), transport=ROCE, cookie=job_cookie("llama", 1))
    fake = install(fab, needs, order)
    default_route(fake, fab, "spine2", H2, "leaf2")
    fake.down.add(uplink)
    detour = send(fake, fab, "leaf1", H1, H2)
    assert detour.only_to(fab.host_port("leaf2"))
    assert detour.paths == {tuple(fab.dpid(n) for n in ("leaf1", "spine2", "leaf2"))}

    needs, order = compile_job(
        two_pairs(fab), transport=ROCE, cookie=job_cookie("llama", 1), failover=False
    )
    assert not any(needs.groups.values())
    fake = install(fab, needs, order)
    default_route(fake, fab, "spine2", H2, "leaf2")
    assert send(fake, fab, "leaf1", H1, H2).only_to(fab.host_port("leaf2"))
    fake.down.add(uplink)
    broken = send(fake, fab, "leaf1", H1, H2)
    assert broken.dropped and not broken.delivered


def test_every_entry_is_permanent_quiet_and_under_the_jobs_cookie() -> None:
    fab = leaf_spine(2, 2)
    cookie = job_cookie("llama", 7)
    needs, _ = compile_job(two_pairs(fab), transport=ROCE, cookie=cookie)
    entries = [e for flows in needs.flows.values() for e in flows]
    assert len(entries) == 6  # one match per pair on each of its three switches
    assert sum(e.ingress for e in entries) == 2
    for e in entries:
        assert e.priority == PRIO_JOB < PRIO_FLOW
        assert e.cookie == cookie
        assert e.idle_timeout == 0 and e.hard_timeout == 0  # a quiet phase keeps the rules
        assert e.send_flow_removed is False


def test_switches_nearer_an_egress_come_first() -> None:
    fab = leaf_spine(2, 2)
    leaf1, leaf2, spine1 = fab.dpid("leaf1"), fab.dpid("leaf2"), fab.dpid("spine1")
    one = [route(fab, H1, H2, "leaf1", "spine1", "leaf2")]
    _, order = compile_job(one, transport=ROCE, cookie=1)
    assert order == (leaf2, spine1, leaf1)
    # Both leaves are an egress of some pair: they go first (then by dpid), the spine after.
    both = [*one, route(fab, H2, H1, "leaf2", "spine1", "leaf1")]
    _, order = compile_job(both, transport=ROCE, cookie=1)
    assert order == (leaf1, leaf2, spine1)
    _, order = compile_job(both[::-1], transport=ROCE, cookie=1)
    assert order == (leaf1, leaf2, spine1)


def test_cookies_tell_jobs_and_generations_apart_and_stay_stable() -> None:
    names = ["llama-70b", "gpt-j", "bert-large", "resnet", "t5", "mixtral"]
    at_one = {job_cookie(n, 1) for n in names}
    assert len(at_one) == len(names)
    for name in names:
        gens = [job_cookie(name, g) for g in range(6)]
        assert len(set(gens)) == len(gens)
        assert len({g & Cookie.FLOW_MASK for g in gens}) == 1  # one job, whatever the plan
        assert job_cookie(name, 3) == job_cookie(name, 3)
        for gen in (0, 1, 0xFFFF, 0x10002):
            decoded = Cookie.decode(job_cookie(name, gen))
            assert decoded == Cookie(CookieKind.JOB, job_id(name), gen % 0x10000)
    assert job_id("") != 0  # flow id 0 would name no job


def test_transit_hops_that_default_forwarding_takes_are_left_to_it_per_destination() -> None:
    fab = leaf_spine(2, 2)
    asked: list[str] = []

    def takes_for(dst_ip: str):  # type: ignore[no-untyped-def]
        asked.append(dst_ip)
        if dst_ip != H2:
            return None  # no host route known towards H1: every hop gets its rule
        return lambda dpid, action: True

    needs, order = compile_job(
        two_pairs(fab), transport=ROCE, cookie=job_cookie("llama", 1), default_takes=takes_for
    )
    assert sorted(asked) == sorted([H1, H2])
    there = {
        dpid
        for dpid, entries in needs.flows.items()
        for e in entries
        if e.match.as_dict()["ipv4_dst"] == H2
    }
    back = {
        dpid
        for dpid, entries in needs.flows.items()
        for e in entries
        if e.match.as_dict()["ipv4_dst"] == H1
    }
    assert there == {fab.dpid("leaf1")}  # the ingress rule alone
    assert back == {fab.dpid(n) for n in ("leaf2", "spine2", "leaf1")}
    fake = install(fab, needs, order)
    default_route(fake, fab, "spine1", H2, "leaf2")
    fake.apply_ops(
        fab.dpid("leaf2"),
        [
            FlowAdd(
                FlowEntry(
                    10,
                    Match.of(eth_type=0x0800, ipv4_dst=H2),
                    (Output(fab.host_port("leaf2").port),),
                    cookie=0,
                )
            )
        ],
    )
    walk = send(fake, fab, "leaf1", H1, H2)
    assert walk.only_to(fab.host_port("leaf2"))
    assert walk.paths == {tuple(fab.dpid(n) for n in ("leaf1", "spine1", "leaf2"))}
