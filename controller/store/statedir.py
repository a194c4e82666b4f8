"""The state directory of a single-node fabricd: its lock, its store, its migrations.

:func:`open_state_dir` is the one way a daemon opens its state: take the
exclusive lock (a second daemon on the same directory would see only its own
writes and the two would overwrite each other), open the SQLite store (which
checks integrity and refuses damage, and migrates a schema-1 store), and move
a schema-1 host file into the store. Every failure is a :class:`StoreError`
with one line to print. The lock is an advisory ``flock`` on ``fabricd.lock``,
released by the kernel when the process dies, so a SIGKILLed daemon never
leaves a stale lock; the file holds the owner's pid only to name it.
This module must not interpret the documents it opens.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from controller.store.documents import StoreError, StoreLocked
from controller.store.hosts import migrate_hosts_file
from controller.store.sqlite import SqliteStore

__all__ = ["LOCK_FILE", "STORE_FILE", "HOSTS_FILE", "StateDirLock", "StateDir", "open_state_dir"]

LOCK_FILE = "fabricd.lock"
STORE_FILE = "policies.db"  # the name predates jobs, drains and hosts in the store
HOSTS_FILE = "hosts.json"  # schema 1 only: migrated into the store


class StateDirLock:
    """An exclusive lock on ``directory`` held by this process until :meth:`release`."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{directory}: cannot use the state directory: {exc}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(self._fd)
            self.release()
            who = f"pid {holder}" if holder else "another process"
            raise StoreLocked(
                f"{directory}: the state directory is in use by fabricd ({who}); stop it "
                "or give this one another --state-dir"
            ) from None
        except OSError as exc:
            self.release()
            raise StoreError(f"{self.path}: cannot lock the state directory: {exc}") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@dataclass
class StateDir:
    """An open, locked state directory; :meth:`close` closes the store, then unlocks."""

    path: Path
    store: SqliteStore
    lock: StateDirLock

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            self.lock.release()


def open_state_dir(path: Path | str) -> StateDir:
    """Lock ``path``, open (and if needed migrate) its store. Raises
    :class:`StoreLocked`, :class:`StoreDamaged` or :class:`StoreError`."""
    directory = Path(path)
    lock = StateDirLock(directory)
    try:
        store = SqliteStore(directory / STORE_FILE)
        try:
            migrate_hosts_file(store, directory / HOSTS_FILE)
        except BaseException:
            store.close()
            raise
    except BaseException:
        lock.release()
        raise
    return StateDir(directory, store, lock)
