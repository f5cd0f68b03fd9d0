"""A durable journal of acknowledged raw transactions.

A transaction's hash is returned to the client only after its bytes are in this file and
fsynced. On restart every journaled transaction that is not in a committed block is submitted
again, so nothing the node acknowledged is ever lost. Records are length- and CRC-framed; a torn
last record (a crash mid-write) is ignored, since it was never acknowledged.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Journal"]

_HEADER = struct.Struct(">II")  # length, crc32


class Journal:
    """Append-only file of raw transactions, fsynced before acknowledgement."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, records: list[bytes]) -> None:
        """Write ``records`` and fsync them: one disk flush for a whole group."""
        data = b"".join(_HEADER.pack(len(r), zlib.crc32(r)) + r for r in records)
        with self._lock:
            os.write(self._fd, data)
            os.fdatasync(self._fd)

    def replay(self) -> Iterator[bytes]:
        """Every intact record, oldest first."""
        with open(self.path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, pos)
            record = data[pos + _HEADER.size : pos + _HEADER.size + length]
            if len(record) < length or zlib.crc32(record) != crc:
                return
            yield record
            pos += _HEADER.size + length

    def rewrite(self, records: list[bytes]) -> None:
        """Atomically replace the journal with ``records`` (those still pending)."""
        tmp = self.path.with_suffix(".tmp")
        with self._lock:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"".join(_HEADER.pack(len(r), zlib.crc32(r)) + r for r in records))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
