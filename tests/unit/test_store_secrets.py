"""Secrets shared through the store: created once, read by every other node."""

from __future__ import annotations

import pytest

from controller.store.documents import StoreDamaged
from controller.store.memory import MemoryStore
from controller.store.secrets import shared_secret


def test_the_first_node_creates_the_key_and_the_others_read_it() -> None:
    store = MemoryStore()
    first = shared_secret(store, "lldp")
    assert len(first) == 32
    assert shared_secret(store, "lldp") == first
    assert shared_secret(store, "other") != first
    assert store.get("secret", "lldp").version == 1  # created once, never rewritten


def test_a_damaged_key_is_refused_with_one_line() -> None:
    store = MemoryStore()
    store.put("secret", "lldp", {"hex": "zz"})
    with pytest.raises(StoreDamaged, match="stored secret 'lldp' is damaged"):
        shared_secret(store, "lldp")
    store.put("secret", "lldp", {"hex": "ab" * 4})  # too short to be a key
    with pytest.raises(StoreDamaged):
        shared_secret(store, "lldp")
