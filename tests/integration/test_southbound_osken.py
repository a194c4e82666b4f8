"""fabricd on the os-ken southbound: the same shim, the maintained framework."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from controller.api.client import FabricClient
from controller.devtools.process import REPO, wait_discovered, wait_until


def test_os_ken_forwards_on_a_2x2_and_places_an_ai_flow(
    fabricd_factory, fabric_factory, tmp_path
) -> None:
    fd = fabricd_factory("--southbound", "os-ken", "--link-capacity-mbps", "20")
    assert "southbound=os-ken" in fd.log()
    fab = fabric_factory(2, 2, 1, controller_port=fd.of_port, bw=20)
    wait_discovered(fd, switches=4, links=8)
    time.sleep(1.5)
    hosts = [fab.host(j, 1) for j in (1, 2)]
    for src in hosts:
        for dst in hosts:
            if src is not dst:
                assert fab.ping(src, dst.IP(), count=3) >= 2, f"{src} cannot reach {dst}"
    stream = fab.start_flow(
        hosts[0], hosts[1], proto="udp", port=4791, sport=50000, rate=4, size=500,
        duration=4, workdir=str(tmp_path),
    )  # fmt: skip
    with FabricClient(fd.grpc_target) as client:
        flows = wait_until(
            lambda: [f for f in client.list_flows() if f.five_tuple.dst_port == 4791],
            timeout=8,
            what="the AI flow placed",
        )
        assert flows[0].policy == "ai-training" and len(flows[0].path) == 3
    sent, got = fab.finish_flow(stream)
    assert got["packets"] == sent["packets"] and got["lost"] == 0, (sent, got)
    fd.assert_clean_log()


def test_os_ken_missing_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['os_ken'] = None\n"
        "from controller.app.daemon import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script, "--southbound", "os-ken", "--state-dir",
         str(tmp_path / "s"), "--of-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
         "--metrics-listen", "127.0.0.1:0"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    lines = [line for line in res.stderr.splitlines() if "fabricd: error" in line]
    assert lines == [
        "fabricd: error: southbound os-ken is not installed; install it with: pip install os-ken"
    ], res.stderr
