"""Names the fabric does not hold: retriable while discovery runs, final after it.

A policy naming a switch (or a drain naming a link) the engine has not discovered
yet is not malformed: right after a start or a takeover the name may appear within
seconds. Until the fabric has settled the engine answers Unavailable (gRPC
UNAVAILABLE, which clients retry), naming the field; after that, InvalidArgument
or NotFound as for any bad name. Nothing is stored either way.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from apilab import pinned_policy
from enginelab import EngineLab
from synthetic import leaf_spine

from controller.errors import InvalidArgument, NotFound, Unavailable
from controller.policy.model import Policy, PolicyParams
from controller.policy.validate import NotInFabric
from controller.store.drains import DrainView
from controller.store.policies import PolicyView


def _pin(*path: str) -> Policy:
    return replace(pinned_policy(), params=PolicyParams(), pinned_path=path)


def test_names_not_discovered_yet_are_unavailable_and_nothing_is_stored() -> None:
    lab = EngineLab(leaf_spine(2, 2))
    lab.connect(lab.dpid("leaf1"))  # one switch read, no link seen yet
    engine = lab.engine
    with pytest.raises(Unavailable, match=r"^policy\.pinned_path\[1\]: unknown switch 'spine2'"):
        engine.apply_policy(
            _pin("leaf1", "spine2", "leaf2"), dry_run=False, expected_version=0, now=lab.now
        )
    with pytest.raises(Unavailable, match="still being discovered"):
        engine.apply_policy(_pin("leaf1", "leaf2"), dry_run=True, expected_version=0, now=lab.now)
    with pytest.raises(Unavailable, match=r"^link 'leaf1-spine1' not found \(yet"):
        engine.drain("leaf1-spine1", drained=True, now=lab.now)
    assert PolicyView(lab.store).list() == [] and DrainView(lab.store).links() == set()
    # A malformed policy is refused as such at any time.
    with pytest.raises(InvalidArgument, match="repeats pinned_path"):
        engine.apply_policy(_pin("leaf1", "leaf1"), dry_run=False, expected_version=0, now=lab.now)


def test_after_discovery_the_same_names_are_accepted_and_unknown_ones_refused() -> None:
    lab = EngineLab(leaf_spine(2, 2)).ready()
    engine = lab.engine
    result, _ = engine.apply_policy(
        _pin("leaf1", "spine2", "leaf2"), dry_run=False, expected_version=0, now=lab.now
    )
    assert result.created
    drained, _ = engine.drain("leaf1-spine1", drained=True, now=lab.now)
    assert len(drained.links) == 2
    with pytest.raises(NotInFabric, match=r"^pinned_path\[1\]: unknown switch 'spine9'$"):
        engine.apply_policy(
            _pin("leaf1", "spine9", "leaf2"), dry_run=False, expected_version=None, now=lab.now
        )
    with pytest.raises(NotInFabric, match=r"^pinned_path\[1\]: no link from leaf1"):
        engine.apply_policy(
            _pin("leaf1", "leaf2"), dry_run=False, expected_version=None, now=lab.now
        )
    with pytest.raises(NotFound, match=r"^link 'leaf1-spine9' not found$"):
        engine.drain("leaf1-spine9", drained=True, now=lab.now)
    assert [p.pinned_path for p in PolicyView(lab.store).list()] == [("leaf1", "spine2", "leaf2")]
