"""What an election backend must do, as tests run on the fake and on real etcd.

Subclass :class:`ElectionBackendContract` and provide two fixtures:
``backends`` (a function returning a new backend; all of them talk to the
same etcd) and ``wait`` (a function letting that many seconds pass: the fake
clock's ``advance``, or ``time.sleep`` for real etcd).
"""

from __future__ import annotations

from collections.abc import Callable

from controller.cluster.election import ElectionBackend

Backends = Callable[[], ElectionBackend]
Wait = Callable[[float], None]


class ElectionBackendContract:
    def test_a_granted_lease_is_kept_alive(self, backends: Backends, wait: Wait) -> None:
        backend = backends()
        lease, ttl = backend.grant(2)
        assert ttl >= 2
        for _ in range(4):
            wait(1.0)
            assert backend.keepalive(lease) == ttl
        backend.resign(lease)
        assert backend.keepalive(lease) == 0

    def test_the_first_campaign_wins_and_others_see_it(self, backends: Backends) -> None:
        a, b = backends(), backends()
        lease_a, _ = a.grant(2)
        lease_b, _ = b.grant(2)
        assert a.leader() is None
        won = a.campaign("a", lease_a)
        assert (won.node_id, won.lease) == ("a", lease_a) and won.generation > 0
        assert b.campaign("b", lease_b) == won
        assert b.leader() == won
        a.resign(lease_a)
        b.resign(lease_b)

    def test_resigning_hands_over_with_a_greater_generation(self, backends: Backends) -> None:
        a, b = backends(), backends()
        lease_a, _ = a.grant(2)
        lease_b, _ = b.grant(2)
        first = a.campaign("a", lease_a)
        a.resign(lease_a)
        assert b.leader() is None
        second = b.campaign("b", lease_b)
        assert second.node_id == "b" and second.generation > first.generation
        b.resign(lease_b)

    def test_an_unrefreshed_lease_expires_with_its_keys(
        self, backends: Backends, wait: Wait
    ) -> None:
        a, b = backends(), backends()
        lease_a, ttl = a.grant(2)
        a.campaign("a", lease_a)
        assert a.register("node-a", "i1", lease_a) == "i1"
        wait(ttl + 1.2)  # TTL plus etcd's expiry check period, with room
        assert a.keepalive(lease_a) == 0
        assert b.leader() is None
        lease_b, _ = b.grant(2)
        assert b.register("node-a", "i2", lease_b) == "i2"
        b.resign(lease_b)

    def test_a_node_id_belongs_to_one_instance(self, backends: Backends) -> None:
        a, b = backends(), backends()
        lease_a, _ = a.grant(2)
        lease_b, _ = b.grant(2)
        assert a.register("n1", "first", lease_a) == "first"
        assert a.register("n1", "first", lease_a) == "first"  # idempotent
        assert b.register("n1", "second", lease_b) == "first"
        a.resign(lease_a)
        assert b.register("n1", "second", lease_b) == "second"
        b.resign(lease_b)
