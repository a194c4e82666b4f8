"""Property-based tests of the policy parser, in its dict and YAML forms.

Documents are drawn near the schema (right keys, plausible and implausible
values) with arbitrary junk mixed in, then as YAML text: dumped, mutated, or
made of YAML punctuation. Whatever the input, the parser either returns a
policy that validates, compiles to the entries the limits counted and
survives every round trip, or raises the one precise error type with a
short message; any other exception is a bug. The example budget is fixed and
derandomized so ``make test`` stays fast and repeatable.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api.convert import policy_from_proto, policy_to_proto
from controller.errors import InvalidArgument
from controller.flowprog.classmatch import of_matches
from controller.policy.limits import MAX_RULES_PER_POLICY, rule_entries
from controller.policy.model import Policy
from controller.policy.parse import (
    PolicyFileError,
    policy_from_dict,
    policy_from_yaml,
    policy_to_dict,
)
from controller.policy.validate import validate_policy

BUDGET = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

junk: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "-", "1-2", "0x10", "1:30", "yes", "\x1b[2J"])
    | st.text(min_size=250, max_size=300),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def either(
    good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any] = junk
) -> st.SearchStrategy[Any]:
    """Mostly plausible values, now and then something else."""
    return st.integers(0, 99).flatmap(lambda n: bad if n >= 85 else good)


def rarely(bad: st.SearchStrategy[Any], good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nearly always ``good``: for list items, where one bad item spoils the list."""
    return st.integers(0, 99).flatmap(lambda n: bad if n >= 96 else good)


port = rarely(st.integers(-3, 70000), st.integers(0, 65535))
port_item = rarely(
    junk,
    port
    | st.builds(lambda a, b: f"{min(a, b)}-{max(a, b)}", port, port)
    | st.builds(lambda a, b: {"lo": min(a, b), "hi": max(a, b)}, port, port),
)
network = st.builds(
    lambda a, n: str(ipaddress.ip_network(f"{a}/{n}", strict=False)),
    st.ip_addresses(v=4),
    st.integers(8, 32),
)
host = rarely(st.sampled_from(["10.0.0.1/8", "::1", "10.0.0.256", "0.0.0.0/0"]), network)
alternative = st.fixed_dictionaries(
    {"ip_proto": rarely(st.sampled_from([1, 256, "sctp"]), st.sampled_from(["tcp", "UDP", 6, 17]))},
    optional={
        "src_ports": either(st.lists(port_item, max_size=4)),
        "dst_ports": either(st.lists(port_item, max_size=6)),
        "dscp": either(st.lists(rarely(st.integers(-1, 64), st.integers(0, 63)), max_size=4)),
        "src_hosts": either(st.lists(host, max_size=3)),
        "dst_hosts": either(st.lists(host, max_size=3)),
    },
)
strategy_name = either(
    st.sampled_from(["least-utilized", "least_utilized", "widest", "ecmp", "shortest"]),
    st.sampled_from(["weighted", "pinned", "x", "PINNED"]),
)
switch_name = st.sampled_from(["leaf1", "leaf2", "spine1", "spine2", "00000000000000ab"])
weight_key = rarely(st.text(max_size=5) | st.integers() | st.none(), switch_name)
number = either(st.floats(0.01, 0.99), st.floats(allow_nan=True) | st.integers(-(10**30), 10**30))
params = st.fixed_dictionaries(
    {},
    optional={
        "congestion_threshold": number,
        "rebalance_period_s": either(st.floats(0.1, 3600)),
        "min_move_interval_s": either(st.floats(0, 3600)),
        "idle_timeout_s": either(st.integers(1, 3600), number),
    },
)


@st.composite
def plausible_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A document with the usual fields, each present about as often as people write it."""
    doc: dict[str, Any] = {
        "name": draw(either(st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?", fullmatch=True))),
        "priority": draw(either(st.integers(1, 65535), st.integers(-1, 2**40))),
    }
    for key, strategy, percent in (
        ("version", either(st.integers(0, 99), st.integers(-1, 2**64)), 30),
        ("description", either(st.text(max_size=40)), 30),
        (
            "match",
            either(
                st.lists(alternative, min_size=1, max_size=4) | alternative,
                st.none() | st.just({}) | st.just([]),
            ),
            85,
        ),
        ("strategy", strategy_name, 70),
        ("fallback", strategy_name, 8),
        ("weights", either(st.dictionaries(weight_key, number, max_size=3)), 10),
        ("pinned_path", either(st.lists(rarely(junk, switch_name), max_size=4)), 10),
        ("params", either(params), 40),
    ):
        # High draws mean "present": Hypothesis favours 0, which should mean the usual case.
        if draw(st.integers(0, 99)) >= 100 - percent:
            doc[key] = draw(strategy)
    if draw(st.integers(0, 99)) >= 92:  # an unknown key now and then, with any value
        doc[draw(st.text(max_size=8))] = draw(junk)
    return doc


documents = plausible_documents()


def check_accepted(policy: Policy) -> None:
    """Everything an accepted policy must allow downstream."""
    validate_policy(policy)
    assert policy_from_dict(policy_to_dict(policy)) == policy
    wire = policy_from_proto(policy_to_proto(policy))
    assert wire == replace(policy, weights=tuple(sorted(policy.weights)), version=0)
    entries = rule_entries(policy)
    assert entries <= MAX_RULES_PER_POLICY
    if not policy.is_catch_all:
        assert entries == sum(len(of_matches(m)) for m in policy.match)


def check_refusal(err: InvalidArgument) -> None:
    assert len(str(err)) < 600, str(err)[:1000]


@BUDGET
@given(documents)
def test_dict_documents_parse_or_are_refused_precisely(document: dict[str, Any]) -> None:
    try:
        policy = policy_from_dict(document)
    except InvalidArgument as err:
        check_refusal(err)
        return
    check_accepted(policy)


def yaml_of(document: dict[str, Any]) -> str:
    try:
        return yaml.safe_dump(document, allow_unicode=True, width=60)
    except (yaml.YAMLError, ValueError):
        return ""


@st.composite
def mutated_yaml(draw: st.DrawFn) -> str:
    text = yaml_of(draw(documents))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from(list("&*!<>|{}[],:#'\"-?%@`\t\n ")) | st.text(max_size=3))
        text = text[:at] + piece + text[at:]
    return text


yaml_texts = st.one_of(
    documents.map(yaml_of),
    mutated_yaml(),
    st.text(alphabet=st.sampled_from(list("ab01:-&*!<{}[],#'\" \n\t.?|>~")), max_size=80),
    st.text(max_size=60),
)


@BUDGET
@given(yaml_texts)
def test_yaml_documents_parse_or_are_refused_in_one_line(text: str) -> None:
    try:
        policy = policy_from_yaml(text, source="p.yaml")
    except PolicyFileError as err:
        message = str(err)
        assert message.startswith("p.yaml: ")
        check_refusal(err)
        # One line, unless a key the author wrote holds a newline (fabricctl escapes it).
        assert "\n" not in message or "\n" in text
        return
    check_accepted(policy)
