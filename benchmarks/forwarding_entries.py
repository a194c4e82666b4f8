"""Per-switch size of the default forwarding state, with and without spread and repair.

Compiles the default forwarding of synthetic leaf-spine fabrics (2 hosts per
leaf) with the pure core, as the controller would, and counts per switch
role the flow entries (table 0 and the spread table) and the groups. Four
variants: plain SELECT-group ECMP, source-port spreading only, local repair
only, and both (the default). It also times one compilation. No switches.

    python -m benchmarks.forwarding_entries [--sizes 2x4,4x8,64x512] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path as FsPath
from typing import Any

from benchmarks.scale_measure import synthetic
from controller.fabric.model import Dpid, Host, LinkId, PortNo
from controller.flowprog.forwarding import ForwardingInputs, compile_forwarding
from controller.flowprog.spread import SPREAD_TABLE

HOSTS_PER_LEAF = 2
VARIANTS = {
    "plain": {"spread_l4": False, "local_repair": False},
    "spread": {"spread_l4": True, "local_repair": False},
    "repair": {"spread_l4": False, "local_repair": True},
    "both": {"spread_l4": True, "local_repair": True},
}


def _inputs(spines: int, leaves: int, **options: bool) -> tuple[ForwardingInputs, set[Dpid]]:
    fabric = synthetic.leaf_spine(spines, leaves)
    links: list[LinkId] = sorted(attrs["link"] for _, _, attrs in fabric.graph.edges(data=True))
    hosts: list[Host] = []
    edge: dict[Dpid, list[PortNo]] = {d: [] for d in fabric.names}
    for leaf in fabric.leaves:
        for i in range(HOSTS_PER_LEAF):
            ref = fabric.host_port(leaf, i)
            k = len(hosts) + 1
            mac = f"02:00:00:{k >> 16 & 0xFF:02x}:{k >> 8 & 0xFF:02x}:{k & 0xFF:02x}"
            hosts.append(Host(mac=mac, ipv4=None, attach=ref, last_seen=1.0))
            edge[ref.dpid].append(ref.port)
    inputs = ForwardingInputs(
        switches=sorted(fabric.names),
        links=links,
        hosts=hosts,
        edge_ports=lambda d: edge[d],
        **options,
    )
    return inputs, {fabric.dpid(s) for s in fabric.spines}


def measure(spines: int, leaves: int, options: dict[str, bool]) -> dict[str, Any]:
    inputs, spine_ids = _inputs(spines, leaves, **options)
    start = time.perf_counter()
    needs = compile_forwarding(inputs)
    seconds = time.perf_counter() - start
    roles: dict[str, dict[str, int]] = {}  # the largest count of any switch of the role
    for dpid, need in needs.items():
        flows = need.flows.get(dpid, ())
        counts = {
            "table0": sum(1 for e in flows if e.table_id == 0),
            "spread_table": sum(1 for e in flows if e.table_id == SPREAD_TABLE),
            "groups": len(need.groups.get(dpid, ())),
            "group_buckets": sum(len(g.buckets) for g in need.groups.get(dpid, ())),
        }
        have = roles.setdefault("spine" if dpid in spine_ids else "leaf", dict.fromkeys(counts, 0))
        for key, value in counts.items():
            have[key] = max(have[key], value)
    return {"compile_s": round(seconds, 3), "per_switch": roles}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2x4,4x8,64x512", help="SPINESxLEAVES,...")
    parser.add_argument("--out", default="out/bench", help="directory for the JSON result")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"hosts_per_leaf": HOSTS_PER_LEAF, "fabrics": {}}
    for size in args.sizes.split(","):
        spines, leaves = (int(x) for x in size.split("x"))
        label = f"{spines}x{leaves}x{HOSTS_PER_LEAF}"
        result["fabrics"][label] = {
            name: measure(spines, leaves, options) for name, options in VARIANTS.items()
        }
        for name, row in result["fabrics"][label].items():
            for role, c in row["per_switch"].items():
                print(
                    f"{label:>10} {name:>6} {role:>5}: table0 {c['table0']:>5}  spread "
                    f"{c['spread_table']:>4}  groups {c['groups']:>4} "
                    f"({c['group_buckets']} buckets)  compile {row['compile_s']} s"
                )
    out = FsPath(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "forwarding_entries.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
