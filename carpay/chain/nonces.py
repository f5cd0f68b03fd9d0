"""Transaction nonces for senders shared by threads and processes, kept across restarts."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NonceManager"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonce (
    chain TEXT NOT NULL,
    address TEXT NOT NULL,
    next_nonce INTEGER NOT NULL,
    pending_seen INTEGER NOT NULL,
    pending_since REAL NOT NULL,
    PRIMARY KEY (chain, address)
);
CREATE TABLE IF NOT EXISTS released_nonce (
    chain TEXT NOT NULL,
    address TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    PRIMARY KEY (chain, address, nonce)
);
"""


class NonceManager:
    """Hands out each sender's nonces once, to every thread and process using one file.

    State lives in a small SQLite file; each reservation is one ``BEGIN IMMEDIATE``
    transaction, so concurrent reservations on the same file never collide. A reservation is
    ``max(next stored nonce, node's pending transaction count)``: the node covers transactions
    sent by anything else, the file covers those reserved here but not yet sent.

    ``chain`` names the network, so one file can serve several. ``pending`` returns the node's
    pending transaction count for an address; without it, pass ``pending=`` to each call.

    A reserved nonce that never reaches the node would hold every later transaction of that
    sender behind it. :meth:`release` returns it after a refused send. If a process dies
    between reserving and sending, the node's pending count stops moving while nonces above
    it stay reserved; after ``stale_after`` seconds of that, the next reservation starts again
    from the node's count.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chain: str | int = "default",
        pending: Callable[[str], int] | None = None,
        stale_after: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.chain = str(chain)
        self.stale_after = stale_after
        self._pending = pending
        self._clock = clock
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}")

    def reserve(self, address: str, *, pending: int | None = None) -> int:
        """The next nonce for ``address``, never handed out to anyone else.

        ``pending`` is the node's pending transaction count for ``address``; it is asked
        for when not given.
        """
        address = address.lower()
        node_count = self._pending_count(address, pending)
        floor = node_count or 0
        with self._transaction(immediate=True) as db:
            now = self._clock()
            next_nonce, seen, since = self._row(db, address, floor, now)
            if node_count is not None:
                if seen != node_count:
                    seen, since = node_count, now
                elif next_nonce > node_count and now - since > self.stale_after:
                    # The reservations above the node's count never reached it.
                    next_nonce, since = node_count, now
                    self._forget_released(db, address)
            self._forget_released(db, address, below=floor)
            reused = db.execute(
                "SELECT MIN(nonce) FROM released_nonce WHERE chain = ? AND address = ?",
                (self.chain, address),
            ).fetchone()[0]
            if reused is not None:
                db.execute(
                    "DELETE FROM released_nonce WHERE chain = ? AND address = ? AND nonce = ?",
                    (self.chain, address, reused),
                )
                nonce = reused
            else:
                nonce = max(next_nonce, floor)
                next_nonce = nonce + 1
            self._save(db, address, next_nonce, seen, since)
        return nonce

    def release(self, address: str, nonce: int) -> None:
        """Give back a reserved ``nonce`` that the node refused; the next reservation reuses it."""
        address = address.lower()
        with self._transaction(immediate=True) as db:
            row = db.execute(
                "SELECT next_nonce, pending_seen, pending_since FROM nonce"
                " WHERE chain = ? AND address = ?",
                (self.chain, address),
            ).fetchone()
            if row is None or nonce >= row[0]:
                return
            next_nonce, seen, since = row
            db.execute(
                "INSERT OR IGNORE INTO released_nonce (chain, address, nonce) VALUES (?, ?, ?)",
                (self.chain, address, nonce),
            )
            # Released nonces at the top simply lower the next nonce.
            released = {
                n
                for (n,) in db.execute(
                    "SELECT nonce FROM released_nonce WHERE chain = ? AND address = ?",
                    (self.chain, address),
                )
            }
            while next_nonce - 1 in released:
                next_nonce -= 1
            self._forget_released(db, address, at_or_above=next_nonce)
            self._save(db, address, next_nonce, seen, since)

    def resync(self, address: str, *, pending: int | None = None) -> int:
        """Catch up with the node after it said "nonce too low"; returns the next nonce.

        Nonces below the node's pending count are used: released ones are forgotten and the
        next reservation starts at the count or above.
        """
        address = address.lower()
        node_count = self._pending_count(address, pending)
        if node_count is None:
            raise ValueError("resync needs the node's pending count: pass pending=")
        with self._transaction(immediate=True) as db:
            now = self._clock()
            next_nonce, seen, since = self._row(db, address, node_count, now)
            if seen != node_count:
                seen, since = node_count, now
            next_nonce = max(next_nonce, node_count)
            self._forget_released(db, address, below=node_count)
            self._save(db, address, next_nonce, seen, since)
        return next_nonce

    def next_nonce(self, address: str) -> int | None:
        """The next nonce stored for ``address`` (ignoring released ones), or None if none is."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT next_nonce FROM nonce WHERE chain = ? AND address = ?",
                (self.chain, address.lower()),
            ).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close this thread's connection to the file (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn[1].close()
            self._local.conn = None

    # -- internals -------------------------------------------------------------------------

    def _pending_count(self, address: str, pending: int | None) -> int | None:
        if pending is not None:
            return pending
        if self._pending is not None:
            return self._pending(address)
        return None

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and per process: sqlite3 objects are not shared safely
        # across threads, and never across fork().
        conn = getattr(self._local, "conn", None)
        if conn is None or conn[0] != os.getpid():
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            _use_wal(db)
            # WAL + NORMAL survives process crashes; a power cut may lose the last
            # reservations, which the node's pending count then covers.
            db.execute("PRAGMA synchronous=NORMAL")
            conn = self._local.conn = (os.getpid(), db)
        return conn[1]

    @contextmanager
    def _transaction(self, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        if immediate:
            db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if db.in_transaction:
            db.execute("COMMIT")

    def _row(
        self, db: sqlite3.Connection, address: str, floor: int, now: float
    ) -> tuple[int, int, float]:
        row = db.execute(
            "SELECT next_nonce, pending_seen, pending_since FROM nonce"
            " WHERE chain = ? AND address = ?",
            (self.chain, address),
        ).fetchone()
        return tuple(row) if row else (floor, floor, now)  # type: ignore[return-value]

    def _save(
        self, db: sqlite3.Connection, address: str, next_nonce: int, seen: int, since: float
    ) -> None:
        db.execute(
            "INSERT INTO nonce (chain, address, next_nonce, pending_seen, pending_since)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (chain, address) DO UPDATE SET"
            " next_nonce = excluded.next_nonce, pending_seen = excluded.pending_seen,"
            " pending_since = excluded.pending_since",
            (self.chain, address, next_nonce, seen, since),
        )

    def _forget_released(
        self,
        db: sqlite3.Connection,
        address: str,
        *,
        below: int | None = None,
        at_or_above: int | None = None,
    ) -> None:
        sql = "DELETE FROM released_nonce WHERE chain = ? AND address = ?"
        args: list[object] = [self.chain, address]
        if below is not None:
            sql += " AND nonce < ?"
            args.append(below)
        if at_or_above is not None:
            sql += " AND nonce >= ?"
            args.append(at_or_above)
        db.execute(sql, args)


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch ``db`` to WAL. The switch needs the file to itself and ignores the busy timeout,
    so clients opening a new file together retry it; once it is WAL, nothing is to do."""
    for attempt in range(200):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.05)
