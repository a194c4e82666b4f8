"""The published views: built as read, yet a picture of the moment they were published.

The publisher hands readers the links' and flows' inputs, captured when it
published, and each reader builds the views it reads (a publish at 64 x 512
no longer builds 65,536 link views and a view per placed flow). These tests
hold it to what eager views guaranteed: equal to what the hub's own functions
say at publish time, unchanged by anything the hub does afterwards, and
complete for a link that went down.
"""

from __future__ import annotations

from apilab import T0, ApiLab, roce_policy
from prometheus_client import generate_latest

from controller.engine.lazyviews import Derived
from controller.engine.snapshot import LinkLoad, TopologyViews
from controller.engine.views import FlowView, LinkView
from controller.fabric.model import LinkId, Port, PortRef
from controller.fabric.topology import Topology
from controller.policy.model import Policy


def _expected_links(api: ApiLab) -> list[LinkView]:
    """The links as the hub's topology and monitor see them now (eagerly)."""
    topo = api.engine.net.topo
    loads = api.engine.monitor.loads(topo)
    congested = api.engine.monitor.congested()
    views = []
    for lid in sorted(topo.links):
        load = loads[lid]
        views.append(
            LinkView(
                link=lid,
                name=topo.link_name(lid),
                src_switch=topo.label(lid.src.dpid),
                dst_switch=topo.label(lid.dst.dpid),
                up=True,
                drained=lid in topo.drained,
                capacity_bps=load.capacity_bps,
                rate_bps=load.rate_bps,
                utilization=load.utilization,
                congested=lid in congested,
            )
        )
    return views


def _expected_flows(api: ApiLab) -> list[tuple[object, ...]]:
    topo = api.engine.net.topo
    te = api.engine.placer.te
    return [
        (
            f.flow_id,
            f.five_tuple,
            f.policy,
            tuple(topo.label(d) for d in f.path.switches),
            tuple(topo.link_name(lid) for lid in f.path.links),
            f.rate_bps,
            f.moves,
            f.last_move_reason,
            _strategy(te.policy_of(f.flow_id), fell_back=f.fell_back),
        )
        for f in te.snapshot()
    ]


def _strategy(policy: Policy | None, *, fell_back: bool) -> str:
    """The strategy a flow is shown with: its policy's, or the fallback's once it fell back."""
    if policy is None:
        return ""
    return (policy.fallback if fell_back else policy.strategy).value


def _as_compared(view: FlowView) -> tuple[object, ...]:
    return (
        view.flow_id,
        view.five_tuple,
        view.policy,
        view.path,
        view.path_links,
        view.rate_bps,
        view.moves,
        view.last_move_reason,
        view.strategy,
    )


def test_views_built_as_read_equal_what_the_hub_sees_when_published() -> None:
    api = ApiLab(policies=(roce_policy(),))
    api.place_flow(api.hosts[0], api.hosts[2])
    api.place_flow(api.hosts[1], api.hosts[3], sport=49153)
    api.set_rate(api.link("spine2", "leaf2"), 9e9)
    views = api.publisher.views
    assert isinstance(views.topology.links, Derived) and isinstance(views.flows, Derived)
    links = list(views.topology.links)
    assert links == _expected_links(api)
    assert any(v.congested and v.utilization > 0.8 for v in links)  # the load made it in
    flows = list(views.flows)
    assert [_as_compared(v) for v in flows] == _expected_flows(api)
    assert len(flows) == 2
    for view in flows:
        flow = api.engine.placer.te.flow(view.flow_id)
        assert flow is not None
        assert view.placed_at == T0 + flow.placed_at  # the lab's wall clock is T0 + mono
        assert view.strategy == "least-utilized"
    # Indexing and slicing give the same views as iterating.
    assert views.flows[1] == flows[1] and views.topology.links[-2:] == tuple(links[-2:])


def test_a_published_picture_does_not_move_with_the_hub() -> None:
    api = ApiLab(policies=(roce_policy(),))
    flow_id = api.place_flow(api.hosts[0], api.hosts[2])
    old = api.publisher.views
    old_links, old_flows = list(old.topology.links), list(old.flows)
    # The hub moves on: load on a link, a drain (the flow moves), a second flow.
    api.set_rate(api.link("spine1", "leaf2"), 9e9)
    api.real.drain_link("leaf1-spine1")
    api.place_flow(api.hosts[1], api.hosts[3], sport=49153)
    new = api.publisher.views
    assert list(old.topology.links) == old_links  # read again: the same picture
    assert list(old.flows) == old_flows
    assert len(old.flows) == 1 and len(new.flows) == 2
    moved = next(v for v in new.flows if v.flow_id == flow_id)
    was = next(v for v in old_flows if v.flow_id == flow_id)
    assert (was.moves, moved.moves) == (0, 1) and moved.last_move_reason == "drain"
    assert list(new.topology.links) != old_links
    assert any(v.drained for v in new.topology.links)
    assert not any(v.drained for v in old.topology.links)


def _port(api: ApiLab, dpid: int, port_no: int) -> tuple[bool, bool]:
    """(up, fabric) of a port in the published switch views."""
    (sw,) = [s for s in api.publisher.views.topology.switches if s.dpid == dpid]
    (port,) = [p for p in sw.ports if p.port_no == port_no]
    return port.up, port.fabric


def test_a_link_that_went_down_stays_in_the_views_and_the_metrics_as_down() -> None:
    api = ApiLab()
    lid = api.link("leaf1", "spine1")
    name = api.name_of(lid)
    assert _port(api, lid.src.dpid, lid.src.port) == (True, True)
    api.lab.set_cable("leaf1", "spine1", up=False)
    api.step(1.0)
    links = {v.name: v for v in api.publisher.views.topology.links}
    assert len(links) == 8  # four cables, both directions: two of them down
    down = links[name]
    assert not down.up and (down.rate_bps, down.capacity_bps, down.congested) == (0.0, 0.0, False)
    assert sum(not v.up for v in links.values()) == 2
    assert _port(api, lid.src.dpid, lid.src.port) == (False, False)  # no longer a fabric port
    labels = {"link": name, "src_switch": down.src_switch, "dst_switch": down.dst_switch}
    registry = api.lab.metrics.registry
    assert registry.get_sample_value("fabric_link_up", labels) == 0.0
    assert registry.get_sample_value("fabric_link_utilization_ratio", labels) is None
    up = next(v for v in links.values() if v.up)
    up_labels = {"link": up.name, "src_switch": up.src_switch, "dst_switch": up.dst_switch}
    assert registry.get_sample_value("fabric_link_up", up_labels) == 1.0
    assert registry.get_sample_value("fabric_link_capacity_bytes_per_second", up_labels) == (
        up.capacity_bps / 8
    )
    text = generate_latest(registry).decode()
    assert text.count("fabric_link_up{") == 8
    # Up again: the same name is up in the next picture.
    api.lab.set_cable("leaf1", "spine1", up=True)
    api.step(1.0)
    api.step(1.0)
    again = {v.name: v for v in api.publisher.views.topology.links}
    assert again[name].up and len(again) == 8
    assert _port(api, lid.src.dpid, lid.src.port) == (True, True)


def test_kept_switch_and_link_views_follow_links_found_and_lost() -> None:
    """The sorted links and the switches' views are kept between publishes until the
    links change: a link discovered (or expired) with no port change must show."""
    topo = Topology()
    for dpid in (1, 2):
        topo.switch_up(dpid, name=f"s{dpid}", ports=[Port(1), Port(2)], now=0.0)
    views, seen = TopologyViews(), set()

    def build() -> tuple[list[LinkView], dict[int, bool]]:
        view = views.build(
            topo, loads=dict.fromkeys(topo.links, LinkLoad()), congested=frozenset(), seen=seen
        )
        fabric = {p.port_no: p.fabric for p in view.switches[0].ports}
        return list(view.links), fabric

    assert build() == ([], {1: False, 2: False})
    lid = LinkId(PortRef(1, 1), PortRef(2, 1))
    topo.lldp_seen(tx=lid.src, rx=lid.dst, now=0.0)
    links, fabric = build()
    assert [(v.link, v.up, v.name) for v in links] == [(lid, True, "s1/1->s2/1")]
    assert fabric == {1: True, 2: False}
    assert topo.expire_links(now=10.0, timeout=3.5) != []
    links, fabric = build()
    assert [(v.link, v.up) for v in links] == [(lid, False)]  # seen before: shown as down
    assert fabric == {1: False, 2: False}
