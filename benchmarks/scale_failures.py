"""The engine's reaction to changes of a fabric with flows placed, for the scale benchmark.

Each runs the engine's whole reaction to the messages a switch would send (a
host's ARP, the port-status messages of a lost link, a switch's connection
closing) and then the fake switches applying the programs it returned (CPU
seconds, apart). They change the fabric: run them after the setups, in this
order.
"""

from __future__ import annotations

import time
from typing import Any

from controller.devtools.enginedriver import (
    BASE_COOKIE,
    EngineDriver,
    LabHost,
    arp_frame,
)
from controller.engine.connectivity import ARP_REQUEST
from controller.engine.outputs import EngineOutput

__all__ = ["host_learned", "link_failure", "spine_down"]


def host_learned(lab: EngineDriver) -> dict[str, Any]:
    """A new host (a second MAC behind the first host's port) announces itself with
    flows placed: the engine's whole reaction (learning it, every switch's route to
    it), then the fake switches applying it. CPU seconds."""
    first = lab.hosts[0]
    new = LabHost("new", "02:00:00:ff:ff:01", "10.255.255.1", first.port)
    c0 = time.process_time()
    out = lab.engine.packet_in(
        new.port.dpid,
        in_port=new.port.port,
        cookie=BASE_COOKIE,
        data=arp_frame(opcode=ARP_REQUEST, src_mac=new.mac, src_ip=new.ip, dst_ip=new.ip),
        now=lab.now,
    )
    c1 = time.process_time()
    lab.run(out)
    c2 = time.process_time()
    return {
        "operations": _operations([out]),
        "engine_s": round(c1 - c0, 3),
        "apply_s": round(c2 - c1, 3),
    }


def _operations(outs: list[EngineOutput]) -> int:
    """Switch operations (flow, group and meter mods) the outputs' programs hold."""
    phases = (ph for out in outs for p in out.programs for ph in p.phases)
    return sum(len(ops) for ph in phases for ops in ph.ops.values())


def link_failure(lab: EngineDriver) -> dict[str, Any]:
    """A leaf's uplink fails with the flows placed: the engine's whole reaction to the
    port-status messages of both ends (the leaf's first, then the spine's: default
    forwarding recomputed, the flows on the link re-placed and programmed), then the
    fake switches applying it. CPU seconds; the link is the first leaf uplink that
    carries placed flows."""
    engine = lab.engine
    te = engine.placer.te
    links = sorted(engine.net.topo.links)
    lid = next((lid for lid in links if te.flows_on(lid)), links[0])
    moved = len(te.flows_on(lid))
    ends = (lid.src, lid.dst)
    lab.fake.down.update(ends)
    outs = []
    c0 = time.process_time()
    for end in ends:
        outs.append(lab.port_changed(end, up=False))
    c1 = time.process_time()
    for out in outs:
        lab.run(out)
    c2 = time.process_time()
    ops = _operations(outs)
    return {
        "link": engine.net.topo.link_name(lid),
        "flows_on_link": moved,
        "still_on_link": len(te.flows_on(lid)),
        "operations": ops,
        "engine_s": round(c1 - c0, 3),
        "apply_s": round(c2 - c1, 3),
    }


def spine_down(lab: EngineDriver) -> dict[str, Any]:
    """A spine is lost (its OpenFlow connection closes) with the flows placed: the
    engine's whole reaction (every leaf's default forwarding without it, every flow
    through it re-placed and programmed), then the fake switches applying it. The
    spine is the one carrying the most placed flows, other than one whose port the
    fake switches hold down (a lost link's end). CPU seconds."""
    engine = lab.engine
    te = engine.placer.te
    topo = engine.net.topo
    through: dict[int, int] = {}
    for flow in te.snapshot():
        for dpid in flow.path.switches[1:-1]:
            through[dpid] = through.get(dpid, 0) + 1
    ends = {ref.dpid for ref in lab.fake.down}
    spines = [d for d in topo.switches if not topo.host_facing(d) and d not in ends]
    spine = max(sorted(spines), key=lambda d: through.get(d, 0))
    lab.fake.switch(spine).connected = False
    c0 = time.process_time()
    out = lab.switch_lost(spine)
    c1 = time.process_time()
    lab.run(out)
    c2 = time.process_time()
    return {
        "spine": topo.label(spine),
        "flows_through": through.get(spine, 0),
        "still_through": sum(1 for f in te.snapshot() if spine in f.path.switches),
        "operations": _operations([out]),
        "engine_s": round(c1 - c0, 3),
        "apply_s": round(c2 - c1, 3),
    }
