"""The job RPCs over a real socket: placement views, versions, errors naming fields, paging."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import grpc
import pytest
from apilab import ApiLab, pinned_policy
from fabric.v1 import fabric_pb2 as pb
from test_api_service import bad_request_fields, rpc_error

from controller.api import convert_jobs
from controller.api.client import FabricClient
from controller.api.server import ApiServer
from controller.jobs.model import Job, Pattern
from controller.policy.model import FlowMatch, PortRange

NET_1 = ipaddress.IPv4Network("10.0.0.1/32")
HOSTS = ["10.0.0.1", "10.0.0.3", "10.0.0.2", "10.0.0.4"]


def roce() -> Any:
    return pb.FlowMatch(ip_proto=17, dst_ports=[pb.PortRange(lo=4791, hi=4791)])


def ring(name: str = "ring", **kw: Any) -> Any:
    fields: dict[str, Any] = {"name": name, "hosts": HOSTS, "match": roce()}
    fields.update(kw)
    return pb.Job(**fields)


def violation(err: grpc.RpcError) -> tuple[str, str]:
    """The first field violation of an INVALID_ARGUMENT error."""
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    return bad_request_fields(err)[0]


# --------------------------------------------------------------------------- lifecycle


def test_apply_places_every_pair_jointly(client: FabricClient, api: ApiLab) -> None:
    resp = client.apply_job(ring())
    assert resp.created and not resp.dry_run and resp.job.version >= 1
    assert (resp.pairs_total, resp.pairs_placed, resp.pairs_moved) == (4, 4, 0)
    assert resp.job.priority == 1000 and resp.job.pattern == pb.JOB_PATTERN_RING
    # Two flows each way between the leaves, two spines: one flow per link.
    assert resp.max_utilization == pytest.approx(1.0)
    got = client.get_job("ring")
    assert [(p.src, p.dst) for p in got.pairs] == [
        ("10.0.0.1", "10.0.0.3"),
        ("10.0.0.3", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.4"),
        ("10.0.0.4", "10.0.0.1"),
    ]
    assert all(p.placed and p.demand_bps == 10e9 for p in got.pairs)
    up = [tuple(p.path) for p in got.pairs if p.path[0] == "leaf1"]
    assert sorted(path[1] for path in up) == ["spine1", "spine2"]
    assert all(path[0] == "leaf1" and path[2] == "leaf2" for path in up)
    assert api.jobs["ring"].hosts == tuple(HOSTS)


def test_dry_run_changes_nothing(client: FabricClient, api: ApiLab) -> None:
    resp = client.apply_job(ring(demand_mbps=2500.0), dry_run=True)
    assert resp.dry_run and resp.created and resp.pairs_placed == 4
    assert resp.job.demand_mbps == 2500.0
    assert resp.max_utilization == pytest.approx(0.25)
    assert api.jobs == {} and client.list_jobs() == []


def test_versions_create_only_and_compare_and_set(client: FabricClient) -> None:
    first = client.apply_job(ring(), expected_version=0).job.version
    err = rpc_error(lambda: client.apply_job(ring(), expected_version=0))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.details() == "job 'ring' already exists"
    err = rpc_error(lambda: client.apply_job(ring(), expected_version=first + 100))
    assert err.code() == grpc.StatusCode.ABORTED
    assert err.details() == f"job 'ring' is at version {first}, not the expected {first + 100}"
    replaced = client.apply_job(ring(pattern=pb.JOB_PATTERN_ALL_TO_ALL), expected_version=first)
    second = replaced.job.version
    assert not replaced.created and second > first and replaced.pairs_total == 12
    assert [j.name for j in client.list_jobs()] == ["ring"]
    err = rpc_error(lambda: client.delete_job("ring", expected_version=first))
    assert err.code() == grpc.StatusCode.ABORTED
    assert client.delete_job("ring", expected_version=second) == second
    assert rpc_error(lambda: client.get_job("ring")).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(lambda: client.delete_job("ring")).code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(lambda: client.delete_job("ring", expected_version=0))
    assert violation(err)[0] == "expected_version"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("job", "field", "words"),
    [
        (ring(hosts=[*HOSTS[:2], "10.0.0.1"]), "job.hosts[2]", "listed twice"),
        (ring(hosts=["10.0.0.1", "10.0.9.9"]), "job.hosts[1]", "unknown host 10.0.9.9"),
        (ring(hosts=["10.0.0.1", "10.0.2"]), "job.hosts[1]", "not an IPv4 address"),
        (ring(hosts=[]), "job.hosts", "at least one host"),
        (ring(name="Bad Name"), "job.name", "not a valid job name"),
        (
            ring(pattern=pb.JOB_PATTERN_PAIRS, pairs=[pb.HostPair(src="10.0.0.1", dst="10.0.7.7")]),
            "job.pairs[0].dst",
            "not one of the job's hosts",
        ),
        (
            ring(pattern=pb.JOB_PATTERN_PAIRS, pairs=[pb.HostPair(src="10.0.0.1", dst="10.0.0.1")]),
            "job.pairs[0]",
            "same host",
        ),
        (ring(pattern=pb.JOB_PATTERN_PAIRS), "job.pairs", "at least one"),
        (ring(pattern=9), "job.pattern", "unknown pattern number 9"),
        (pb.Job(name="x", hosts=HOSTS), "job.match", "required"),
        (
            ring(match=pb.FlowMatch(dst_ports=[pb.PortRange(lo=1, hi=1)])),
            "job.match.ip_proto",
            "required",
        ),
        (ring(match=pb.FlowMatch(ip_proto=17, dscp=[3])), "job.match.dscp", "not used by jobs"),
        (
            ring(match=pb.FlowMatch(ip_proto=17, dst_ports=[pb.PortRange(lo=70000, hi=70000)])),
            "job.match.dst_ports[0].lo",
            "0..65535",
        ),
        (
            ring(match=pb.FlowMatch(ip_proto=17, dst_ports=[pb.PortRange(lo=9, hi=5)])),
            "job.match.dst_ports[0]",
            "reversed",
        ),
        (ring(demand_mbps=0.0), "job.demand_mbps", "above 0"),
        (ring(priority=-1), "job.priority", "outside 0-65535"),
        (ring(description="x" * 300), "job.description", "at most 256 characters"),
        (ring(hosts=["10.0.0.1", "1" * 70]), "job.hosts[1]", "at most 64 characters"),
    ],
)
def test_bad_jobs_name_the_field(client: FabricClient, job: Any, field: str, words: str) -> None:
    field_got, description = violation(rpc_error(lambda: client.apply_job(job)))
    assert field_got == field, description
    assert words in description


def test_job_host_limits_replace_the_generic_list_limit(client: FabricClient) -> None:
    # 100 hosts pass the request limits (generic lists stop at 64) and reach
    # validation, which finds the first host this fabric does not have.
    hosts = [*HOSTS, *(f"10.1.{i // 200}.{i % 200 + 1}" for i in range(96))]
    field, description = violation(rpc_error(lambda: client.apply_job(ring(hosts=hosts))))
    assert (field, description) == (
        "job.hosts[4]",
        "unknown host 10.1.0.1: the controller has not learned it",
    )
    many = [f"10.{i >> 14}.{(i >> 7) & 127}.{(i & 127) + 1}" for i in range(16385)]
    field, description = violation(rpc_error(lambda: client.apply_job(ring(hosts=many))))
    assert field == "job.hosts" and "at most 16384" in description


# --------------------------------------------------------------------------- reads


def test_get_job_pages_pairs_in_rank_order(client: FabricClient, server: ApiServer) -> None:
    client.apply_job(ring(pattern=pb.JOB_PATTERN_ALL_TO_ALL))
    stub = client._stub
    first = stub.GetJob(pb.GetJobRequest(name="ring", page_size=5), timeout=5)
    assert len(first.pairs) == 5 and first.pairs_total == 12 and first.next_page_token
    second = stub.GetJob(
        pb.GetJobRequest(name="ring", page_size=5, page_token=first.next_page_token), timeout=5
    )
    assert len(second.pairs) == 5
    joined = client.get_job("ring", page_size=5)
    expected = Job("r", tuple(HOSTS), FlowMatch(ip_proto=17), pattern=Pattern.ALL_TO_ALL)
    assert [(p.src, p.dst) for p in joined.pairs] == list(expected.flow_pairs())
    assert joined.next_page_token == ""
    # The job changes between pages: the old token is refused, not misread.
    client.apply_job(ring(pattern=pb.JOB_PATTERN_ALL_TO_ALL, demand_mbps=10.0))
    err = rpc_error(
        lambda: stub.GetJob(
            pb.GetJobRequest(name="ring", page_size=5, page_token=first.next_page_token), timeout=5
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    err = rpc_error(lambda: stub.GetJob(pb.GetJobRequest(name="ring", page_token="zz"), timeout=5))
    assert violation(err)[0] == "page_token"
    err = rpc_error(lambda: stub.GetJob(pb.GetJobRequest(name="ring", page_size=20000), timeout=5))
    assert violation(err)[0] == "page_size"


def test_get_job_reports_conflicts_with_pinned_policies(client: FabricClient, api: ApiLab) -> None:
    client.apply_job(ring(hosts=["10.0.0.1", "10.0.0.3"]))
    policy = dataclasses.replace(
        pinned_policy(),  # udp 4791, now from 10.0.0.1 only; priority 200
        match=(dataclasses.replace(pinned_policy().match[0], src_hosts=(NET_1,), dscp=()),),
    )
    api.real.apply_policy(policy)
    got = client.get_job("ring")
    (conflict,) = got.conflicts
    assert conflict.policy == "nccl-pinned" and conflict.policy_priority == 200
    assert conflict.job_wins and conflict.pairs == 1  # only 10.0.1.1 -> 10.0.2.1 is covered
    client.apply_job(ring(hosts=["10.0.0.1", "10.0.0.3"], priority=100))
    assert not client.get_job("ring").conflicts[0].job_wins


# --------------------------------------------------------------------------- conversion


def test_conversion_round_trip_and_field_names() -> None:
    job = Job(
        name="p",
        hosts=tuple(HOSTS),
        match=FlowMatch(ip_proto=6, dst_ports=(PortRange(29500, 29599),)),
        pattern=Pattern.PAIRS,
        pairs=(("10.0.0.1", "10.0.0.4"),),
        demand_mbps=12.5,
        priority=7,
        description="d",
        version=3,
    )
    msg = convert_jobs.job_to_proto(job)
    assert msg.version == 3 and msg.demand_mbps == 12.5
    back = convert_jobs.job_from_proto(msg)
    assert back == Job(**{**job.__dict__, "version": 0})  # version is output only
    plain = convert_jobs.job_from_proto(pb.Job(name="r", hosts=HOSTS, match=roce()))
    assert plain.demand_mbps is None and plain.priority == 1000 and plain.pattern is Pattern.RING
    assert convert_jobs.proto_field("pairs[3][1]") == "pairs[3].dst"
    assert convert_jobs.proto_field("pairs[0][0]") == "pairs[0].src"
    assert convert_jobs.proto_field("hosts[2]") == "hosts[2]"


def test_other_jobs_reservations_are_counted(client: FabricClient) -> None:
    # Job a takes half of every leaf1 -> leaf2 path; job b's flow then sees it.
    client.apply_job(ring("a", hosts=["10.0.0.1", "10.0.0.3"], demand_mbps=5000.0))
    resp = client.apply_job(
        ring("b", hosts=["10.0.0.2", "10.0.0.4"], demand_mbps=5000.0), dry_run=True
    )
    # One flow of a per direction on one spine: b's flows take the other spine.
    assert resp.max_utilization == pytest.approx(0.5)
    resp = client.apply_job(ring("c", hosts=["10.0.0.2", "10.0.0.4"], demand_mbps=10000.0))
    assert resp.max_utilization == pytest.approx(1.0)
    other_port = pb.FlowMatch(ip_proto=17, dst_ports=[pb.PortRange(lo=4792, hi=4792)])
    both = client.apply_job(
        ring("d", hosts=["10.0.0.2", "10.0.0.4"], demand_mbps=5000.0, match=other_port),
        dry_run=True,
    )
    assert both.max_utilization == pytest.approx(1.0)  # a at 0.5 + d at 0.5 on one spine
    # The same pairs with the same transport would need the same rules: refused.
    err = rpc_error(
        lambda: client.apply_job(ring("e", hosts=["10.0.0.2", "10.0.0.4"]), dry_run=True)
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "c already carries it" in err.details()
