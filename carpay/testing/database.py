"""pytest fixtures for a clean, migrated database: each test runs on SQLite and on PostgreSQL.

Import them into a ``conftest.py``: ``from carpay.testing.database import database,
database_url``. PostgreSQL is ``CARPAY_TEST_POSTGRES_URL`` (default: the local ``test``
database); each test session works in a schema of its own, dropped at the end, so several
test runs can share one database at once.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from carpay.ledger.db import Database
from carpay.ledger.migrations import upgrade
from carpay.ledger.models import Base

__all__ = ["POSTGRES_URL", "database", "database_url", "postgres_schema", "truncate"]

POSTGRES_URL = os.environ.get(
    "CARPAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_schema(base_url: str = POSTGRES_URL) -> Iterator[str]:
    """A URL of ``base_url`` whose connections work in a new schema, dropped afterwards."""
    name = f"carpay_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


def truncate(db: Database) -> None:
    """Empty every carpay table."""
    tables = list(reversed(Base.metadata.sorted_tables))
    with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                connection.execute(table.delete())


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """The URL of a migrated database of each kind in turn."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'carpay.sqlite3'}"
        db = Database(url)
        upgrade(db.engine)
        db.dispose()
        yield url
        return
    with postgres_schema() as url:
        db = Database(url)
        upgrade(db.engine)
        db.dispose()
        yield url


@pytest.fixture
def database(database_url) -> Iterator[Database]:
    """An empty, migrated database, SQLite and then PostgreSQL."""
    db = Database(database_url)
    truncate(db)
    try:
        yield db
    finally:
        db.dispose()
