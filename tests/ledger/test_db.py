"""Tests of carpay/ledger/db.py: engines, sessions and units of work on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from carpay.errors import ConfigError
from carpay.ledger.db import Database, create_engine, database_url
from carpay.ledger.models import ApiKey
from carpay.settings import Settings


def test_default_url_is_sqlite_in_the_data_dir(tmp_path):
    url = database_url(Settings(data_dir=tmp_path / "data", database_url=None))
    assert url == f"sqlite:///{(tmp_path / 'data').resolve()}/carpay.sqlite3"


def test_database_url_setting_wins(tmp_path):
    s = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://u@h/db")
    assert database_url(s) == "postgresql+psycopg://u@h/db"


def test_sqlite_gets_wal_and_foreign_keys(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'sub' / 'x.sqlite3'}")
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert Path(tmp_path / "sub" / "x.sqlite3").exists()
    engine.dispose()


def test_unsupported_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="unsupported database 'mysql'"):
        create_engine("mysql://u@h/db")


def _key(prefix: str) -> ApiKey:
    return ApiKey(prefix=prefix, secret_hash="0" * 64, name="n", owner="o", scopes=[])


def test_begin_commits_at_the_end(database: Database):
    with database.begin() as s:
        s.add(_key("a"))
    with database.begin() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 1


def test_begin_rolls_back_on_error(database: Database):
    with pytest.raises(RuntimeError), database.begin() as s:
        s.add(_key("a"))
        s.flush()
        raise RuntimeError("boom")
    with database.begin() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


def test_each_test_starts_empty(database: Database):
    # Runs after tests that inserted rows: the fixture emptied the tables.
    with database.begin() as s:
        assert s.scalars(sa.select(ApiKey)).all() == []
        s.add(_key("z"))


def test_a_read_sees_the_last_commit_and_refuses_to_write(database: Database):
    with database.begin() as s:
        s.add(_key("a"))
    # Leaving the block commits, which flushes: a change is refused, not written.
    with pytest.raises(RuntimeError, match="read-only"), database.read() as s:
        [key] = s.scalars(sa.select(ApiKey)).all()
        key.name = "changed"
    with pytest.raises(RuntimeError, match="read-only"), database.read() as s:
        s.add(_key("b"))
    with database.read() as s:
        assert [k.name for k in s.scalars(sa.select(ApiKey))] == ["n"]


def test_a_read_does_not_wait_for_a_writer(database: Database):
    """While one writer holds its transaction open, reads go on (on SQLite too: WAL readers
    take no lock) and see what was committed before it."""
    with database.begin() as s:
        s.add(_key("a"))
    with database.begin() as writer:
        writer.add(_key("b"))
        writer.flush()
        with database.read() as s:
            assert [k.prefix for k in s.scalars(sa.select(ApiKey))] == ["a"]
    with database.read() as s:
        assert sorted(k.prefix for k in s.scalars(sa.select(ApiKey))) == ["a", "b"]


def test_sqlite_writers_queue_for_each_other_and_readers_do_not(tmp_path):
    """On SQLite a write transaction holds a thread lock and an ``flock`` of a file beside the
    database while it runs: writers of this process wait on the one, those of other processes
    on the other, and are woken when it ends (SQLite's own busy wait sleeps up to 100 ms at a
    time). Reads take neither."""
    import fcntl
    import os
    import threading

    path = tmp_path / "x.sqlite3"
    db = Database(f"sqlite:///{path}")

    def flocked() -> bool:
        # Another open file description, as another process has: it conflicts with the lock.
        fd = os.open(f"{path}-writers", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    entered = threading.Event()

    def second_writer() -> None:
        with db.begin() as s:
            s.execute(sa.text("INSERT INTO t VALUES (2)"))
            entered.set()

    with db.begin() as s:
        s.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    assert not flocked()
    with db.begin() as s:
        s.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert flocked()
        other = threading.Thread(target=second_writer)
        other.start()
        assert not entered.wait(0.3)  # it waits for this transaction to end
        with db.read() as r:  # a read does not
            assert r.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    other.join(10)
    assert entered.is_set() and not flocked()
    with db.read() as r:
        assert sorted(r.execute(sa.text("SELECT x FROM t")).scalars()) == [1, 2]
    db.dispose()


def test_a_sqlite_writer_that_waits_too_long_gets_database_is_locked(tmp_path, monkeypatch):
    """As with SQLite's busy timeout: here another process holds the writers' file lock."""
    import fcntl
    import os

    import carpay.ledger.db as db_module

    path = tmp_path / "x.sqlite3"
    db = Database(f"sqlite:///{path}")
    with db.begin() as s:
        s.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    other = os.open(f"{path}-writers", os.O_RDWR)  # another open file: another process's lock
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        with pytest.raises(sa.exc.OperationalError, match="database is locked"), db.begin() as s:
            s.execute(sa.text("INSERT INTO t VALUES (1)"))
    finally:
        os.close(other)
    with db.begin() as s:  # free again: the next writer goes in
        s.execute(sa.text("INSERT INTO t VALUES (2)"))
    with db.read() as r:
        assert list(r.execute(sa.text("SELECT x FROM t")).scalars()) == [2]
    db.dispose()


def test_sqlite_writers_go_on_when_their_queue_file_cannot_be_opened(tmp_path, caplog):
    """A data directory this user may not write to, say: SQLite's own lock decides alone."""
    path = tmp_path / "x.sqlite3"
    (tmp_path / "x.sqlite3-writers").mkdir()  # not a file: refused even to root
    db = Database(f"sqlite:///{path}")
    with db.begin() as s:
        s.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    with db.begin() as s:
        s.execute(sa.text("INSERT INTO t VALUES (1)"))
    assert "queue on SQLite's lock only" in caplog.text
    with db.read() as r:
        assert r.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
    db.dispose()
