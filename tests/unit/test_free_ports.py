"""Ports the tests hand to the processes they start: distinct within one ask.

Two listeners of one fabricd given the same port fail late (the OpenFlow side
only logs it); a CI run lost a test to a gRPC and an OpenFlow port drawn equal.
"""

from __future__ import annotations

import socket

from controller.devtools.process import _listen_ports, free_ports


def test_ports_asked_for_together_are_distinct_and_free() -> None:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        ports = free_ports(40, kind=kind)
        assert len(set(ports)) == 40
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", ports[0]))  # released again


def test_fabricd_listen_ports_differ_from_a_given_openflow_port() -> None:
    for _ in range(20):
        given = free_ports(1)[0]
        of, grpc, metrics = _listen_ports(given)
        assert of == given and len({of, grpc, metrics}) == 3
    assert len(set(_listen_ports(None))) == 3
