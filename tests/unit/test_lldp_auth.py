"""Signed LLDP: only this controller's recent probes, for the port they name, verify."""

from __future__ import annotations

import pytest

from controller.fabric.lldp_auth import LldpSigner

DPID, PORT, NOW = 0x1001, 3, 1000.0


def test_a_fresh_probe_verifies_for_its_own_port_only() -> None:
    signer = LldpSigner(b"k" * 32, max_age_s=10.0)
    proof = signer.sign(DPID, PORT, NOW)
    assert signer.verify(DPID, PORT, proof, now=NOW + 0.5)
    assert not signer.verify(DPID, PORT + 1, proof, now=NOW)
    assert not signer.verify(DPID + 1, PORT, proof, now=NOW)


def test_another_controllers_key_does_not_verify() -> None:
    proof = LldpSigner(b"a" * 32).sign(DPID, PORT, NOW)
    assert not LldpSigner(b"b" * 32).verify(DPID, PORT, proof, now=NOW)
    assert not LldpSigner().verify(DPID, PORT, LldpSigner().sign(DPID, PORT, NOW), now=NOW)


@pytest.mark.parametrize(
    ("now", "ok"),
    [(NOW + 10.0, True), (NOW + 10.01, False), (NOW - 1.0, True), (NOW - 1.01, False)],
)
def test_replays_are_bounded_by_age_and_clock_skew(now: float, ok: bool) -> None:
    signer = LldpSigner(b"k" * 32, max_age_s=10.0)
    assert signer.verify(DPID, PORT, signer.sign(DPID, PORT, NOW), now=now) is ok


def test_tampered_or_truncated_proofs_fail() -> None:
    signer = LldpSigner(b"k" * 32)
    proof = signer.sign(DPID, PORT, NOW)
    flipped = proof[:-1] + bytes([proof[-1] ^ 1])
    restamped = LldpSigner(b"k" * 32).sign(DPID, PORT, NOW + 1)[:8] + proof[8:]
    for bad in (flipped, restamped, proof[:-1], proof + b"\0", b""):
        assert not signer.verify(DPID, PORT, bad, now=NOW + 1)


def test_two_controllers_with_one_key_and_different_clocks_check_each_others_probes() -> None:
    # Each controller's own clock (monotonic, started anywhere) plus its offset is
    # the same wall-clock time: probes of one are fresh to the other.
    leader = LldpSigner(b"s" * 32, clock_offset=1_000_000.0)
    standby = LldpSigner(b"s" * 32, clock_offset=1_000_000.0 - 5_000.0)
    proof = leader.sign(DPID, PORT, NOW)
    assert standby.verify(DPID, PORT, proof, now=NOW + 5_000.0 + 0.2)
    assert not standby.verify(DPID, PORT, proof, now=NOW + 0.2)  # offsets disagree: stale
    other_key = LldpSigner(b"t" * 32, clock_offset=1_000_000.0 - 5_000.0)
    assert not other_key.verify(DPID, PORT, proof, now=NOW + 5_000.0 + 0.2)
