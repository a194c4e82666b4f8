"""The flow-level simulator: hand-checked collectives, failures, plug-ins, options, scale."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.fluidsim import strategies
from benchmarks.fluidsim.cli import main, run_all, summary
from benchmarks.fluidsim.fabric import build_fabric
from benchmarks.fluidsim.simulate import simulate
from benchmarks.fluidsim.strategies import placer_for, register_joint
from benchmarks.fluidsim.table import QUICK_ROWS, Row, markdown, run
from benchmarks.fluidsim.workload import Job, Scenario
from benchmarks.scale_measure import synthetic
from controller.fabric.model import FiveTuple, PortRef
from controller.fabric.model import Path as FabricPath
from controller.routing.fabricstate import FabricState

ROOT = Path(__file__).resolve().parents[2]
MB = 2**20


def tiny(**kw: float) -> object:
    return build_fabric(
        spines=2, leaves=2, hosts_per_leaf=2, link_gbps=100, nic_gbps=100, synthetic=synthetic, **kw
    )


def one_ring(order: tuple[int, ...], *, failures: tuple = ()) -> Scenario:
    return Scenario((Job(0, order, "ring", 100 * MB, 0.0),), (), failures)


def test_a_ring_with_two_flows_each_way_runs_at_nic_speed_when_spread() -> None:
    # h0, h1 on leaf 0; h2, h3 on leaf 1. Order 0 -> 2 -> 1 -> 3 -> 0: two flows
    # leaf0 -> leaf1 and two back. Two spines: spread, every hop gets a whole NIC.
    nic_time = 2 * 3 / 4 * 100 * MB * 8 / 100e9
    order = (0, 2, 1, 3)
    for name in ("bound", "least-utilized"):
        fabric = tiny()
        run = simulate(fabric, one_ring(order), placer_for(name, fabric, seed=3), seed=3)
        assert run.jobs[0].completion_s == pytest.approx(nic_time), name
    fabric = tiny()
    ecmp = simulate(fabric, one_ring(order), placer_for("ecmp", fabric, seed=3), seed=3)
    # A hash either splits each direction's two flows or puts them on one spine.
    assert ecmp.jobs[0].completion_s in (
        pytest.approx(nic_time),
        pytest.approx(2 * nic_time),
    )


@pytest.mark.parametrize("strategy", ["least-utilized", "joint"])
def test_a_spine_failure_mid_ring_moves_flows_and_the_ring_finishes_later(strategy: str) -> None:
    """Least-utilized moves the flows it hit; joint re-solves the job as a whole."""
    from benchmarks.fluidsim.workload import Failure

    nic_time = 2 * 3 / 4 * 100 * MB * 8 / 100e9
    fabric = tiny()
    down = Failure(nic_time / 2, tuple(fabric.spine_links("spine1")), "spine1 down")
    run = simulate(
        fabric,
        one_ring((0, 2, 1, 3), failures=(down,)),
        placer_for(strategy, fabric, seed=1),
        seed=1,
    )
    # Half the bytes at full speed, then two flows per direction share one spine.
    assert run.jobs[0].completion_s == pytest.approx(nic_time / 2 + nic_time)
    assert run.failures == [f"spine1 down at {nic_time / 2:g} s"]


def test_an_all_to_all_ends_with_its_last_flow() -> None:
    fabric = tiny()
    job = Job(0, (0, 1, 2, 3), "all-to-all", 4 * MB, 0.0)
    run = simulate(fabric, Scenario((job,), (), ()), placer_for("bound", fabric, seed=1), seed=1)
    # Each host sends 3 flows of 1 MB (the buffer / 4) through its NIC: 3 MB at 100 Gbit/s.
    assert run.jobs[0].completion_s == pytest.approx(3 * MB * 8 / 100e9)


def test_another_joint_placement_plugs_in_and_the_option_refuses_none() -> None:
    calls: list[int] = []

    def first_spine(
        flows: Sequence[tuple[PortRef, PortRef, FiveTuple]], state: FabricState
    ) -> list[FabricPath]:
        calls.append(len(flows))
        paths = []
        for src, dst, _ in flows:
            rows = state.rows(src.dpid, dst.dpid)
            assert rows is not None
            from controller.routing.fastpath import path_of

            paths.append(path_of(state, rows, 0))
        return paths

    assert strategies.joint_available()  # the controller's own, from the start
    register_joint(first_spine)
    try:
        fabric = tiny()
        order = (0, 2, 1, 3)
        run = simulate(fabric, one_ring(order), placer_for("joint", fabric, seed=1), seed=1)
        assert calls == [4] and run.jobs[0].finish_s is not None
        register_joint(None)
        assert not strategies.joint_available()
        with pytest.raises(SystemExit) as refused:
            main(["--strategies", "joint"])
        assert refused.value.code == 2
    finally:
        register_joint(strategies.controller_joint())
    assert strategies.joint_available()


def test_the_controller_joint_placement_gives_a_ring_links_of_its_own() -> None:
    """A ring whose every leaf sends two flows over two spines: the joint solver
    colours them onto separate links, so the ring runs at NIC speed (the bound)."""
    nic_time = 2 * 3 / 4 * 100 * MB * 8 / 100e9
    for seed in range(5):
        fabric = tiny()
        run = simulate(
            fabric, one_ring((0, 2, 1, 3)), placer_for("joint", fabric, seed=seed), seed=seed
        )
        assert run.jobs[0].completion_s == pytest.approx(nic_time)


def test_joint_matches_or_beats_per_flow_placement_on_tight_rings() -> None:
    """Random rings where every leaf sends as many flows as there are spines: joint
    placement reaches the bound; hash ECMP does not."""
    a = Row(4, 8, 4, "ring", 1, 32, size_mb=64.0).args(seed=2)
    summ = summary(run_all(a, ["ecmp", "least-utilized", "joint"]))
    assert summ["joint"]["min_goodput_over_bound"] == pytest.approx(1.0, abs=1e-3)
    assert summ["ecmp"]["min_goodput_over_bound"] < 0.9
    assert summ["joint"]["mean_cct_s"] <= summ["least-utilized"]["mean_cct_s"] + 1e-9


@pytest.mark.parametrize(
    "args, word",
    [
        (["--spines", "0"], "--spines"),
        (["--leaves", "600", "--hosts-per-leaf", "40"], "hosts"),
        (["--jobs", "9", "--job-hosts", "16"], "jobs"),
        (["--background", "1.5"], "--background"),
        (
            ["--pattern", "all-to-all", "--jobs", "1", "--job-hosts", "300", "--leaves", "64"],
            "all-to-all",
        ),
        (["--strategies", "ecmp,magic"], "magic"),
        (["--spines", "many"], "invalid int"),
    ],
)
def test_bad_options_end_the_run_with_one_line(args: list[str], word: str) -> None:
    with pytest.raises(SystemExit) as ended:
        main(args)
    assert ended.value.code == 2
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fluidsim", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and word in done.stderr


@pytest.mark.timeout(120)
def test_scale_smoke_every_strategy_finishes_every_job_within_the_bound() -> None:
    """512 hosts, four random-order rings, background traffic and a spine failure."""
    import argparse

    args = argparse.Namespace(
        spines=16,
        leaves=64,
        hosts_per_leaf=8,
        link_gbps=100.0,
        nic_gbps=100.0,
        jobs=4,
        job_hosts=64,
        pattern="ring",
        ring_order="random",
        size_mb=64.0,
        stagger_s=0.001,
        background=0.2,
        fail_spine_at=0.002,
        fail_link_at=0.003,
        seed=7,
    )
    first = summary(run_all(args, ["ecmp", "least-utilized"]))
    again = summary(run_all(args, ["ecmp", "least-utilized"]))
    for name, s in first.items():
        assert s["finished"] == s["jobs"] == 4, name
        assert all(0 < r <= 1 + 1e-9 for r in s["goodput_over_bound"]), name
        assert s["failures"] and s["events"] > 4
        assert s["cct_s"] == again[name]["cct_s"]  # seeded: the same run twice
    assert first["bound"]["mean_goodput_over_bound"] == 1.0


def test_the_simulator_ranks_the_emulators_small_jobs_as_the_emulator_did() -> None:
    from benchmarks.fluidsim.validate import compare

    report = compare(runs=8)
    for work, rows in report.items():
        assert rows["same_ranking"], work
        for r in rows["strategies"].values():
            assert 0 < r["simulated_min"] <= r["simulated_median"] <= r["simulated_max"] <= 1.0
    ring = report["ring"]["strategies"]
    # Spread by placement, the ring's flows never share a link in the fluid model.
    assert ring["least-utilized"]["simulated_min"] == 1.0
    assert ring["ecmp"]["simulated_min"] < 1.0


def test_jobs_placed_at_once_count_each_others_reservations() -> None:
    """Two rings start together and share leaves: with no load measured yet, only the
    other job's reserved links keep the second one off them (as the engine's jobs)."""
    a = Row(8, 16, 4, "ring", 2, 8, ring_order="topology", size_mb=64.0).args(seed=1)
    summ = summary(run_all(a, ["joint"]))
    assert summ["joint"]["goodput_over_bound"] == [1.0, 1.0]


def test_the_comparison_table_has_a_row_per_scenario_and_every_strategy() -> None:
    rows = run(QUICK_ROWS, seed=1, log=lambda text: None)
    assert [r["row"] for r in rows] == [row.label for row in QUICK_ROWS]
    for r in rows:
        assert set(r["strategies"]) == {"bound", "ecmp", "least-utilized", "joint"}
        assert all(0 < s["mean_goodput_over_bound"] <= 1.0 + 1e-9 for s in r["strategies"].values())
        assert r["strategies"]["bound"]["mean_goodput_over_bound"] == 1.0
    text = markdown(rows, "head")
    assert text.count("\n| ") == len(rows) + 1
