"""The learned-host file: round trip, atomic replacement, and precise errors for bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from controller.fabric.model import Host, PortRef
from controller.store.hosts import load_hosts, save_hosts

HOSTS = [
    Host(mac="02:00:00:00:00:02", ipv4="10.0.0.2", attach=PortRef(0x1002, 3), last_seen=12.5),
    Host(
        mac="02:00:00:00:00:01", ipv4=None, attach=PortRef(0xFFFF_FFFF_FFFF, 65000), last_seen=3.0
    ),
]


def test_round_trip_restores_hosts_as_unconfirmed(tmp_path: Path) -> None:
    path = tmp_path / "hosts.json"
    save_hosts(path, HOSTS)
    loaded = load_hosts(path)
    assert [(h.mac, h.ipv4, h.attach) for h in loaded] == sorted(
        (h.mac, h.ipv4, h.attach) for h in HOSTS
    )
    assert all(h.last_seen == 0.0 and not h.confirmed for h in loaded)


def test_an_absent_file_is_no_hosts(tmp_path: Path) -> None:
    assert load_hosts(tmp_path / "never-written.json") == []


def test_saving_replaces_the_file_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hosts.json"
    save_hosts(path, HOSTS)
    before = path.read_text()
    assert sorted(os.listdir(tmp_path)) == ["hosts.json"]  # no temp file left behind

    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        save_hosts(path, HOSTS[:1])
    assert path.read_text() == before  # a failed save never leaves half a file
    assert len(load_hosts(path)) == 2


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "unreadable host table"),
        ('{"version": 2, "hosts": []}', "unknown host table format"),
        ("[1, 2]", "unknown host table format"),
        ('{"version": 1, "hosts": {"mac": 1}}', "hosts: expected a list"),
        ('{"version": 1, "hosts": [{"mac": "02:00:00:00:00:01", "port": 1}]}', "hosts[0]"),
        ('{"version": 1, "hosts": [{"mac": "a", "dpid": 1, "port": 1}, 7]}', "hosts[1]"),
        ('{"version": 1, "hosts": [{"mac": "a", "dpid": "x", "port": 1}]}', "hosts[0]"),
    ],
)
def test_a_bad_file_is_one_value_error_naming_the_file(
    tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "hosts.json"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        load_hosts(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"version": 1, "hosts": [{"mac": "m", "port": 1}]}))
    with pytest.raises(ValueError, match="dpid"):
        load_hosts(path)
