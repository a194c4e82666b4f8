"""fabricd configuration: precedence (flag > file > default) and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.app.config import ConfigError, FabricdConfig, HostPort, load_config, parse_host_port


def write(tmp_path: Path, text: str, name: str = "fabricd.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error_of(argv: list[str]) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(argv)
    message = str(err.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


def test_defaults_without_flags_or_file() -> None:
    cfg = load_config([])
    assert cfg == FabricdConfig()
    assert cfg.of_listen == HostPort("127.0.0.1", 6653)
    assert cfg.config is None


def test_flag_beats_file_beats_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "grpc_listen: 127.0.0.1:7001\n"
        "metrics-listen: '[::1]:7002'\n"
        "poll_interval: 0.5\n"
        "congestion_samples: 3\n"
        "link_capacity_overrides:\n  leaf1-spine1: 400\n  leaf2/3-spine1/2: 25.5\n",
    )
    cfg = load_config(["--config", path, "--grpc-listen", "0.0.0.0:9000", "--seed", "7"])
    assert cfg.grpc_listen == HostPort("0.0.0.0", 9000)  # flag over file
    assert cfg.metrics_listen == HostPort("::1", 7002)  # file, dashes accepted
    assert str(cfg.metrics_listen) == "[::1]:7002"
    assert cfg.poll_interval == 0.5 and cfg.congestion_samples == 3
    assert cfg.link_capacity_overrides == {"leaf1-spine1": 400.0, "leaf2/3-spine1/2": 25.5}
    assert cfg.seed == 7
    assert cfg.of_listen == FabricdConfig().of_listen  # default
    assert cfg.config == Path(path)


def test_flag_values_are_converted(tmp_path: Path) -> None:
    cfg = load_config(
        ["--state-dir", str(tmp_path), "--log-level", "DEBUG", "--link-capacity-mbps", "100"]
    )
    assert cfg.state_dir == tmp_path and cfg.log_level == "debug"
    assert cfg.link_capacity_mbps == 100.0


def test_unknown_flag_names_the_flag() -> None:
    assert "--bogus" in error_of(["--bogus", "1"])


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("nope", "is not HOST:PORT"),
        (":6653", "is not HOST:PORT"),
        ("127.0.0.1:", "is not HOST:PORT"),
        ("127.0.0.1:http", "is not HOST:PORT"),
        ("127.0.0.1:65536", "port 65536 outside 0-65535"),
    ],
)
def test_bad_listen_addresses_name_the_flag(value: str, words: str) -> None:
    message = error_of(["--of-listen", value])
    assert message.startswith("--of-listen: ") and words in message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--of-listen", "127.0.0.1:7000", "--grpc-listen", "127.0.0.1:7000"],
            "--grpc-listen: 127.0.0.1:7000 is also --of-listen (127.0.0.1:7000)",
        ),
        (
            ["--grpc-listen", "0.0.0.0:7001", "--metrics-listen", "127.0.0.1:7001"],
            "--metrics-listen: 127.0.0.1:7001 is also --grpc-listen (0.0.0.0:7001)",
        ),
        (
            ["--of-listen", "127.0.0.1:7002", "--metrics-listen", "[::]:7002"],
            "--metrics-listen: [::]:7002 is also --of-listen (127.0.0.1:7002)",
        ),
    ],
)
def test_two_listeners_on_one_address_are_refused(argv: list[str], message: str) -> None:
    assert error_of(argv) == f"{message}: give each its own port"


def test_listeners_may_share_a_port_on_other_hosts_or_take_any_port() -> None:
    cfg = load_config(["--of-listen", "127.0.0.1:7000", "--grpc-listen", "127.0.0.2:7000"])
    assert cfg.of_listen.port == cfg.grpc_listen.port == 7000
    cfg = load_config(["--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
    assert cfg.grpc_listen.port == cfg.metrics_listen.port == 0  # each gets its own


def test_parse_host_port_accepts_bracketed_ipv6_and_port_zero() -> None:
    assert parse_host_port("[::1]:0", what="x") == HostPort("::1", 0)
    assert parse_host_port("localhost:65535", what="x") == HostPort("localhost", 65535)


def test_unreadable_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    message = error_of(["--config", str(missing)])
    assert message == f"--config {missing}: cannot read: No such file or directory"
    assert "cannot read" in error_of(["--config", str(tmp_path)])  # a directory


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\npoll_interval: 1\nlog_level: a: b\n")
    message = error_of(["--config", path])
    assert message.startswith(f"--config {path}: line 3: ")
    assert "mapping values are not allowed" in message


def test_empty_config_file_is_called_empty_not_invalid(tmp_path: Path) -> None:
    assert error_of(["--config", write(tmp_path, "")]).endswith(": file is empty")
    assert error_of(["--config", write(tmp_path, "# only a comment\n")]).endswith(": file is empty")


def test_config_file_must_be_a_mapping(tmp_path: Path) -> None:
    assert "expected a mapping of keys, got list" in error_of(
        ["--config", write(tmp_path, "- seed\n- 1\n")]
    )


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\nlldp_intervall: 2\n")
    assert error_of(["--config", path]) == f"--config {path}: unknown key 'lldp_intervall'"
    nested = write(tmp_path, "config: other.yaml\n", "nested.yaml")
    assert "unknown key 'config'" in error_of(["--config", nested])


@pytest.mark.parametrize("mbps", ["0", "-5", "'many'"])
def test_capacity_overrides_must_be_positive_numbers(tmp_path: Path, mbps: str) -> None:
    path = write(tmp_path, f"link_capacity_overrides:\n  leaf1-spine1: {mbps}\n")
    assert error_of(["--config", path]).startswith("link_capacity_overrides.leaf1-spine1: ")


def test_capacity_overrides_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "link_capacity_overrides: [1, 2]\n")
    assert error_of(["--config", path]).startswith("link_capacity_overrides: expected a mapping")


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--clear-threshold", "0.9"], "--clear-threshold"),
        (["--congestion-threshold", "0.5", "--clear-threshold", "0.5"], "--clear-threshold"),
        (["--clear-threshold", "0"], "--clear-threshold"),
        (["--congestion-threshold", "1.5"], "--congestion-threshold"),
        (["--congestion-threshold", "0"], "--congestion-threshold"),
    ],
)
def test_threshold_order_is_checked_and_the_right_flag_named(argv: list[str], flag: str) -> None:
    assert error_of(argv).startswith(f"{flag}: ")


def test_threshold_order_from_the_file_too(tmp_path: Path) -> None:
    path = write(tmp_path, "congestion_threshold: 0.5\nclear_threshold: 0.7\n")
    assert error_of(["--config", path]).startswith("--clear-threshold: ")
    assert load_config(["--config", path, "--clear-threshold", "0.4"]).clear_threshold == 0.4


def test_tls_certificate_needs_a_key(tmp_path: Path) -> None:
    cert = write(tmp_path, "cert", "server.pem")
    assert error_of(["--grpc-tls-cert", cert]) == (
        "--grpc-tls-cert: --grpc-tls-cert and --grpc-tls-key go together"
    )
    assert "go together" in error_of(["--grpc-tls-key", cert])
    key = tmp_path / "absent.key"
    assert error_of(["--grpc-tls-cert", cert, "--grpc-tls-key", str(key)]) == (
        f"--grpc-tls-key: {key} is not a readable file"
    )
    cfg = load_config(["--grpc-tls-cert", cert, "--grpc-tls-key", cert])
    assert cfg.grpc_tls_cert == cfg.grpc_tls_key == Path(cert)


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["--log-level", "loud"], "--log-level: 'loud' is not one of"),
        (["--seed", "1.5"], "--seed: '1.5' is not a non-negative integer"),
        (["--packet-in-rate", "-1"], "--packet-in-rate: "),
        (["--ewma-alpha", "0"], "--ewma-alpha: "),
        (["--ewma-alpha", "nan"], "--ewma-alpha: 'nan' is not finite"),
        (["--lldp-interval", "0.01"], "--lldp-interval: 0.01 s outside"),
        (["--rebalance-period", "7200"], "--rebalance-period: "),
        (["--link-capacity-mbps", "0"], "--link-capacity-mbps: "),
        (["--link-capacity-mbps", "fast"], "--link-capacity-mbps: 'fast' is not a number"),
        (["--congestion-samples", "0"], "--congestion-samples: must be at least 1"),
        (["--poll-budget", "0"], "--poll-budget: 0.0 outside (0, 1]"),
        (["--poll-budget", "1.5"], "--poll-budget: 1.5 outside (0, 1]"),
        (
            ["--poll-interval", "5", "--poll-interval-max", "4"],
            "--poll-interval-max: 4.0 s outside",
        ),
        (["--poll-interval-max", "7200"], "--poll-interval-max: 7200.0 s outside"),
        (["--lldp-budget", "0"], "--lldp-budget: 0.0 outside (0, 1]"),
        (["--lldp-budget", "2"], "--lldp-budget: 2.0 outside (0, 1]"),
        (
            ["--lldp-interval", "5", "--lldp-interval-max", "4"],
            "--lldp-interval-max: 4.0 s outside",
        ),
        (["--grpc-token-file", "/nonexistent/token"], "--grpc-token-file: "),
        (["--of-listen"], "argument --of-listen: expected one argument"),
    ],
)
def test_other_bad_values_name_their_flag(argv: list[str], start: str) -> None:
    assert error_of(argv).startswith(start)


def test_file_values_are_type_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "congestion_samples: true\n")
    assert "is not a number" in error_of(["--config", path])
    path = write(tmp_path, "grpc_listen: 50051\n", "port-only.yaml")
    assert "is not HOST:PORT" in error_of(["--config", path])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        # YAML 1.1 read 1:30 as 90 and 0x10 as 16; YAML 1.2 keeps them text.
        ("rebalance_period: 1:30\n", "--rebalance-period: '1:30' is not a number"),
        ("seed: 0x10\n", "--seed: '0x10' is not a number"),
        ("seed: &s 1\nflow_setup_budget: *s\n", "line 1: anchors (&'s') are not allowed"),
        ("seed: 1\n<<: {seed: 2}\n", "line 2: merge keys (<<) are not allowed"),
        ("seed: 1\nseed: 2\n", "line 2: key 'seed' given twice (first on line 1)"),
        ("link_capacity_overrides: " + "[" * 600 + "]" * 600, "nested more than 32 levels"),
        ("seed: 1\n" + "#" * (2 * 1024 * 1024), "file is larger than the limit of 1048576 bytes"),
        ("seed: " + "x" * 100_000 + "\n", "(100000 characters)"),
    ],
)
def test_config_yaml_is_safe_and_errors_are_short(tmp_path: Path, text: str, fragment: str) -> None:
    message = error_of(["--config", write(tmp_path, text)])
    assert fragment in message
    assert len(message) < 400


def test_spread_and_repair_switches_reach_the_engine() -> None:
    from controller.app.composition import engine_config

    on = engine_config(load_config([]))
    assert on.spread_l4 and on.local_repair
    cfg = load_config(["--spread-l4", "false", "--local-repair", "off"])
    assert not cfg.spread_l4 and not cfg.local_repair
    engine = engine_config(cfg)
    assert not engine.spread_l4 and not engine.local_repair
    net = engine.connectivity()
    assert not net.spread_l4 and not net.local_repair
    assert error_of(["--local-repair", "maybe"]) == "--local-repair: 'maybe' is not true or false"


def test_poll_pacing_reaches_the_engine() -> None:
    from controller.app.composition import engine_config

    default = engine_config(load_config([]))
    assert (default.poll_budget, default.poll_interval_max_s) == (0.5, 30.0)
    engine = engine_config(load_config(["--poll-budget", "0.25", "--poll-interval-max", "12"]))
    assert (engine.poll_budget, engine.poll_interval_max_s) == (0.25, 12.0)


def test_lldp_pacing_reaches_the_engine_and_its_discovery() -> None:
    from controller.app.composition import engine_config

    default = engine_config(load_config([])).connectivity()
    assert (default.lldp_budget, default.lldp_interval_max_s) == (0.2, 30.0)
    engine = engine_config(load_config(["--lldp-budget", "0.1", "--lldp-interval-max", "60"]))
    net = engine.connectivity()
    assert (net.lldp_budget, net.lldp_interval_max_s) == (0.1, 60.0)


def test_the_cluster_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "fabricd-ctl1.yaml"
    cfg = load_config(["--config", str(example), "--node-id", "ctl1"])
    assert cfg.cluster_etcd is not None and cfg.cluster_etcd.count(",") == 2
    assert (cfg.node_id, cfg.cluster_name) == ("ctl1", "fabric")


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--cluster-etcd", "localhost", "is not an etcd URL"),
        ("--cluster-etcd", " , ", "at least one etcd URL"),
        ("--node-id", "a b", "must be 1-63 letters"),
        ("--southbound", "pox", "is not one of ryu, os-ken"),
    ],
)
def test_cluster_and_southbound_flags_are_checked(flag: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_config([flag, value])
