"""The deploy files agree with the exporter: dashboard metric names, PromQL syntax, scrape job."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from controller.observability.exporter import DEFAULT_HOST, DEFAULT_PORT
from controller.observability.metrics import FabricMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "fabric-dashboard.json"

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def exported_names() -> set[str]:
    """Every series name FabricMetrics can produce, with the suffixes Prometheus adds."""
    registry = CollectorRegistry()
    FabricMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in panels(dash["panels"]) for t in p.get("targets", []) if "expr" in t]


def test_exported_names_include_the_documented_families() -> None:
    names = exported_names()
    for expected in (
        "fabric_switches_connected",
        "fabric_link_up",
        "fabric_link_utilization_ratio",
        "fabric_port_receive_bytes_total",
        "fabric_port_transmit_errors_total",
        "fabric_reroutes_total",
        "fabric_path_computation_seconds_bucket",
    ):
        assert expected in names


def test_dashboard_references_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    used = {name for expr in exprs for name in re.findall(r"fabric_[a-z_]+", expr)}
    unknown = used - exported_names()
    assert not unknown, f"dashboard uses metrics FabricMetrics does not define: {sorted(unknown)}"
    for required in (
        "fabric_link_utilization_ratio",
        "fabric_switches_connected",
        "fabric_link_up",
        "fabric_reroutes_total",
    ):
        assert required in used


def test_dashboard_shape() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert 36 <= dash["schemaVersion"] <= 41
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    kinds = {p["type"] for p in panels(dash["panels"])}
    assert {"state-timeline", "bargauge", "stat", "timeseries"} <= kinds
    assert any("topk(" in e for e in dashboard_exprs())
    ids = [p["id"] for p in panels(dash["panels"])]
    assert len(ids) == len(set(ids))
    for p in panels(dash["panels"]):
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${DS_PROMETHEUS}"


def test_dashboard_exprs_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses PromQL when it checks rules, so each expr becomes a rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr_{i}", "expr": e.replace("$__rate_interval", "1m")}
                    for i, e in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


def test_prometheus_config_scrapes_the_default_exporter_address() -> None:
    cfg = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    (job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == "fabricd"]
    assert job["scrape_interval"] == "5s"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"{DEFAULT_HOST}:{DEFAULT_PORT}"]
    proc = subprocess.run(
        ["promtool", "check", "config", str(DEPLOY / "prometheus.yml")],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


LEFT_OUT_AT_SCALE = re.compile(
    r"fabric_port_.*|fabric_link_(bytes|capacity_bytes)_per_second|.*_created"
)


def test_the_large_fabric_config_asks_for_everything_but_what_it_says_it_leaves_out() -> None:
    path = DEPLOY / "prometheus-large.yml"
    cfg = yaml.safe_load(path.read_text())
    asked: set[str] = set()
    for job in cfg["scrape_configs"]:
        names = job["params"]["name[]"]
        assert len(names) == len(set(names)), job["job_name"]
        asked.update(names)
        targets = [t for sc in job["static_configs"] for t in sc["targets"]]
        assert targets == [f"{DEFAULT_HOST}:{DEFAULT_PORT}"]
    exported = exported_names()
    assert asked <= exported, sorted(asked - exported)
    left_out = {n for n in exported - asked if not LEFT_OUT_AT_SCALE.fullmatch(n)}
    assert not left_out, f"neither scraped nor said to be left out: {sorted(left_out)}"
    # The dashboard's panels, but for the one the file names, still have their series.
    used = {n for e in dashboard_exprs() for n in re.findall(r"fabric_[a-z_]+", e)}
    throughput = {"fabric_link_bytes_per_second", "fabric_link_capacity_bytes_per_second"}
    missing = used - asked - throughput
    assert not missing, sorted(missing)
    assert {"fabric_link_up", "fabric_link_utilization_ratio"} <= asked
    proc = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
