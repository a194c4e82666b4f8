"""Refused policy documents: the value the user wrote appears in the message.

An operator reading ``dst_ports[0]: port ... outside 0-65535`` needs the port
they typed, not a placeholder; the limits name what to do next. Edges of the
accepted ranges (the largest version) are accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import InvalidArgument
from controller.policy.limits import MAX_POLICIES, MAX_VERSION, check_rule_budget
from controller.policy.model import Policy, Strategy
from controller.policy.parse import PolicyFileError, load_policy_dir, policy_from_dict


def doc(**fields: object) -> dict[str, object]:
    udp = {"ip_proto": "udp", "dst_ports": [4791]}
    return {"name": "ai", "priority": 100, "strategy": "least-utilized", "match": udp, **fields}


def refused(document: dict[str, object]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        policy_from_dict(document)
    return caught.value


def test_a_port_with_too_many_digits_is_quoted_in_the_message() -> None:
    err = refused(doc(match={"ip_proto": "udp", "dst_ports": ["123456-123457"]}))
    assert err.field == "match.dst_ports[0]"
    assert err.reason == "port '123456' outside 0-65535"


def test_an_ipv6_prefix_is_quoted_and_refused_as_ipv6() -> None:
    err = refused(doc(match={"ip_proto": "udp", "dst_hosts": ["2001:db8::/32"]}))
    assert err.field == "match.dst_hosts[0]"
    assert err.reason == "'2001:db8::/32' is IPv6; only IPv4 is supported"


def test_a_prefix_with_host_bits_set_is_refused() -> None:
    err = refused(doc(match={"ip_proto": "udp", "src_hosts": ["10.0.0.1/24"]}))
    assert err.field == "match.src_hosts[0]"
    assert "has host bits set" in err.reason


def test_the_largest_version_is_accepted_and_one_more_is_not() -> None:
    assert policy_from_dict(doc(version=MAX_VERSION)).version == MAX_VERSION
    err = refused(doc(version=MAX_VERSION + 1))
    assert err.field == "version" and err.reason.startswith(f"must be 0..{MAX_VERSION}")


def test_too_many_policies_says_to_delete_one() -> None:
    many = [
        Policy(name=f"p{i}", priority=i + 1, strategy=Strategy.ECMP)
        for i in range(MAX_POLICIES + 1)
    ]
    with pytest.raises(InvalidArgument) as caught:
        check_rule_budget(many)
    assert caught.value.field == "name"
    assert caught.value.reason.endswith("; delete one first")


def test_a_directory_over_the_limits_is_named_without_a_field(tmp_path: Path) -> None:
    for i in range(MAX_POLICIES + 1):
        (tmp_path / f"p{i:03}.yaml").write_text(
            f"name: p{i}\npriority: {i + 1}\nstrategy: ecmp\n"
            f"match: {{ip_proto: udp, dst_ports: [{1000 + i}]}}\n"
        )
    with pytest.raises(PolicyFileError) as caught:
        load_policy_dir(tmp_path)
    assert caught.value.field == ""
    assert str(caught.value).startswith(f"{tmp_path}: ")
    assert "delete one first" in str(caught.value)
