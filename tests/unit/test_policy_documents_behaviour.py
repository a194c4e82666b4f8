"""Policy documents as an operator writes them, and the one line they get back.

``fabricctl policy check FILE`` and ``policy apply`` print exactly these
messages (file, field path as the document wrote it, reason), so each case
pins the whole line. Also: YAML merge keys and duplicate keys, files that
cannot be read, and what ``policy get`` shows for a stored policy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import InvalidArgument
from controller.policy.model import Policy, PolicyParams, Strategy
from controller.policy.parse import (
    load_policy_dir,
    load_policy_file,
    policy_from_yaml,
    policy_to_dict,
)

HEAD = "name: a\npriority: 1\n"
KEYS = (
    "name, version, priority, description, match, strategy, weights, pinned_path, fallback, params"
)

DOCUMENTS: list[tuple[str, str, str]] = [
    ("null key", HEAD + "~: 2\n", "None: keys must be strings, got null"),
    ("number key", HEAD + "3: x\n", "3: keys must be strings, got integer"),
    (
        "typo",
        "name: a\nprority: 1\n",
        f"prority: unknown key (did you mean 'priority'?); expected one of {KEYS}",
    ),
    ("unknown key", "name: a\nzzz: 1\n", f"zzz: unknown key; expected one of {KEYS}"),
    (
        "match scalar",
        HEAD + "match: 5\n",
        "match: must be a mapping or a list of mappings, got integer",
    ),
    (
        "ports scalar",
        HEAD + "match: [{ip_proto: udp, dst_ports: 4791}]\n",
        "match[0].dst_ports: must be a list, got integer",
    ),
    ("params scalar", HEAD + "params: 3\n", "params: must be a mapping, got integer"),
    (
        "threshold text",
        HEAD + "params: {congestion_threshold: high}\n",
        "params.congestion_threshold: must be a number, got string 'high'",
    ),
    (
        "unquoted dpid",
        # (YAML 1.2: a dpid with leading zeros stays text; a plain number does not)
        HEAD + "match: {ip_proto: udp}\nstrategy: pinned\npinned_path: [513]\n",
        "pinned_path[0]: must be a string, got integer 513 (quote dpids in YAML so they stay text)",
    ),
    (
        "name list",
        "name: [a]\npriority: 1\n",
        "name: must be a string, got list ['a']",
    ),
    (
        "range without hi",
        HEAD + "match: {ip_proto: udp, dst_ports: [{lo: 1}]}\n",
        "match.dst_ports[0].hi: required",
    ),
    (
        "range lo text",
        HEAD + "match: {ip_proto: udp, dst_ports: [{lo: x, hi: 2}]}\n",
        "match.dst_ports[0].lo: must be an integer, got string 'x'",
    ),
    (
        "port number",
        HEAD + "match: {ip_proto: udp, dst_ports: [1.5]}\n",
        'match.dst_ports[0]: expected a port number, "lo-hi" or {lo, hi}, got number',
    ),
    (
        "port boolean",
        HEAD + "match: {ip_proto: udp, dst_ports: [true]}\n",
        'match.dst_ports[0]: expected a port number, "lo-hi" or {lo, hi}, got boolean',
    ),
    (
        "source port text",
        HEAD + "match: {ip_proto: udp, src_ports: [x]}\n",
        'match.src_ports[0]: \'x\' is not a port range; write "lo-hi", e.g. "29500-29599"',
    ),
    (
        "host bits",
        HEAD + "match: {src_hosts: [10.0.0.1/8]}\n",
        "match.src_hosts[0]: '10.0.0.1/8' has host bits set; "
        "write the network address of the prefix",
    ),
    (
        "empty match list",
        HEAD + "match: []\n",
        "match: an empty list matches nothing; omit match (or write {}) for all traffic",
    ),
    ("negative version", HEAD + "version: -1\n", "version: must be 0..9223372036854775807, got -1"),
    ("version text", HEAD + "version: x\n", "version: must be an integer, got string 'x'"),
    ("missing priority", "name: a\npriority: ~\n", "priority: required"),
    ("list document", "- a\n", "a policy document must be a mapping, got list"),
    ("null document", "null\n", "document is null; expected a mapping"),
    ("comments only", "# only\n---\n...\n", "file is empty; expected a policy document"),
    (
        "twice",
        HEAD + "priority: 2\n",
        "invalid YAML at line 3, column 1: key 'priority' given twice (first on line 2)",
    ),
    (
        "twice after a merge",
        HEAD + "params:\n  <<: {congestion_threshold: 0.9}\n  clear_threshold: 0.5\n"
        "  clear_threshold: 0.4\n",
        "invalid YAML at line 4, column 3: merge keys (<<) are not allowed; write each key out",
    ),
    (
        "list key",
        HEAD + "? [x, y]\n: 1\n",
        "invalid YAML at line 3, column 3: "
        "mapping keys must be plain values, not lists or mappings",
    ),
    (
        "unclosed list",
        "name: [a\n",
        "invalid YAML at line 2, column 1: did not find expected ',' or ']'",
    ),
    (
        "two documents",
        "name: a\n---\nname: b\n",
        "invalid YAML at line 2, column 1: expected a single document in the stream, "
        "but found another document",
    ),
    (
        "tab",
        "name:\ta\n\tpriority: 1\n",
        "invalid YAML at line 2, column 1: found a tab character that violates indentation",
    ),
]


@pytest.mark.parametrize(("case", "text", "line"), DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_a_bad_document_gets_one_precise_line(case: str, text: str, line: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        policy_from_yaml(text, source="p.yaml")
    assert str(err.value) == f"p.yaml: {line}", case


def test_errors_without_a_source_name_say_input() -> None:
    with pytest.raises(InvalidArgument) as err:
        policy_from_yaml("null\n")
    assert str(err.value) == "<input>: document is null; expected a mapping"


def test_a_merge_key_is_refused_rather_than_merged() -> None:
    with pytest.raises(InvalidArgument, match=r"merge keys \(<<\) are not allowed"):
        policy_from_yaml(
            HEAD + "params:\n  <<: {congestion_threshold: 0.9, clear_threshold: 0.7}\n"
            "  clear_threshold: 0.5\n"
        )


def test_unset_parameters_keep_their_defaults() -> None:
    policy = policy_from_yaml(HEAD + "version: 0\nparams: {congestion_threshold: 0.9}\n")
    assert policy.params == PolicyParams(congestion_threshold=0.9) and policy.version == 0


def test_a_stored_policy_is_shown_with_its_fallback_and_plain_numbers() -> None:
    pinned = Policy(
        name="p",
        priority=5,
        strategy=Strategy.PINNED,
        pinned_path=("spine1",),
        params=PolicyParams(rebalance_period_s=2.0, congestion_threshold=0.75),
    )
    shown = policy_to_dict(pinned)
    assert shown["fallback"] == "least-utilized" and shown["pinned_path"] == ["spine1"]
    params = shown["params"]
    assert isinstance(params, dict)
    assert params["rebalance_period_s"] == 2 and isinstance(params["rebalance_period_s"], int)
    assert params["congestion_threshold"] == 0.75
    assert "fallback" not in policy_to_dict(Policy(name="q", priority=5))


# ------------------------------------------------------------------------ files
def test_unreadable_files_and_directories_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "gone.yaml"
    with pytest.raises(InvalidArgument) as err:
        load_policy_file(missing)
    assert str(err.value) == f"{missing}: cannot read: No such file or directory"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InvalidArgument) as err:
        load_policy_file(latin)
    assert str(err.value) == f"{latin}: not UTF-8 text (byte 9)"
    with pytest.raises(InvalidArgument) as err:
        load_policy_dir(missing)
    assert str(err.value) == f"{missing}: not a directory"
    assert err.value.field == ""


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "bom.yaml"
    file.write_bytes(b"\xef\xbb\xbf" + HEAD.encode())
    assert load_policy_file(file).name == "a"


def test_a_file_error_keeps_the_field_for_callers(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(HEAD + "version: -1\n")
    with pytest.raises(InvalidArgument) as err:
        load_policy_file(file)
    reason = "must be 0..9223372036854775807, got -1"
    assert (err.value.field, err.value.reason) == ("version", reason)
    assert str(err.value) == f"{file}: version: {reason}"


def test_errors_about_the_whole_file_name_no_field(tmp_path: Path) -> None:
    cases = {
        "null\n": "document is null; expected a mapping",
        "# nothing\n": "file is empty; expected a policy document",
        "name: [a\n": "invalid YAML at line 2, column 1: did not find expected ',' or ']'",
        "name: a\x00\n": "invalid YAML: character 0 at offset 7 is not allowed in YAML "
        "(write control characters as escapes in a double-quoted string)",
    }
    for text, reason in cases.items():
        with pytest.raises(InvalidArgument) as err:
            policy_from_yaml(text, source="p.yaml")
        assert (err.value.field, str(err.value)) == ("", f"p.yaml: {reason}")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"\xe9")
    for path in (latin, tmp_path / "gone.yaml"):
        with pytest.raises(InvalidArgument) as err:
            load_policy_file(path)
        assert err.value.field == ""


def test_a_mapping_where_text_belongs_is_called_a_mapping() -> None:
    with pytest.raises(InvalidArgument) as err:
        policy_from_yaml("name: {a: 1}\npriority: 1\n", source="p.yaml")
    assert str(err.value) == "p.yaml: name: must be a string, got dict {'a': 1}"
