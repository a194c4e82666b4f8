"""fabricd configuration: command-line flags and an optional YAML file with the same keys.

Precedence: flag > file > default. Every problem is a :class:`ConfigError`
whose message is one line naming the flag or key, so the daemon can exit with
exactly that line. Nothing here starts anything.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NoReturn

from controller.errors import excerpt, key_text
from controller.safeyaml import YamlError, load_yaml, read_yaml_text

__all__ = ["ConfigError", "HostPort", "FabricdConfig", "load_config", "parse_host_port"]


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line for the operator."""


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_host_port(text: str, *, what: str) -> HostPort:
    host, sep, port_text = str(text).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"{what}: {excerpt(text)} is not HOST:PORT")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port {port} outside 0-65535")
    return HostPort(host, port)


@dataclass(frozen=True)
class FabricdConfig:
    of_listen: HostPort = HostPort("127.0.0.1", 6653)
    grpc_listen: HostPort = HostPort("127.0.0.1", 50051)
    metrics_listen: HostPort = HostPort("127.0.0.1", 9108)
    state_dir: Path = Path("state")
    policies: Path = Path("policies")
    log_level: str = "info"
    config: Path | None = None
    # discovery
    lldp_interval: float = 1.0
    lldp_budget: float = 0.2
    lldp_interval_max: float = 30.0
    # telemetry
    poll_interval: float = 1.0
    poll_budget: float = 0.5
    poll_interval_max: float = 30.0
    ewma_alpha: float = 0.5
    link_capacity_mbps: float | None = None
    link_capacity_overrides: dict[str, float] = field(default_factory=dict)
    congestion_threshold: float = 0.8
    clear_threshold: float = 0.6
    congestion_samples: int = 2
    # traffic engineering
    rebalance_period: float = 2.0
    max_moves_per_round: int = 8
    packet_in_rate: int = 500
    failover_groups: bool = True
    spread_l4: bool = True
    local_repair: bool = True
    flow_setup_budget: int = 500
    seed: int = 0
    # API
    grpc_tls_cert: Path | None = None
    grpc_tls_key: Path | None = None
    grpc_token_file: Path | None = None

    southbound: str = "ryu"

    cluster_etcd: str | None = None  # etcd client URLs, comma-separated: cluster mode
    cluster_name: str = "fabric"
    node_id: str | None = None  # default: host name and gRPC port

    def etcd_label(self) -> str:
        return f"etcd {self.cluster_etcd}"


_LEVELS = ("debug", "info", "warning", "error")

# key -> (flag help, converter for file values and flag strings)
_HELP = {
    "of_listen": "OpenFlow listen address (default 127.0.0.1:6653)",
    "grpc_listen": "gRPC API listen address (default 127.0.0.1:50051)",
    "metrics_listen": "Prometheus /metrics listen address (default 127.0.0.1:9108)",
    "state_dir": "directory for persistent state (policy store, learned hosts)",
    "policies": "directory of default policy files (*.yaml), loaded into a new store",
    "log_level": "debug, info, warning or error",
    "config": "YAML file with any of these keys (underscores instead of dashes)",
    "lldp_interval": "seconds between LLDP probes on every port",
    "lldp_budget": "share of the controller's time LLDP discovery may take "
    "(0 < b <= 1); past it, probe rounds are spaced further apart",
    "lldp_interval_max": "seconds: the longest LLDP interval lldp_budget may stretch to",
    "poll_interval": "seconds between port/flow statistics polls of each switch",
    "poll_budget": "share of the controller's time reading statistics may take "
    "(0 < b <= 1); past it, polls are spaced further apart",
    "poll_interval_max": "seconds: the longest poll interval poll_budget may stretch to",
    "ewma_alpha": "weight of the newest rate sample (0 < a <= 1; 1 = no smoothing)",
    "link_capacity_mbps": "capacity of every link in Mbit/s unless overridden",
    "link_capacity_overrides": "(config file only) map of 'A-B' or 'A/p-B/q' to Mbit/s",
    "congestion_threshold": "utilization above which a link is congested",
    "clear_threshold": "utilization below which a congested link clears",
    "congestion_samples": "consecutive samples needed to enter or leave congestion",
    "rebalance_period": "seconds between rebalancing rounds",
    "max_moves_per_round": "cap on flows moved per rebalancing round",
    "packet_in_rate": "packet-ins per second each switch may send (meter; 0 = unmetered)",
    "failover_groups": "true/false: protect each AI flow's first hop with a fast-failover group",
    "spread_l4": "true/false: spread default TCP/UDP traffic over next hops by source-port bits",
    "local_repair": "true/false: spines bounce packets of a failed last hop to another spine",
    "flow_setup_budget": "new flows the controller places per second before shedding",
    "seed": "seed for hash-based path choices",
    "grpc_tls_cert": "PEM certificate: serve gRPC over TLS",
    "grpc_tls_key": "PEM private key for --grpc-tls-cert",
    "grpc_token_file": "file holding a bearer token every RPC must present",
    "southbound": "OpenFlow framework: ryu (default) or os-ken",
    "cluster_etcd": "etcd client URLs (http://host:port, comma-separated): share the fabric "
    "with other fabricd; state lives in etcd, one leader programs the switches",
    "cluster_name": "key prefix of this fabric in etcd (default fabric)",
    "node_id": "this node's unique name in the cluster (default: host name and gRPC port)",
}

SOUTHBOUNDS = ("ryu", "os-ken")
_BOOLEANS = ("failover_groups", "spread_l4", "local_repair")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see fabricd --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fabricd", description="AI fabric SDN controller daemon", add_help=True)
    for f in fields(FabricdConfig):
        if f.name == "link_capacity_overrides":
            continue
        p.add_argument(
            f"--{f.name.replace('_', '-')}", dest=f.name, default=None, help=_HELP[f.name]
        )
    return p


def _convert(key: str, value: Any, default: Any) -> Any:
    flag = f"--{key.replace('_', '-')}"
    if key in ("of_listen", "grpc_listen", "metrics_listen"):
        return parse_host_port(value, what=flag)
    if key in (
        "state_dir",
        "policies",
        "config",
        "grpc_tls_cert",
        "grpc_tls_key",
        "grpc_token_file",
    ):
        return Path(str(value))
    if key in _BOOLEANS:
        text = str(value).strip().lower()
        if isinstance(value, bool):
            return value
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{flag}: {excerpt(value)} is not true or false")
    if key == "southbound":
        name = str(value).strip().lower()
        if name not in SOUTHBOUNDS:
            raise ConfigError(f"{flag}: {value!r} is not one of {', '.join(SOUTHBOUNDS)}")
        return name
    if key == "cluster_etcd":
        return _etcd_urls(flag, value)
    if key in ("cluster_name", "node_id"):
        text = str(value).strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,62}", text):
            raise ConfigError(
                f"{flag}: {excerpt(value)} must be 1-63 letters, digits, '.', '_', ':', '@' or '-'"
            )
        return text
    if key == "log_level":
        level = str(value).lower()
        if level not in _LEVELS:
            raise ConfigError(f"{flag}: {excerpt(value)} is not one of {', '.join(_LEVELS)}")
        return level
    if key == "link_capacity_overrides":
        if not isinstance(value, dict):
            raise ConfigError("link_capacity_overrides: expected a mapping of link to Mbit/s")
        out = {}
        for ref, mbps in value.items():
            out[str(ref)] = _number(f"link_capacity_overrides.{key_text(ref)}", mbps, positive=True)
        return out
    if key in (
        "congestion_samples",
        "max_moves_per_round",
        "packet_in_rate",
        "flow_setup_budget",
        "seed",
    ):
        number = _number(flag, value)
        if number != int(number) or number < 0:
            raise ConfigError(f"{flag}: {excerpt(value)} is not a non-negative integer")
        return int(number)
    return _number(flag, value)


def _etcd_urls(flag: str, value: Any) -> str:
    urls = [u.strip() for u in str(value).split(",") if u.strip()]
    if not urls:
        raise ConfigError(f"{flag}: give at least one etcd URL, e.g. http://127.0.0.1:2379")
    for url in urls:
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+:\d{1,5}/?", url):
            raise ConfigError(f"{flag}: {excerpt(url)} is not an etcd URL like http://host:2379")
    return ",".join(urls)


def _number(what: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{what}: {excerpt(value)} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: {excerpt(value)} is not a number") from None
    if not math.isfinite(number) or (positive and number <= 0):
        raise ConfigError(
            f"{what}: {excerpt(value)} must be a positive number"
            if positive
            else f"{what}: {excerpt(value)} is not finite"
        )
    return number


def _read_file(path: Path) -> dict[str, Any]:
    # The same safe YAML as policy files: YAML 1.2 scalars, no aliases, merge
    # keys or duplicate keys, bounded size and depth.
    try:
        doc = load_yaml(read_yaml_text(path))
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read: {exc.strerror or exc}") from None
    except YamlError as exc:
        where = f" line {exc.line}" if exc.line is not None else ""
        raise ConfigError(f"--config {path}:{where}: {exc.reason}") from None
    if doc is None:
        raise ConfigError(f"--config {path}: file is empty")
    if not isinstance(doc, dict):
        raise ConfigError(f"--config {path}: expected a mapping of keys, got {type(doc).__name__}")
    known = {f.name for f in fields(FabricdConfig)} - {"config"}
    for key in doc:
        norm = str(key).replace("-", "_")
        if norm not in known:
            raise ConfigError(f"--config {path}: unknown key {excerpt(key)}")
    return {str(k).replace("-", "_"): v for k, v in doc.items()}


def _check(cfg: FabricdConfig) -> FabricdConfig:
    def bad(flag: str, why: str) -> NoReturn:
        raise ConfigError(f"--{flag}: {why}")

    if not 0 < cfg.ewma_alpha <= 1:
        bad("ewma-alpha", f"{cfg.ewma_alpha} outside (0, 1]")
    for name in ("lldp_interval", "poll_interval", "rebalance_period"):
        value = getattr(cfg, name)
        if not 0.05 <= value <= 3600:
            bad(name.replace("_", "-"), f"{value} s outside 0.05-3600")
    if not 0 < cfg.poll_budget <= 1:
        bad("poll-budget", f"{cfg.poll_budget} outside (0, 1]")
    if not cfg.poll_interval <= cfg.poll_interval_max <= 3600:
        bad("poll-interval-max", f"{cfg.poll_interval_max} s outside poll-interval-3600")
    if not 0 < cfg.lldp_budget <= 1:
        bad("lldp-budget", f"{cfg.lldp_budget} outside (0, 1]")
    if not cfg.lldp_interval <= cfg.lldp_interval_max <= 3600:
        bad("lldp-interval-max", f"{cfg.lldp_interval_max} s outside lldp-interval-3600")
    if cfg.link_capacity_mbps is not None and cfg.link_capacity_mbps <= 0:
        bad("link-capacity-mbps", f"{cfg.link_capacity_mbps} must be positive")
    # Name the flag that is wrong on its own before blaming the pair's order.
    if not 0 < cfg.congestion_threshold <= 1.0:
        bad("congestion-threshold", f"{cfg.congestion_threshold} outside (0, 1]")
    if not 0 < cfg.clear_threshold < cfg.congestion_threshold:
        bad("clear-threshold", "need 0 < clear-threshold < congestion-threshold <= 1")
    if cfg.congestion_samples < 1:
        bad("congestion-samples", "must be at least 1")
    if (cfg.grpc_tls_cert is None) != (cfg.grpc_tls_key is None):
        bad("grpc-tls-cert", "--grpc-tls-cert and --grpc-tls-key go together")
    for name in ("grpc_tls_cert", "grpc_tls_key", "grpc_token_file"):
        path = getattr(cfg, name)
        if path is not None and not path.is_file():
            bad(name.replace("_", "-"), f"{path} is not a readable file")
    _check_distinct_listeners(cfg)
    return cfg


_WILDCARDS = frozenset({"0.0.0.0", "::"})
_LISTENERS = ("of_listen", "grpc_listen", "metrics_listen")


def _check_distinct_listeners(cfg: FabricdConfig) -> None:
    """Two listeners on one address: the second would fail after the first started
    (the OpenFlow side only logs it), so refuse it here, naming both flags."""
    for i, first in enumerate(_LISTENERS):
        for second in _LISTENERS[i + 1 :]:
            a, b = getattr(cfg, first), getattr(cfg, second)
            overlap = a.host == b.host or a.host in _WILDCARDS or b.host in _WILDCARDS
            if a.port != 0 and a.port == b.port and overlap:
                flag, other = (name.replace("_", "-") for name in (second, first))
                raise ConfigError(f"--{flag}: {b} is also --{other} ({a}): give each its own port")


def load_config(argv: list[str] | None = None) -> FabricdConfig:
    """Parse flags (and the file named by ``--config``) into a checked config."""
    args = vars(_parser().parse_args(sys.argv[1:] if argv is None else argv))
    defaults = FabricdConfig()
    values: dict[str, Any] = {}
    if args.get("config"):
        path = Path(args["config"])
        for key, value in _read_file(path).items():
            values[key] = _convert(key, value, getattr(defaults, key))
        values["config"] = path
    for key, value in args.items():
        if value is not None:
            values[key] = _convert(key, value, getattr(defaults, key))
    return _check(replace(defaults, **values))
