"""The committed-revision marker: proof of what an embedded store already held.

SQLite cannot tell an empty new database from one whose file was truncated,
replaced or deleted, nor a database whose write-ahead log (holding the last
commits until a checkpoint) was lost after a crash: it opens all of them as
valid and older. So the store writes the revision of each commit into this
small side file (one fixed-size record with a checksum, rewritten in place
and flushed with ``fdatasync`` after the commit). At open, a database older
than its marker has lost acknowledged writes and is refused. The marker may
lag the database (a crash between commit and marker write), never lead it.
It must not hold anything but that number: the data lives in the database.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from controller.store.documents import StoreDamaged, StoreError

__all__ = ["RevisionMarker"]

_MAGIC = "fabric-store-revision"
_RECORD = 64  # fixed size: rewritten in place, far below one disk sector


def _record(revision: int) -> bytes:
    text = f"{_MAGIC} {revision:020d}"
    line = f"{text} {zlib.crc32(text.encode()):08x}\n"
    return line.ljust(_RECORD).encode()


class RevisionMarker:
    """The marker file at ``path`` (opened for updates once, kept open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def read(self) -> int | None:
        """The recorded revision, or None if there is no marker file."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read the revision marker: {exc}") from None
        parts = raw.decode("ascii", errors="replace").split()
        if len(parts) == 3 and parts[0] == _MAGIC and parts[1].isdigit():
            text = f"{parts[0]} {parts[1]}"
            if f"{zlib.crc32(text.encode()):08x}" == parts[2]:
                return int(parts[1])
        raise StoreDamaged(
            f"{self.path}: the revision marker is damaged; if the store next to it is "
            "known to be complete, delete the marker and start again"
        )

    def write(self, revision: int) -> None:
        """Record ``revision`` durably (after the database committed it)."""
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                _fsync_dir(self.path.parent)
            os.pwrite(self._fd, _record(revision), 0)
            os.fdatasync(self._fd)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot record the committed revision: {exc}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fsync_dir(path: Path) -> None:
    # A new file's directory entry is durable only once its directory is synced.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
