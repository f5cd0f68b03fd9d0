"""A durable journal of acknowledged raw transactions.

A transaction's hash is returned to the client only after its bytes are in this file and
fsynced. On restart every journaled transaction that is not in a committed block is submitted
again, so nothing the node acknowledged is ever lost. Records are length- and CRC-framed; a torn
last record (a crash mid-write) is ignored, since it was never acknowledged.
"""

from __future__ import annotations

import concurrent.futures
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from eth_utils import keccak

__all__ = ["Journal", "JournalWriter"]

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


class JournalWriter:
    """Group commit into a :class:`Journal` from a thread of its own, and compaction.

    ``append(raw)`` returns a future that completes once ``raw`` is fsynced: every record
    queued while one fsync runs goes to disk in the next, together. When the file has grown
    past ``compact_bytes`` (and doubled since it was last rewritten), it is rewritten with only
    the records ``settled`` does not know (by transaction hash: mined or dropped in a committed
    block), under the journal's lock, so no acknowledged record is left out.
    """

    def __init__(
        self,
        journal: Journal,
        settled: Callable[[bytes], bool],
        *,
        compact_bytes: int = 4 << 20,
    ) -> None:
        self.journal = journal
        self._settled = settled
        self._compact_bytes = compact_bytes
        self._kept_bytes = 0
        self._cond = threading.Condition()
        self._waiting: list[tuple[bytes, concurrent.futures.Future]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="node-journal", daemon=True)
        self._thread.start()

    def append(self, raw: bytes) -> concurrent.futures.Future:
        done: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the journal is closed")
            self._waiting.append((raw, done))
            self._cond.notify()
        return done

    def close(self) -> None:
        """Write what is queued, then close the file."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        self.journal.close()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                batch, self._waiting = self._waiting, []
            try:
                self.journal.append([raw for raw, _ in batch])
            except OSError as exc:
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for _, done in batch:
                done.set_result(None)
            self._maybe_compact()

    def _maybe_compact(self) -> None:
        size = self.journal.path.stat().st_size
        if size <= max(self._compact_bytes, 2 * self._kept_bytes):
            return
        try:
            kept = [r for r in self.journal.replay() if not self._settled(keccak(r))]
            self.journal.rewrite(kept)
        except OSError:  # the journal as it is stays valid; the next group tries again
            return
        self._kept_bytes = self.journal.path.stat().st_size
