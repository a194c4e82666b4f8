"""The benchmarks' raw-socket sniffer on a real interface (loopback; needs root).

The hot-spot benchmark learns the instant it measures from (the background's
first byte) only after the packets crossed, so the sniffer must keep every
match and answer "the first one at or after t", not only the very first.
"""

from __future__ import annotations

import socket
import time

from benchmarks.watch import FirstPacket
from controller.devtools.process import free_ports


def _send(sport: int, dport: int, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", sport))
        for _ in range(count):
            sock.sendto(b"x" * 32, ("127.0.0.1", dport))


def test_keeps_every_match_and_answers_first_after() -> None:
    sport, dport, other = free_ports(3, kind=socket.SOCK_DGRAM)
    sniff = FirstPacket("lo", sport=sport, dport=dport)
    try:
        _send(other, dport, 5)  # another flow to the same port: not a match
        assert sniff.wait(timeout=0.3) is None
        _send(sport, dport, 3)
        first = sniff.wait(timeout=5.0)
        assert first is not None
        time.sleep(0.2)
        middle = time.time()
        time.sleep(0.05)
        _send(sport, dport, 2)
        deadline = time.time() + 5.0
        while sniff.first_after(middle) is None and time.time() < deadline:
            time.sleep(0.02)
    finally:
        sniff.close()
    later = sniff.first_after(middle)
    assert later is not None and later >= middle > first
    assert sniff.seen_at == first
    # Loopback shows each datagram going out and coming in.
    assert sniff.matches >= 5 and sniff.matches_before(middle) >= 3
    assert sniff.matches - sniff.matches_before(middle) >= 2
    assert sniff.frames >= sniff.matches + 5
    assert sniff.diagnostics()["error"] is None and sniff.diagnostics()["iface"] == "lo"
    assert sniff.first_after(time.time() + 10) is None
