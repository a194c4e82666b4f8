"""Policy documents: shapes, precise field paths, round trips, files and directories."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from controller.errors import InvalidArgument
from controller.policy.model import FlowMatch, Policy, PolicyParams, PortRange, Strategy
from controller.policy.parse import (
    PolicyFileError,
    load_policy_dir,
    load_policy_file,
    policy_from_dict,
    policy_from_yaml,
    policy_to_dict,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SHIPPED = sorted(POLICIES.glob("*.yaml")) + sorted((POLICIES / "examples").glob("*.yaml"))


def doc(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "ai",
        "priority": 100,
        "match": [{"ip_proto": "udp", "dst_ports": [4791]}],
        "strategy": "least-utilized",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def error_of(document: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        policy_from_dict(document)  # type: ignore[arg-type]
    return info.value


def test_full_document() -> None:
    p = policy_from_dict(
        {
            "name": "ai",
            "priority": 7,
            "description": "d",
            "match": [
                {"ip_proto": "UDP", "dst_ports": [4791, "5000-5010", {"lo": 6000, "hi": 6001}]},
                {
                    "ip_proto": 6,
                    "src_ports": ["1-2"],
                    "dscp": [26, 46],
                    "src_hosts": ["10.0.1.0/24", "10.0.2.1"],
                    "dst_hosts": ["10.0.0.0/16"],
                },
            ],
            "strategy": "LEAST_UTILIZED",
            "params": {"congestion_threshold": 0.9, "clear_threshold": 0.5, "idle_timeout_s": 30},
        }
    )
    assert p.match == (
        FlowMatch(
            ip_proto=17,
            dst_ports=(PortRange(4791, 4791), PortRange(5000, 5010), PortRange(6000, 6001)),
        ),
        FlowMatch(
            ip_proto=6,
            src_ports=(PortRange(1, 2),),
            dscp=(26, 46),
            src_hosts=(
                ipaddress.IPv4Network("10.0.1.0/24"),
                ipaddress.IPv4Network("10.0.2.1/32"),
            ),
            dst_hosts=(ipaddress.IPv4Network("10.0.0.0/16"),),
        ),
    )
    assert p.strategy is Strategy.LEAST_UTILIZED
    assert p.params == PolicyParams(
        congestion_threshold=0.9, clear_threshold=0.5, rebalance_period_s=5.0, idle_timeout_s=30
    )
    assert (p.description, p.version) == ("d", 0)


@pytest.mark.parametrize("match", [..., {}, None])
def test_absent_or_empty_match_is_all_traffic(match: object) -> None:
    p = policy_from_dict(doc(match=match, strategy="ecmp"))
    assert p.match == (FlowMatch(),)
    assert p.is_catch_all


def test_single_mapping_match_and_paths_without_index() -> None:
    p = policy_from_dict(doc(match={"ip_proto": "tcp", "dst_ports": ["29500-29599"]}))
    assert p.match == (FlowMatch(ip_proto=6, dst_ports=(PortRange(29500, 29599),)),)
    err = error_of(doc(match={"ip_proto": "tcp", "dst_ports": [70000]}))
    assert (err.field, err.reason) == ("match.dst_ports[0]", "port 70000 outside 0-65535")
    assert (
        error_of(doc(match={"ip_proto": "tcp", "dst_ports": ["x"]})).field == "match.dst_ports[0]"
    )


def test_strategy_defaults_to_ecmp_and_weights_parse() -> None:
    assert policy_from_dict(doc(strategy=..., match=...)).strategy is Strategy.ECMP
    p = policy_from_dict(doc(strategy="weighted", weights={"spine1": 3, "spine2": 0.5}))
    assert p.weights == (("spine1", 3.0), ("spine2", 0.5))
    assert p.weight_map == {"spine1": 3.0, "spine2": 0.5}


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        ([1, 2], "", "must be a mapping"),
        (doc(name=...), "name", "required"),
        (doc(priority=...), "priority", "required"),
        (doc(priority=None), "priority", "required"),
        (doc(name=5), "name", "must be a string"),
        (doc(priority="100"), "priority", "must be an integer, got string"),
        (doc(priority=True), "priority", "must be an integer, got boolean"),
        (doc(priority=1.0), "priority", "must be an integer"),
        (doc(priority=70000), "priority", "outside 0-65535"),
        (doc(version=-1), "version", "must be 0..9223372036854775807, got -1"),
        (doc(description=3), "description", "must be a string"),
        (doc(colour="red"), "colour", "unknown key"),
        (doc(prority=5), "prority", "did you mean 'priority'"),
        (doc(match="udp"), "match", "mapping or a list of mappings"),
        (doc(match=[]), "match", "matches nothing"),
        (doc(match=[{"ip_proto": "udp"}, 5]), "match[1]", "must be a mapping"),
        (doc(match=[{"proto": "udp"}]), "match[0].proto", "unknown key"),
        (doc(match=[{"ip_proto": "sctp"}]), "match[0].ip_proto", "unknown protocol 'sctp'"),
        (doc(match=[{"ip_proto": True}]), "match[0].ip_proto", "must be an integer"),
        (doc(match=[{"ip_proto": 300}]), "match[0].ip_proto", "outside 0-255"),
        (doc(match=[{"ip_proto": "udp", "dst_ports": 4791}]), "match[0].dst_ports", "list"),
        (
            doc(match=[{"ip_proto": "udp"}, {"ip_proto": "udp", "dst_ports": [1, "9-x"]}]),
            "match[1].dst_ports[1]",
            "not a port range",
        ),
        (
            doc(match=[{"ip_proto": "udp", "dst_ports": ["20-10"]}]),
            "match[0].dst_ports[0]",
            "reversed",
        ),
        (
            doc(match=[{"ip_proto": "udp", "dst_ports": [{"lo": 1}]}]),
            "match[0].dst_ports[0].hi",
            "required",
        ),
        (
            doc(match=[{"ip_proto": "udp", "dst_ports": [{"lo": 1, "hi": "2"}]}]),
            "match[0].dst_ports[0].hi",
            "must be an integer",
        ),
        (
            doc(match=[{"ip_proto": "udp", "dst_ports": [{"lo": 1, "hi": 2, "x": 3}]}]),
            "match[0].dst_ports[0].x",
            "unknown key",
        ),
        (doc(match=[{"ip_proto": "udp", "dst_ports": [1.5]}]), "match[0].dst_ports[0]", "port"),
        (doc(match=[{"ip_proto": "udp", "dst_ports": [True]}]), "match[0].dst_ports[0]", "port"),
        (doc(match=[{"dst_ports": [80]}]), "match[0].dst_ports", "tcp or udp"),
        (doc(match=[{"dscp": ["ef"]}]), "match[0].dscp[0]", "must be an integer"),
        (doc(match=[{"dscp": [64]}]), "match[0].dscp[0]", "outside 0-63"),
        (
            doc(match=[{"src_hosts": ["10.0.1.1/24"]}]),
            "match[0].src_hosts[0]",
            "host bits set",
        ),
        (doc(match=[{"dst_hosts": ["10.0.1"]}]), "match[0].dst_hosts[0]", "not an IPv4"),
        (doc(match=[{"dst_hosts": ["fe80::/64"]}]), "match[0].dst_hosts[0]", "IPv6"),
        (doc(match=[{"dst_hosts": [10]}]), "match[0].dst_hosts[0]", "must be a string"),
        (doc(strategy="fastest"), "strategy", "unknown strategy 'fastest'"),
        (doc(strategy=3), "strategy", "must be a string"),
        (doc(params={"clear_threshold": 0.9}), "params.clear_threshold", "below"),
        (doc(params={"clear_threshold": "0.5"}), "params.clear_threshold", "must be a number"),
        (doc(params={"idle_timeout_s": 1.5}), "params.idle_timeout_s", "must be an integer"),
        (doc(params={"rebalance_period_s": False}), "params.rebalance_period_s", "number"),
        (doc(params={"period": 1}), "params.period", "unknown key"),
        (doc(params=[1]), "params", "must be a mapping"),
        (doc(strategy="weighted", weights={"spine3": "2"}), "weights.spine3", "must be a number"),
        (doc(strategy="weighted", weights={1: 2}), "weights.1", "quote dpids"),
        (doc(strategy="weighted", weights=["spine1"]), "weights", "must be a mapping"),
        (doc(strategy="weighted", weights={}), "weights", "at least one"),
        (doc(weights={"spine1": 1}), "weights", "only used by strategy weighted"),
        (doc(strategy="pinned", pinned_path="leaf1"), "pinned_path", "must be a list"),
        (doc(strategy="pinned", pinned_path=["leaf1", 7]), "pinned_path[1]", "string"),
        (doc(strategy="pinned", pinned_path=["l1", "s1", "l1"]), "pinned_path[2]", "repeats"),
        (doc(pinned_path=["leaf1"]), "pinned_path", "only used by strategy pinned"),
        (doc(fallback="ecmp"), "fallback", "only used by strategy pinned"),
        (
            doc(strategy="pinned", pinned_path=["l1"], fallback="pinned"),
            "fallback",
            "must not be pinned",
        ),
        (doc(strategy="pinned", pinned_path=["l1"], fallback="best"), "fallback", "unknown"),
        (doc(match=..., strategy="widest"), "strategy", "catch-all"),
    ],
)
def test_document_errors_name_the_field(document: object, field: str, fragment: str) -> None:
    err = error_of(document)
    assert err.field == field
    assert fragment in err.reason


def test_unknown_key_message_lists_the_allowed_keys() -> None:
    err = error_of(doc(colour="red"))
    assert "name, version, priority" in err.reason


def test_validate_false_checks_only_the_shape() -> None:
    p = policy_from_dict(doc(priority=70000, fallback="ecmp"), validate=False)
    assert (p.priority, p.fallback) == (70000, Strategy.ECMP)
    with pytest.raises(InvalidArgument):
        policy_from_dict(doc(priority="x"), validate=False)


ROUND_TRIP = [
    Policy(name="default", priority=0),
    Policy(
        name="full",
        priority=65535,
        match=(
            FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791), PortRange(1, 9))),
            FlowMatch(
                ip_proto=47,
                dscp=(0, 63),
                src_hosts=(ipaddress.IPv4Network("10.0.0.7/32"),),
                dst_hosts=(ipaddress.IPv4Network("0.0.0.0/0"),),
            ),
            FlowMatch(ip_proto=6, src_ports=(PortRange(0, 65535),)),
        ),
        strategy=Strategy.PINNED,
        pinned_path=("leaf1", "0000000000000002", "leaf2"),
        fallback=Strategy.WIDEST,
        params=PolicyParams(0.95, 0.25, 0.1, 0.0, 3600),
        description="every field",
        version=42,
    ),
    Policy(
        name="w",
        priority=3,
        match=(FlowMatch(ip_proto=6),),
        strategy=Strategy.WEIGHTED,
        weights=(("spine2", 1.0), ("spine1", 2.5)),
    ),
]


@pytest.mark.parametrize("policy", ROUND_TRIP, ids=lambda p: p.name)
def test_policy_dict_policy_is_exact(policy: Policy) -> None:
    document = policy_to_dict(policy)
    assert policy_from_dict(document) == policy
    # Also through JSON text, as the SQLite store keeps it.
    assert policy_from_dict(json.loads(json.dumps(document))) == policy


def test_to_dict_shape_and_key_order() -> None:
    document = policy_to_dict(ROUND_TRIP[1])
    assert list(document) == [
        "name",
        "version",
        "priority",
        "description",
        "match",
        "strategy",
        "pinned_path",
        "fallback",
        "params",
    ]
    assert document["match"] == [
        {"ip_proto": "udp", "dst_ports": [4791, "1-9"]},
        {"ip_proto": 47, "dscp": [0, 63], "src_hosts": ["10.0.0.7"], "dst_hosts": ["0.0.0.0/0"]},
        {"ip_proto": "tcp", "src_ports": ["0-65535"]},
    ]
    plain = policy_to_dict(Policy(name="d", priority=0))
    assert list(plain) == ["name", "priority", "strategy", "params"]  # no version 0, no fallback
    assert plain["params"] == {
        "congestion_threshold": 0.8,
        "clear_threshold": 0.6,
        "rebalance_period_s": 5,
        "min_move_interval_s": 2,
        "idle_timeout_s": 10,
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_round_trip(path: Path) -> None:
    policy = load_policy_file(path)
    document = policy_to_dict(policy)
    assert policy_from_dict(document) == policy
    assert policy_to_dict(policy_from_dict(document)) == document
    assert path.read_text().startswith("#"), "each shipped file explains itself"


def test_shipped_defaults_are_what_the_daemon_loads() -> None:
    policies = {p.name: p for p in load_policy_dir(POLICIES)}
    assert set(policies) == {"default", "ai-training"}  # examples/ is not loaded
    default, ai = policies["default"], policies["ai-training"]
    assert (default.priority, default.strategy, default.is_catch_all) == (0, Strategy.ECMP, True)
    assert ai.priority == 100
    assert ai.strategy is Strategy.LEAST_UTILIZED
    assert ai.match == (
        FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),)),
        FlowMatch(ip_proto=6, dst_ports=(PortRange(29500, 29599),)),
    )
    assert ai.params == PolicyParams(0.8, 0.6, 2.0, 2.0, 10)


def test_shipped_examples() -> None:
    pinned = load_policy_file(POLICIES / "examples" / "pinned-example.yaml")
    assert pinned.pinned_path == ("leaf1", "spine2", "leaf2")
    assert pinned.match[0].dst_ports == (PortRange(5001, 5010),)
    weighted = load_policy_file(POLICIES / "examples" / "weighted-example.yaml")
    assert weighted.weight_map == {"spine1": 3.0, "spine2": 1.0}
    assert weighted.match[0].dst_ports == (PortRange(5201, 5299),)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def file_error(path: Path) -> PolicyFileError:
    with pytest.raises(PolicyFileError) as info:
        load_policy_file(path)
    return info.value


def test_file_error_message_starts_with_the_file_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "name: x\npriority: 1\nmatch:\n  - ip_proto: udp\n    dst_ports: [70000]\n",
    )
    err = file_error(path)
    assert str(err) == f"{path}: match[0].dst_ports[0]: port 70000 outside 0-65535"
    assert (err.field, err.file) == ("match[0].dst_ports[0]", str(path))
    assert isinstance(err, InvalidArgument)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_says_so(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "e.yaml", text)
    assert str(file_error(path)) == f"{path}: file is empty; expected a policy document"


def test_yaml_syntax_error_is_reported_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "name: x\npriority: 1\nmatch: [unclosed\n")
    message = str(file_error(path))
    assert message.startswith(f"{path}: invalid YAML at line 4")
    assert "empty" not in message


def test_yaml_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", "name: x\npriority: 1\npriority: 2\n")
    message = str(file_error(path))
    assert "key 'priority' given twice (first on line 2)" in message
    assert "line 3" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("null\n", "document is null"),
        ("- a\n- b\n", "must be a mapping, got list"),
        ("name: a\n---\nname: b\n", "invalid YAML"),
        # YAML 1.2: `yes` is a string, not a boolean; either way not an integer.
        ("name: x\npriority: yes\n", "priority: must be an integer, got string 'yes'"),
        ("name: x\npriority: true\n", "priority: must be an integer, got boolean"),
    ],
)
def test_other_file_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, "p.yaml", text)
    message = str(file_error(path))
    assert message.startswith(f"{path}: ")
    assert fragment in message


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    assert "cannot read" in str(file_error(tmp_path / "missing.yaml"))
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\npriority: 1\n")
    assert "not UTF-8" in str(file_error(path))


def test_json_text_is_yaml_too() -> None:
    p = policy_from_yaml('{"name": "j", "priority": 5}', source="req.json")
    assert (p.name, p.priority) == ("j", 5)
    with pytest.raises(PolicyFileError, match=r"^req\.json: priority: required$"):
        policy_from_yaml('{"name": "j"}', source="req.json")


def test_dir_loads_yaml_and_yml_sorted_and_skips_others(tmp_path: Path) -> None:
    write(tmp_path, "b.yml", "name: b\npriority: 2\nmatch: {ip_proto: udp}\n")
    write(tmp_path, "a.yaml", "name: zz\npriority: 1\nmatch: {ip_proto: tcp}\n")
    write(tmp_path, "notes.txt", "not a policy")
    write(tmp_path, ".#a.yaml", "editor lock file")
    (tmp_path / "examples").mkdir()
    write(tmp_path / "examples", "c.yaml", "name: c\npriority: 3\n")
    assert [p.name for p in load_policy_dir(tmp_path)] == ["zz", "b"]


def test_dir_refuses_a_name_defined_twice(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "name: same\npriority: 1\nmatch: {ip_proto: tcp}\n")
    second = write(tmp_path, "b.yaml", "name: same\npriority: 2\nmatch: {ip_proto: udp}\n")
    with pytest.raises(PolicyFileError) as info:
        load_policy_dir(tmp_path)
    assert str(info.value) == (f"{second}: name: policy 'same' is already defined in {first}")


def test_dir_refuses_overlapping_policies_at_one_priority(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "name: a\npriority: 5\nmatch: {ip_proto: udp}\n")
    second = write(tmp_path, "b.yaml", "name: b\npriority: 5\nmatch: {dscp: [46]}\n")
    with pytest.raises(PolicyFileError) as info:
        load_policy_dir(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{second}: priority: priority 5 is also used by policy 'a'")
    assert str(first) in message


def test_dir_errors_name_the_bad_file_and_a_missing_dir(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: a\npriority: 5\n")
    bad = write(tmp_path, "b.yaml", "name: b\npriority: 5\nstrategy: nope\n")
    with pytest.raises(PolicyFileError, match=f"^{bad}: strategy: unknown strategy"):
        load_policy_dir(tmp_path)
    with pytest.raises(PolicyFileError, match="not a directory"):
        load_policy_dir(tmp_path / "nowhere")


# --------------------------------------------------------------------------- hostile documents


def yaml_error(text: str) -> str:
    with pytest.raises(PolicyFileError) as info:
        policy_from_yaml(text, source="p.yaml")
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message[:1000]
    return message


BASE = "name: x\npriority: 1\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML 1.1 read these as 90 and 16; YAML 1.2 scalars keep them text.
        (BASE.replace("1", "1:30"), "p.yaml: priority: must be an integer, got string '1:30'"),
        (BASE.replace("1", "0x10"), "p.yaml: priority: must be an integer, got string '0x10'"),
        # ... and YAML 1.1 read 1e308 as a string: it is a (too large) number.
        (
            BASE + "params: {congestion_threshold: 1e308}",
            "p.yaml: params.congestion_threshold: 1e+308 outside (0, 1] (a utilization ratio)",
        ),
    ],
)
def test_yaml_1_1_surprises_are_gone(text: str, expected: str) -> None:
    assert yaml_error(text) == expected


def test_a_merge_key_cannot_write_a_key_twice() -> None:
    message = yaml_error(BASE + "<<: {priority: 2}\n")
    assert message == (
        "p.yaml: invalid YAML at line 3, column 1: merge keys (<<) are not allowed; "
        "write each key out"
    )


def test_alias_bomb_is_one_short_line() -> None:
    lines = [BASE + "description: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"k{i}: &a{i} [*a, *a, *a, *a, *a, *a, *a, *a, *a]" for i in range(9)]
    assert "anchors (&'a') are not allowed" in yaml_error("\n".join(lines))


@pytest.mark.parametrize("depth", [40, 600, 100_000])
def test_deep_nesting_is_one_line_not_a_recursion_error(depth: int) -> None:
    message = yaml_error(BASE + "match: " + "[" * depth + "]" * depth)
    assert "nested more than 32 levels deep" in message


def test_version_beyond_int64_is_refused_precisely() -> None:
    # It travels as an int64; 2**63 used to pass `check` and crash `check --json`.
    assert yaml_error(BASE + "version: 9223372036854775808") == (
        "p.yaml: version: must be 0..9223372036854775807, got 9223372036854775808"
    )


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        (doc(strategy="weighted", weights={"spine1": 10**400}), "weights.spine1", "too large"),
        (doc(params={"rebalance_period_s": -(10**400)}), "params.rebalance_period_s", "too large"),
        (doc(priority=10**5000), "priority", "an integer of about 5001 digits outside 0-65535"),
        (
            doc(match=[{"ip_proto": "udp", "dst_ports": ["9" * 5000 + "-1"]}]),
            "match[0].dst_ports[0]",
            "outside 0-65535",
        ),
        (doc(**{"x" * 10**6: 1}), "x" * 60 + "...", "unknown key"),
        (doc(description="d" * 10**6), "description", "at most 256 characters, got 1000000"),
        (doc(match=[{"src_hosts": ["1" * 10**6]}]), "match[0].src_hosts[0]", "1000000 characters"),
    ],
)
def test_out_of_range_and_huge_values_get_short_precise_errors(
    document: dict[str, object], field: str, fragment: str
) -> None:
    err = error_of(document)
    assert err.field == field
    assert fragment in err.reason
    assert len(str(err)) < 300


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", BASE + "description: " + "d" * (1024 * 1024) + "\n")
    message = str(file_error(path))
    assert message == f"{path}: file is larger than the limit of 262144 bytes"
