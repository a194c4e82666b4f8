"""Jobs: pattern expansion, documents, validation with precise field paths, storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.errors import InvalidArgument
from controller.jobs.model import Job, Pattern
from controller.jobs.parse import (
    job_from_dict,
    job_from_json,
    job_from_yaml,
    job_to_dict,
    job_to_json,
    load_job_file,
)
from controller.jobs.validate import MAX_JOB_PAIRS, validate_job
from controller.policy.model import FlowMatch, PortRange

ROCE = FlowMatch(ip_proto=17, dst_ports=(PortRange(4791, 4791),))
HOSTS = ("10.0.1.1", "10.0.2.1", "10.0.3.1", "10.0.4.1")

RING_YAML = """\
name: llama-allreduce
hosts: [10.0.1.1, 10.0.2.1, 10.0.3.1, 10.0.4.1]
pattern: ring
match: {ip_proto: udp, dst_ports: [4791]}
demand_mbps: 20
"""


def doc(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "ring",
        "hosts": list(HOSTS),
        "match": {"ip_proto": "udp", "dst_ports": [4791]},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def error(d: dict[str, object], **kw: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as exc:
        job_from_dict(d, **kw)  # type: ignore[arg-type]
    return exc.value


# --------------------------------------------------------------------------- expansion


def test_ring_expansion_wraps_around() -> None:
    job = Job("r", HOSTS, ROCE)
    assert job.flow_pairs() == (
        ("10.0.1.1", "10.0.2.1"),
        ("10.0.2.1", "10.0.3.1"),
        ("10.0.3.1", "10.0.4.1"),
        ("10.0.4.1", "10.0.1.1"),
    )
    assert job.pair_count == 4
    two = Job("r", HOSTS[:2], ROCE).flow_pairs()
    assert two == (("10.0.1.1", "10.0.2.1"), ("10.0.2.1", "10.0.1.1"))


def test_all_to_all_expansion_is_rank_ordered() -> None:
    job = Job("a", HOSTS[:3], ROCE, pattern=Pattern.ALL_TO_ALL)
    assert job.flow_pairs() == (
        ("10.0.1.1", "10.0.2.1"),
        ("10.0.1.1", "10.0.3.1"),
        ("10.0.2.1", "10.0.1.1"),
        ("10.0.2.1", "10.0.3.1"),
        ("10.0.3.1", "10.0.1.1"),
        ("10.0.3.1", "10.0.2.1"),
    )
    assert job.pair_count == 6 == len(job.flow_pairs())


def test_pairs_pattern_keeps_the_given_order() -> None:
    pairs = (("10.0.3.1", "10.0.1.1"), ("10.0.1.1", "10.0.2.1"))
    job = Job("p", HOSTS, ROCE, pattern=Pattern.PAIRS, pairs=pairs)
    assert job.flow_pairs() == pairs


def test_demand_defaults_to_link_capacity() -> None:
    assert Job("r", HOSTS, ROCE).demand_bps(10e6) == 10e6
    assert Job("r", HOSTS, ROCE, demand_mbps=2.5).demand_bps(10e6) == 2.5e6


# --------------------------------------------------------------------------- documents


def test_yaml_document_and_round_trip() -> None:
    job = job_from_yaml(RING_YAML)
    assert job.name == "llama-allreduce" and job.hosts == HOSTS
    assert job.pattern is Pattern.RING and job.match == ROCE
    assert job.demand_mbps == 20 and job.priority == 1000
    assert job_from_dict(job_to_dict(job)) == job
    stored = json.loads(job_to_json(job))
    assert stored["demand_mbps"] == 20 and stored["match"] == {
        "ip_proto": "udp",
        "dst_ports": [4791],
    }
    assert job_from_json(job_to_json(job)) == job


def test_pairs_accept_list_and_message_forms() -> None:
    job = job_from_dict(
        doc(
            pattern="pairs",
            pairs=[["10.0.1.1", "10.0.2.1"], {"src": "10.0.3.1", "dst": "10.0.4.1"}],
        )
    )
    assert job.pairs == (("10.0.1.1", "10.0.2.1"), ("10.0.3.1", "10.0.4.1"))
    again = job_from_dict(job_to_dict(job))
    assert again == job and job_to_dict(job)["pairs"] == [
        ["10.0.1.1", "10.0.2.1"],
        ["10.0.3.1", "10.0.4.1"],
    ]


def test_all_to_all_spelling_and_port_ranges() -> None:
    job = job_from_dict(
        doc(pattern="all_to_all", match={"ip_proto": "tcp", "dst_ports": ["29500-29599"]})
    )
    assert job.pattern is Pattern.ALL_TO_ALL
    assert job.match == FlowMatch(ip_proto=6, dst_ports=(PortRange(29500, 29599),))
    assert job_to_dict(job)["match"] == {"ip_proto": "tcp", "dst_ports": ["29500-29599"]}


def test_job_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ring.yaml"
    path.write_text(RING_YAML.replace("10.0.3.1,", "10.0.1.1,"))
    with pytest.raises(InvalidArgument) as exc:
        load_job_file(path)
    assert exc.value.field == "hosts[2]"
    assert str(exc.value) == f"{path}: hosts[2]: host 10.0.1.1 is listed twice (also hosts[0])"
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(InvalidArgument, match="file is empty; expected a job document"):
        load_job_file(empty)
    dup = tmp_path / "dup.yaml"
    dup.write_text(RING_YAML + "pattern: all-to-all\n")
    with pytest.raises(InvalidArgument, match="key 'pattern' given twice"):
        load_job_file(dup)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("d", "field", "words"),
    [
        (doc(name="Bad Name"), "name", "not a valid job name"),
        (doc(hosts=None), "hosts", "required"),
        (doc(hosts=[]), "hosts", "at least one host"),
        (doc(hosts=["10.0.1.1", "10.0.2"]), "hosts[1]", "not an IPv4 address"),
        (doc(hosts=["10.0.1.1", "fe80::1"]), "hosts[1]", "IPv6"),
        (doc(hosts=["10.0.1.1", "224.0.0.1"]), "hosts[1]", "not a unicast host"),
        (doc(hosts=["10.0.1.1", 7]), "hosts[1]", "must be a string"),
        (doc(hosts=[*HOSTS[:2], "10.0.1.1"]), "hosts[2]", "listed twice (also hosts[0])"),
        (doc(hosts=["10.0.1.1"]), "hosts", "pattern ring needs at least 2 hosts"),
        (doc(pattern="star"), "pattern", "unknown pattern 'star'"),
        (doc(pattern="pairs"), "pairs", "needs at least one"),
        (doc(pairs=[["10.0.1.1", "10.0.2.1"]]), "pairs", "only used by pattern pairs"),
        (
            doc(pattern="pairs", pairs=[["10.0.1.1", "10.0.9.9"]]),
            "pairs[0][1]",
            "not one of the job's hosts",
        ),
        (
            doc(pattern="pairs", pairs=[["10.0.1.1", "10.0.1.1"]]),
            "pairs[0]",
            "same host",
        ),
        (
            doc(pattern="pairs", pairs=[["10.0.1.1", "10.0.2.1"], ["10.0.1.1", "10.0.2.1"]]),
            "pairs[1]",
            "repeats pairs[0]",
        ),
        (doc(pattern="pairs", pairs=[["10.0.1.1"]]), "pairs[0]", "got 1 entries"),
        (doc(pattern="pairs", pairs=[{"src": "10.0.1.1"}]), "pairs[0].dst", "required"),
        (doc(match=None), "match", "required"),
        (doc(match={"dst_ports": [4791]}), "match.ip_proto", "required"),
        (doc(match={"ip_proto": "sctp"}), "match.ip_proto", "unknown protocol"),
        (doc(match={"ip_proto": 300}), "match.ip_proto", "outside 0-255"),
        (doc(match={"ip_proto": "udp", "dst_ports": [70000]}), "match.dst_ports[0]", "70000"),
        (
            doc(match={"ip_proto": "udp", "dst_ports": ["5000-4000"]}),
            "match.dst_ports[0]",
            "reversed",
        ),
        (doc(match={"ip_proto": 1, "dst_ports": [1]}), "match.dst_ports", "tcp or udp"),
        (doc(match={"ip_proto": "udp", "dscp": [1]}), "match.dscp", "unknown key"),
        (doc(demand_mbps=0), "demand_mbps", "must be above 0"),
        (doc(demand_mbps=-5), "demand_mbps", "must be above 0"),
        (doc(demand_mbps="fast"), "demand_mbps", "must be a number"),
        (doc(demand_mbps=1e9), "demand_mbps", "above"),
        (doc(priority=70000), "priority", "outside 0-65535"),
        (doc(priority=True), "priority", "must be an integer"),
        (doc(ranks=[1]), "ranks", "unknown key"),
        (doc(version=-1), "version", "must be >= 0"),
    ],
)
def test_bad_documents_name_the_field(d: dict[str, object], field: str, words: str) -> None:
    exc = error(d)
    assert exc.field == field, str(exc)
    assert words in exc.reason, str(exc)


def test_unknown_hosts_are_checked_through_the_resolver() -> None:
    known = {"10.0.1.1", "10.0.2.1", "10.0.4.1"}
    exc = error(doc(), known_hosts=known)
    assert (exc.field, exc.reason) == (
        "hosts[2]",
        "unknown host 10.0.3.1: the controller has not learned it",
    )
    job_from_dict(doc(), known_hosts=known | {"10.0.3.1"})  # all known: accepted
    # Without a resolver the host table is not consulted.
    job_from_dict(doc())


def test_match_fields_jobs_do_not_use_are_refused_on_values() -> None:
    job = Job("r", HOSTS, FlowMatch(ip_proto=17, src_ports=(PortRange(1, 2),)))
    with pytest.raises(InvalidArgument) as exc:
        validate_job(job)
    assert exc.value.field == "match.src_ports"


def test_expansion_limit() -> None:
    hosts = tuple(f"10.{i // 250}.{i % 250}.1" for i in range(600))
    job = Job("big", hosts, ROCE, pattern=Pattern.ALL_TO_ALL)
    assert job.pair_count > MAX_JOB_PAIRS
    with pytest.raises(InvalidArgument) as exc:
        validate_job(job)
    assert exc.value.field == "hosts" and "359400 flows" in exc.value.reason
    validate_job(Job("big", hosts, ROCE))  # the same hosts in a ring are fine


def test_store_reads_back_without_todays_rules() -> None:
    text = json.dumps({"name": "r", "hosts": ["10.0.1.1"], "match": {"ip_proto": "udp"}})
    assert job_from_json(text).hosts == ("10.0.1.1",)  # a 1-host ring: shape only
    with pytest.raises(InvalidArgument, match="not JSON"):
        job_from_json("{")


def test_shipped_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "jobs" / "llama-allreduce.yaml"
    job = load_job_file(example)
    assert job.name == "llama-allreduce" and job.pair_count == 4 and job.demand_mbps == 20
