"""A standby's API relays writes to the leader byte for byte, and answers reads itself."""

from __future__ import annotations

import grpc
from apilab import ApiLab, running_server, weighted_policy
from test_api_service import bad_request_fields, rpc_error

from controller.api.client import FabricClient
from controller.api.forward import LeaderForwarder
from controller.api.server import SERVICE_NAME, ApiServerConfig, start_api_server


def test_writes_to_a_standby_land_on_the_leader_with_its_exact_answer() -> None:
    leader, standby = ApiLab(), ApiLab()
    with running_server(leader.facade) as lead:
        address = {"leader": lead.address}
        caught_up: list[float] = []
        forwarder = LeaderForwarder(
            service=SERVICE_NAME,
            is_leader=lambda: False,
            leader_address=lambda: address["leader"],
            after_write=caught_up.append,
        )
        server = start_api_server(
            standby.facade, ApiServerConfig(listen="127.0.0.1:0"), forwarder=forwarder
        )
        try:
            with FabricClient(server.address, timeout=5) as client:
                resp = client.apply_policy(weighted_policy())
                assert resp.created
                assert (
                    "roce-weighted" in leader.policies and "roce-weighted" not in standby.policies
                )
                assert "apply_policy" not in standby.calls  # relayed before its servicer
                # The standby caught up with the store before answering, within the deadline.
                assert len(caught_up) == 1 and 0 < caught_up[0] <= 2.0
                # The leader's refusal comes back as it was given: code, message, field.
                bad = weighted_policy().__class__(
                    **{**weighted_policy().__dict__, "name": "x", "priority": 70000}
                )
                err = rpc_error(lambda: client.apply_policy(bad))
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert bad_request_fields(err)[0][0] == "policy.priority"
                assert len(caught_up) == 1  # nothing was written: nothing to catch up on
                # Reads are the standby's own.
                assert [p.name for p in client.list_policies()] == []
                address["leader"] = None
                err = rpc_error(lambda: client.drain_link("leaf1-spine1"))
                assert err.code() == grpc.StatusCode.UNAVAILABLE and "no leader" in err.details()
        finally:
            server.stop(grace=0)
            forwarder.close()


def test_a_leader_serves_its_own_writes() -> None:
    leading = True
    lab = ApiLab()
    forwarder = LeaderForwarder(
        service=SERVICE_NAME, is_leader=lambda: leading, leader_address=lambda: "127.0.0.1:1"
    )
    server = start_api_server(
        lab.facade, ApiServerConfig(listen="127.0.0.1:0"), forwarder=forwarder
    )
    try:
        with FabricClient(server.address, timeout=5) as client:
            assert client.apply_policy(weighted_policy()).created
        assert "apply_policy" in lab.calls
    finally:
        server.stop(grace=0)
