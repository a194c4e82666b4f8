"""Channels per pair in the flow-level simulator: shared path against spread flows."""

from __future__ import annotations

import random
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from benchmarks.fluidsim.channels import ChannelPlacer, channel_flows, main
from benchmarks.fluidsim.fabric import SimFabric, build_fabric
from benchmarks.fluidsim.simulate import RunResult, simulate
from benchmarks.fluidsim.strategies import PooledBound
from benchmarks.fluidsim.workload import Job, Scenario
from benchmarks.scale_measure import synthetic

ROOT = Path(__file__).resolve().parents[2]
MB = 2**20


def tiny(nic_gbps: float = 100) -> SimFabric:
    """Two spines, two leaves, hosts 0, 1 on leaf 0 and 2, 3 on leaf 1."""
    return build_fabric(
        spines=2, leaves=2, hosts_per_leaf=2, link_gbps=100, nic_gbps=nic_gbps, synthetic=synthetic
    )


def ring(
    order: tuple[int, ...], name: str, k: int, *, seed: int = 1, nic: float = 100
) -> RunResult:
    fabric = tiny(nic)
    placer = PooledBound(fabric) if name == "bound" else ChannelPlacer(fabric, name, seed=seed)
    job = Job(0, order, "ring", 100 * MB, 0.0)
    flows_of = partial(channel_flows, k=k)
    return simulate(fabric, Scenario((job,), (), ()), placer, seed=seed, flows_of=flows_of)


def test_k_channels_split_each_pairs_bytes_and_a_ring_has_a_group_per_channel() -> None:
    job = Job(0, (0, 2, 1), "ring", 3 * MB, 0.0)
    flows = channel_flows(job, random.Random(1), first_group=5, k=4)
    assert len(flows) == 3 * 4
    assert [(f.src, f.dst) for f in flows[:4]] == [(0, 2)] * 4
    assert sum(f.bits for f in flows[:4]) == pytest.approx(2 * 2 / 3 * 3 * MB * 8)
    assert sorted({f.group for f in flows}) == [5, 6, 7, 8]
    a2a = channel_flows(Job(1, (0, 2), "all-to-all", MB, 0.0), random.Random(1), first_group=0, k=2)
    assert len({f.group for f in a2a}) == len(a2a) == 4


def test_one_pair_with_two_flows_gets_one_link_shared_and_two_spread_evenly() -> None:
    """Two hosts on two leaves, NICs of 200 Gbit/s, links of 100: each direction's two
    flows share one spine under ``share`` and use both spines under ``spread-even``."""
    per_pair = 100 * MB * 8  # a ring of two: each hop carries 2 (N - 1) / N = 1 buffer
    assert ring((0, 2), "share", 2, nic=200).jobs[0].completion_s == pytest.approx(per_pair / 1e11)
    even = ring((0, 2), "spread-even", 2, nic=200).jobs[0].completion_s
    assert even == pytest.approx(per_pair / 2e11)
    assert ring((0, 2), "bound", 2, nic=200).jobs[0].completion_s == pytest.approx(even)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_share_reaches_the_bound_when_colouring_gives_every_pair_links_of_its_own(k: int) -> None:
    # 0 -> 2 -> 1 -> 3 -> 0: two pairs leave each leaf, two spines: one each.
    nic_time = 2 * 3 / 4 * 100 * MB * 8 / 100e9
    for name in ("bound", "share", "spread-even"):
        assert ring((0, 2, 1, 3), name, k).jobs[0].completion_s == pytest.approx(nic_time), name


def test_the_hash_spread_reads_the_masked_source_port_bits_and_is_seeded() -> None:
    placer = ChannelPlacer(tiny(), "spread", seed=1)
    assert placer.usable(0, 1) == [0, 1]
    spines = {sport: placer.hashed_spine(0, [0, 1], sport) for sport in range(49152, 49160)}
    assert {spines[p] for p in spines if p % 2 == 0} != {spines[p] for p in spines if p % 2}
    assert len({spines[p] for p in spines if p % 2 == 0}) == 1  # one bit: two buckets
    assert placer.hashed_spine(0, [1], 49153) == 1  # one spine left: always it
    first = [ring((0, 2, 1, 3), "spread", 4, seed=s).jobs[0].completion_s for s in range(4)]
    again = [ring((0, 2, 1, 3), "spread", 4, seed=s).jobs[0].completion_s for s in range(4)]
    assert first == again
    nic_time = 2 * 3 / 4 * 100 * MB * 8 / 100e9
    assert all(t is not None and t >= nic_time * (1 - 1e-9) for t in first)


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--channels", "0"], "--channels"),
        (["--channels", "2,65"], "--channels"),
        (["--channels", "two"], "--channels"),
        (["--seed", "-1"], "--seed"),
        (["--write", "/no/such/dir/x.md"], "--write"),
    ],
)
def test_bad_options_end_the_run_with_one_line(args: list[str], word: str) -> None:
    with pytest.raises(SystemExit) as ended:
        main(args)
    assert ended.value.code == 2
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fluidsim.channels", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and word in done.stderr
