"""Leaf-spine fabrics for Mininet.

Works with stock Mininet::

    mn --custom mininet_topos/leafspine.py --topo leafspine,2,4,2 \\
       --switch ovs,datapath=user,protocols=OpenFlow13 --controller remote,port=6653

Naming (it tells what is where; the controller itself relies only on what it
discovers):

- spine k (1-based): switch ``spine<k>``, dpid ``0x10000 + k``
- leaf j: switch ``leaf<j>``, dpid ``0x20000 + j``
- host i on leaf j: ``l<j>h<i>``, IP ``10.0.<j>.<i>/16``, MAC ``00:00:00:00:<jj>:<ii>``

Every leaf connects to every spine. ``bw`` shapes leaf-spine links and
``host_bw`` host-leaf links (Mbit/s, via TCLink/HTB); ``None`` leaves a link
unshaped. Imports only Mininet.
"""

from mininet.link import TCLink
from mininet.topo import Topo

SPINE_DPID_BASE = 0x10000
LEAF_DPID_BASE = 0x20000


def spine_name(k):
    return f"spine{k}"


def leaf_name(j):
    return f"leaf{j}"


def host_name(leaf, i):
    return f"l{leaf}h{i}"


def host_ip(leaf, i):
    return f"10.0.{leaf}.{i}"


def host_mac(leaf, i):
    return f"00:00:00:00:{leaf:02x}:{i:02x}"


class LeafSpineTopo(Topo):
    """``spines`` x ``leaves`` leaf-spine with ``hosts_per_leaf`` hosts on every leaf."""

    def build(self, spines=2, leaves=4, hosts_per_leaf=2, bw=None, host_bw=None):
        spines, leaves, hosts_per_leaf = int(spines), int(leaves), int(hosts_per_leaf)
        if not (1 <= spines <= 64 and 1 <= leaves <= 250 and 0 <= hosts_per_leaf <= 250):
            raise ValueError(
                f"leafspine: need 1-64 spines, 1-250 leaves, 0-250 hosts per leaf "
                f"(got {spines}, {leaves}, {hosts_per_leaf})"
            )
        self.spine_count, self.leaf_count, self.hosts_per_leaf = spines, leaves, hosts_per_leaf
        spine_nodes = [
            self.addSwitch(spine_name(k), dpid=f"{SPINE_DPID_BASE + k:016x}")
            for k in range(1, spines + 1)
        ]
        for j in range(1, leaves + 1):
            leaf = self.addSwitch(leaf_name(j), dpid=f"{LEAF_DPID_BASE + j:016x}")
            for i in range(1, hosts_per_leaf + 1):
                host = self.addHost(host_name(j, i), ip=f"{host_ip(j, i)}/16", mac=host_mac(j, i))
                self.addLink(host, leaf, **_shaping(host_bw))
            for spine in spine_nodes:
                self.addLink(leaf, spine, **_shaping(bw))


def _shaping(bw):
    if bw is None:
        return {}
    return {"cls": TCLink, "bw": float(bw)}


topos = {"leafspine": LeafSpineTopo}
