"""Traffic shared by the integration tests: a paced RoCEv2 stream leaf1 -> leaf2.

At 1000 packets per second every lost packet is one millisecond without
traffic, so a loss count reads directly as the length of an outage.
"""

from __future__ import annotations

RATE_PPS = 1000  # 1000 x 1000-byte datagrams = 8 Mbit/s


def roce_stream(fab, tmp_path, seconds: float):
    """host 1 of leaf1 -> host 1 of leaf2, UDP 4791 from port 50000 (the AI policy's)."""
    return fab.start_flow(
        fab.host(1, 1),
        fab.host(2, 1),
        proto="udp",
        port=4791,
        sport=50000,
        rate=8 * RATE_PPS / 1000,
        size=1000,
        duration=seconds,
        workdir=str(tmp_path),
    )
