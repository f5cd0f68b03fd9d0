"""The SQL database: an engine and sessions for SQLite (embedded) or PostgreSQL (at scale)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from carpay.errors import ConfigError
from carpay.settings import Settings

__all__ = ["Database", "create_engine", "database_url", "dialect_insert"]

log = logging.getLogger(__name__)

#: How long a SQLite writer waits for another one before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: The execution option of ``Database.read`` sessions' connections.
_READ_ONLY = "carpay_read_only"


def database_url(settings: Settings) -> str:
    """The database ``settings`` point at: ``database_url``, else SQLite in the data dir."""
    if settings.database_url:
        return settings.database_url
    path = Path(settings.data_dir).resolve() / "carpay.sqlite3"
    return f"sqlite:///{path}"


def create_engine(url: str, **kw: Any) -> Engine:
    """An engine for ``url``, tuned for carpay.

    SQLite gets WAL journaling, enforced foreign keys, a busy timeout and ``BEGIN IMMEDIATE``
    transactions: every transaction takes the write lock up front, so two writers queue
    instead of failing when one upgrades a read lock. PostgreSQL is used as it comes.
    """
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, "isolation_level": None}
        engine = sa.create_engine(url, connect_args=connect_args, **kw)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, **kw)
    raise ConfigError(f"unsupported database {backend!r}: use sqlite or postgresql")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")  # a WAL reader: a snapshot, no lock to wait for
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class _WriterLock:
    """Where the writers of one SQLite database queue, in this process and in the others.

    SQLite lets one writer in at a time, and one that finds the lock taken sleeps and looks
    again, longer each time (up to 100 ms): under load, the lock is often free while its
    waiters sleep. Here a write transaction holds a thread lock, then an ``flock`` of a file
    beside the database (``<database>-writers``): this process's writers are woken as the
    thread lock is released, and one writer of each process looks for the file lock every
    2 ms at most. SQLite's own lock still decides: a writer that does not queue here (another
    program, a migration) is waited for as before. Like SQLite's busy timeout, a writer that
    waits more than ``SQLITE_BUSY_TIMEOUT_MS`` gets "database is locked". Where the file cannot
    be opened (a directory this user may not write), only the thread lock is used.
    """

    def __init__(self, database: str | None) -> None:
        self._thread = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._database = database
        self._path = None
        if database and database != ":memory:" and not database.startswith("file:"):
            self._path = f"{database}-writers"

    def __enter__(self) -> None:
        timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
        if not self._thread.acquire(timeout=timeout):
            raise _database_locked()
        try:
            if self._depth == 0 and self._path is not None:
                self._fd = self._flock(time.monotonic() + timeout)
        except BaseException:
            self._thread.release()
            raise
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)  # which releases the flock
            self._fd = None
        self._thread.release()

    def _flock(self, deadline: float) -> int | None:
        # Opened for each transaction (a few microseconds): nothing stays open to close.
        try:
            mode = os.stat(self._database).st_mode & 0o666  # as SQLite makes its -wal file
        except OSError:
            mode = 0o644
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, mode)
        except OSError as exc:
            log.warning("SQLite writers queue on SQLite's lock only: %s", exc.strerror)
            self._path = None
            return None
        delay = 0.0002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise _database_locked() from None
                time.sleep(delay)
                delay = min(delay * 2, 0.002)
            except BaseException:
                os.close(fd)
                raise


def _database_locked() -> sa.exc.OperationalError:
    """What SQLite raises when its busy timeout runs out."""
    return sa.exc.OperationalError(
        "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
    )


def dialect_insert(dialect: str) -> Any:
    """The ``insert`` of ``dialect`` (SQLite's or PostgreSQL's), which has ``on_conflict_*``."""
    return (postgresql if dialect == "postgresql" else sqlite_dialect).insert


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a read-only session (Database.read) was asked to write")


class Database:
    """One database: its engine and a session factory.

    ``begin()`` is the unit of work: a session in a transaction that commits when the block
    ends and rolls back if it raises. ``read()`` is one that only reads.
    """

    def __init__(self, url: str, **engine_kw: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kw)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        readers = self.engine.execution_options(**{_READ_ONLY: True})
        self.readers = sessionmaker(readers, expire_on_commit=False, autoflush=False)
        event.listen(self.readers, "before_flush", _refuse_flush)
        self._writer: Any = contextlib.nullcontext()
        if self.engine.dialect.name == "sqlite":
            self._writer = _WriterLock(self.engine.url.database)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(database_url(settings))

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session in a transaction, committed at the end of the block."""
        with self._writer, self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session that only reads: on SQLite it takes no write lock, so it never waits for
        a writer (WAL: it sees the last commit before it began); asked to write, it raises."""
        with self.readers() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        from carpay.ledger.migrations import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
