"""Build, run and tear down an emulated leaf-spine fabric (shared by tests, demo, benchmarks).

What every experiment on this machine needs, done in one place:
- Open vSwitch with the userspace (netdev) datapath, OpenFlow 1.3, fail-secure,
  connected to a remote controller at a given loopback port;
- checksum offload off on every host interface (else TCP hangs and UDP is
  dropped silently on the userspace datapath) and IPv6 off on hosts (no
  router-solicitation noise);
- a quick reconnect (max_backoff 1 s) so controller restarts are cheap;
- teardown of exactly what was created (``net.stop()`` and the pids it
  spawned), never a cleanup that ends processes or bridges by broad name.

Imports only Mininet and the standard library.
"""

import contextlib
import logging
import os
import re
import signal
import subprocess
import time
from functools import partial

from mininet.link import Link, TCLink
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController

from mininet_topos.leafspine import LeafSpineTopo, host_ip, host_name, leaf_name, spine_name

# Importing mininet.log makes every logger created afterwards a MininetLogger
# (with its own level and console handler), silently hiding INFO records of
# unrelated modules. Mininet keeps its own logger; everyone else gets plain ones.
logging.setLoggerClass(logging.Logger)

__all__ = ["LeafSpineFabric", "FLOWGEN", "clear_stale_bridges", "clear_stale_ports", "list_bridges"]

FLOWGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flowgen.py")

# Every bridge a fabric creates names its owner: ``<pid>:<process start time>``.
# Open vSwitch keeps bridges in its database across its own restarts, so a fabric
# whose process died (killed, machine stopped) leaves bridges behind that would
# block every later fabric; those, and only those, are removed.
OWNER_KEY = "ai-fabric-owner"


def _process_start(pid):
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def owner_tag(pid=None):
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_process_start(pid)}"


def _vsctl(*args):
    return subprocess.run(
        ["ovs-vsctl", "--timeout=5", *args], capture_output=True, text=True, check=False
    ).stdout.strip()


def list_bridges():
    return _vsctl("list-br").split()


def is_stale(bridge):
    """Left by a fabric whose process is gone: its owner tag names a dead process,
    or (a bridge from before the tag) it has no owner and no connected controller."""
    tag = _vsctl("--if-exists", "get", "bridge", bridge, f"external_ids:{OWNER_KEY}").strip('"')
    if tag:
        pid, _, start = tag.partition(":")
        return _process_start(pid) != start
    uuids = _vsctl("get", "bridge", bridge, "controller").strip("[]").split(",")
    for uuid in filter(None, (u.strip() for u in uuids)):
        if _vsctl("get", "controller", uuid, "is_connected") == "true":
            return False
    return True


def clear_stale_ports(switches):
    """Delete the interfaces ``<switch>-eth<N>`` of the given switches left in this
    namespace (Mininet does not replace an existing interface; it fails). Only call
    it for switch names no live fabric owns: they are the names a fabric creates."""
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    removed = []
    for line in out.splitlines():
        fields = line.split(":")
        if len(fields) < 2:
            continue
        name = fields[1].strip().split("@")[0]
        switch, sep, number = name.rpartition("-eth")
        if sep and switch in switches and number.isdigit():
            done = subprocess.run(["ip", "link", "del", name], capture_output=True)
            if done.returncode == 0:
                removed.append(name)
    return removed


def clear_stale_bridges(names=None):
    """Delete the stale bridges among ``names`` (all bridges if None); return their names."""
    present = list_bridges()
    removed = []
    for bridge in present if names is None else [n for n in names if n in present]:
        if is_stale(bridge):
            _vsctl("--if-exists", "del-br", bridge)
            removed.append(bridge)
    if removed:
        logging.getLogger(__name__).warning(
            "removed bridges left by a fabric whose process is gone: %s", " ".join(removed)
        )
    return removed


class _QuietRemote(RemoteController):
    """A remote controller Mininet does not probe: its probe pipes the controller's
    binary OpenFlow hello through telnet and fails to decode it (when telnet is
    installed), and opens a stray connection. Switches connecting is checked instead."""

    def checkListening(self):
        return None


class LeafSpineFabric:
    """A running leaf-spine. Use as a context manager so it is always torn down."""

    def __init__(
        self,
        spines=2,
        leaves=4,
        hosts_per_leaf=2,
        *,
        controller_port=None,
        controller_ports=None,
        controller_ip="127.0.0.1",
        bw=None,
        host_bw=None,
        log_level="warning",
    ):
        """``controller_ports``: several controllers (a cluster): every bridge connects to
        each, and notices a dead one within about 2 s (probe and back-off at 1 s)."""
        self.spines, self.leaves, self.hosts_per_leaf = spines, leaves, hosts_per_leaf
        ports = list(controller_ports or ([controller_port] if controller_port else []))
        if not ports:
            raise ValueError("give controller_port or controller_ports")
        self.controller_ports, self.controller_ip = ports, controller_ip
        self.controller_port = ports[0]
        self.bw, self.host_bw = bw, host_bw
        self.log_level = log_level
        self.net = None
        self._pids = []  # background processes started in hosts, killed on stop

    # ------------------------------------------------------------ lifecycle
    def start(self, *, connect_timeout=30.0):
        setLogLevel(self.log_level)
        self._refuse_name_clash()
        topo = LeafSpineTopo(
            spines=self.spines,
            leaves=self.leaves,
            hosts_per_leaf=self.hosts_per_leaf,
            bw=self.bw,
            host_bw=self.host_bw,
        )
        switch = partial(OVSSwitch, datapath="user", protocols="OpenFlow13", failMode="secure")
        self.net = Mininet(
            topo=topo,
            switch=switch,
            link=TCLink if (self.bw or self.host_bw) else Link,
            controller=None,
            build=False,
            autoSetMacs=False,
        )
        for k, port in enumerate(self.controller_ports):
            self.net.addController(_QuietRemote(f"c{k}", ip=self.controller_ip, port=port))
        try:
            self.net.build()
            self.net.start()
            for host in self.net.hosts:
                host.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
                host.cmd("sysctl -qw net.ipv6.conf.default.disable_ipv6=1")
                for intf in host.intfList():
                    host.cmd(f"ethtool -K {intf.name} tx off rx off")
            tag = owner_tag()
            for sw in self.net.switches:
                sw.vsctl(f"set bridge {sw.name} external_ids:{OWNER_KEY}={tag}")
                for uuid in self._controller_records(sw):
                    sw.vsctl(f"set controller {uuid} max_backoff=1000 inactivity_probe=1000")
            if connect_timeout and not self.wait_connected(connect_timeout):
                raise RuntimeError(
                    f"switches did not connect to a controller at {self.controller_ip}:"
                    f"{self.controller_ports} within {connect_timeout:.0f} s"
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _refuse_name_clash(self):
        """Never take over (or later delete) bridges another live fabric on this machine
        owns; bridges a dead fabric left behind are removed first."""
        names = {spine_name(k) for k in range(1, self.spines + 1)}
        names |= {leaf_name(j) for j in range(1, self.leaves + 1)}
        present = sorted(names & set(list_bridges()))
        taken = sorted(set(present) - set(clear_stale_bridges(present)))
        if taken:
            raise RuntimeError(
                f"Open vSwitch already has bridge(s) {', '.join(taken)}: another fabric is "
                "running on this machine; stop it first"
            )
        clear_stale_ports(names)

    def wait_connected(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.is_connected(sw.name) for sw in self.net.switches):
                return True
            time.sleep(0.2)
        return False

    @staticmethod
    def _controller_records(sw):
        """The uuids of the bridge's Controller records (one per controller)."""
        out = sw.vsctl(f"get bridge {sw.name} controller").strip()
        return [u.strip() for u in out.strip("[]").split(",") if u.strip()]

    def is_connected(self, switch):
        """Connected to at least one controller (each controller, if ``all``)."""
        return bool(self.connected_controllers(switch))

    def connected_controllers(self, switch):
        """``{target: role}`` of the controllers ``switch`` is connected to now."""
        sw = self.net.get(switch)
        found = {}
        for uuid in self._controller_records(sw):
            fields = sw.vsctl(f"--columns=target,is_connected,role list controller {uuid}")
            values = dict(
                (k.strip(), v.strip().strip('"'))
                for k, _, v in (line.partition(":") for line in fields.splitlines())
                if k.strip()
            )
            if values.get("is_connected") == "true":
                found[values.get("target", uuid)] = values.get("role", "")
        return found

    def stop(self):
        for pid in self._pids:
            self.kill(pid)
        self._pids = []
        if self.net is not None:
            net, self.net = self.net, None
            net.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -------------------------------------------------------------- lookups
    def host(self, leaf, i):
        return self.net.get(host_name(leaf, i))

    def hosts(self):
        return [
            self.host(j, i)
            for j in range(1, self.leaves + 1)
            for i in range(1, self.hosts_per_leaf + 1)
        ]

    def leaf(self, j):
        return self.net.get(leaf_name(j))

    def spine(self, k):
        return self.net.get(spine_name(k))

    @staticmethod
    def ip(leaf, i):
        return host_ip(leaf, i)

    def uplink_port(self, leaf, spine):
        """Port number on ``leaf<leaf>`` that faces ``spine<spine>``."""
        return self.port_between(leaf_name(leaf), spine_name(spine))

    def port_between(self, a, b):
        node_a, node_b = self.net.get(a), self.net.get(b)
        for intf in node_a.intfList():
            link = intf.link
            if link and (link.intf1.node is node_b or link.intf2.node is node_b):
                return node_a.ports[intf]
        raise KeyError(f"no link between {a} and {b}")

    def intf_between(self, a, b):
        """Name of the interface of node ``a`` on its link to node ``b`` (e.g. to sniff on)."""
        node_a = self.net.get(a)
        port = self.port_between(a, b)
        return next(intf.name for intf, p in node_a.ports.items() if p == port)

    def set_link(self, a, b, up):
        self.net.configLinkStatus(a, b, "up" if up else "down")

    # ------------------------------------------------------------- counters
    def port_counters(self, switch):
        """{port_no: (rx_packets, tx_packets, rx_bytes, tx_bytes)} read with ovs-ofctl."""
        out = self.net.get(switch).cmd(f"ovs-ofctl --no-names -O OpenFlow13 dump-ports {switch}")
        counters = {}
        current = None
        for line in out.splitlines():
            m = re.match(r"\s*port\s+(\w+):\s*rx pkts=(\d+), bytes=(\d+)", line)
            if m:
                current = m.group(1)
                rx_pkts, rx_bytes = int(m.group(2)), int(m.group(3))
                counters[current] = [rx_pkts, 0, rx_bytes, 0]
                continue
            m = re.match(r"\s*tx pkts=(\d+), bytes=(\d+)", line)
            if m and current is not None:
                counters[current][1] = int(m.group(1))
                counters[current][3] = int(m.group(2))
        return {int(k): tuple(v) for k, v in counters.items() if k.isdigit()}

    def dump_flows(self, switch):
        return self.net.get(switch).cmd(f"ovs-ofctl -O OpenFlow13 dump-flows {switch}")

    def dump_groups(self, switch):
        return self.net.get(switch).cmd(f"ovs-ofctl -O OpenFlow13 dump-groups {switch}")

    # -------------------------------------------------------------- traffic
    def spawn(self, host, command, *, log="/dev/null"):
        """Run ``command`` in ``host`` in the background; returns its pid (killed on stop)."""
        out = host.cmd(f"{command} >{log} 2>&1 & echo $!")
        pid = int(out.strip().split()[-1])
        self._pids.append(pid)
        return pid

    def start_sink(self, dst, *, proto, port, duration, workdir):
        """A flowgen sink on ``dst``; returns a handle (``pid``, ``report`` path)."""
        report = os.path.join(workdir, f"sink-{dst.name}-{proto}-{port}.json")
        pid = self.spawn(
            dst,
            f"python3 {FLOWGEN} recv --proto {proto} --port {port} "
            f"--duration {duration} --report {report}",
        )
        return {"pid": pid, "report": report}

    def start_sender(
        self, src, dst, *, proto, port, duration, workdir, sport=0, rate=0.0, size=1200, tag=0
    ):
        report = os.path.join(workdir, f"send-{src.name}-{proto}-{port}-{sport}-{tag}.json")
        pid = self.spawn(
            src,
            f"python3 {FLOWGEN} send --proto {proto} --dst {dst.IP()} --port {port} "
            f"--sport {sport} --rate {rate} --size {size} --duration {duration} --tag {tag} "
            f"--report {report}",
        )
        return {"pid": pid, "report": report}

    def start_flow(
        self, src, dst, *, proto, port, duration, workdir, sport=0, rate=0.0, size=1200, tag=0
    ):
        """One flow src -> dst with flowgen (sink first); a handle for :meth:`finish_flow`."""
        sink = self.start_sink(dst, proto=proto, port=port, duration=duration + 3, workdir=workdir)
        time.sleep(0.3)
        sender = self.start_sender(
            src,
            dst,
            proto=proto,
            port=port,
            duration=duration,
            workdir=workdir,
            sport=sport,
            rate=rate,
            size=size,
            tag=tag,
        )
        return {"sender": sender, "sink": sink}

    def finish(self, handle, timeout=60.0):
        """Wait for a sink or sender handle and return its JSON report."""
        import json

        if not self.wait_pid(handle["pid"], timeout):
            self.kill(handle["pid"])
            raise RuntimeError(f"flowgen {handle['pid']} did not finish in {timeout:.0f} s")
        with open(handle["report"]) as fh:
            return json.load(fh)

    def finish_flow(self, handle, timeout=60.0):
        """Wait for both ends; returns (sender report, sink report) as dicts."""
        return self.finish(handle["sender"], timeout), self.finish(handle["sink"], timeout)

    def kill(self, pid, sig=signal.SIGTERM):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def wait_pid(self, pid, timeout=30.0):
        """Wait until process ``pid`` (started with :meth:`spawn`) has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = 0
            if done:
                return True
            if _is_zombie(pid):
                return True
            time.sleep(0.1)
        return False

    def ping(self, src, dst_ip, *, count=1, timeout=1):
        """Packets received out of ``count`` pinging ``dst_ip`` from host ``src``."""
        out = src.cmd(f"ping -c {count} -W {timeout} -i 0.2 -q {dst_ip}")
        m = re.search(r"(\d+) received", out)
        return int(m.group(1)) if m else 0

    def ping_mesh(self, *, count=1, timeout=1):
        """Every host pings every other host; returns the list of failing (src, dst) pairs."""
        failed = []
        for src in self.hosts():
            for dst in self.hosts():
                if src is dst:
                    continue
                if self.ping(src, dst.IP(), count=count, timeout=timeout) < count:
                    failed.append((src.name, dst.name))
        return failed


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
