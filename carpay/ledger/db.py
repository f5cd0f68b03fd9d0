"""The SQL database: an engine and sessions for SQLite (embedded) or PostgreSQL (at scale)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from carpay.errors import ConfigError
from carpay.settings import Settings

__all__ = ["Database", "create_engine", "database_url"]

#: How long a SQLite writer waits for another one before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000


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
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One database: its engine and a session factory.

    ``begin()`` is the unit of work: a session in a transaction that commits when the block
    ends and rolls back if it raises.
    """

    def __init__(self, url: str, **engine_kw: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kw)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

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
        with self.sessions() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        from carpay.ledger.migrations import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
