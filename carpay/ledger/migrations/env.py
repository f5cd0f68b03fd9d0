"""Alembic environment: runs on the connection carpay hands over, SQLite or PostgreSQL."""

from __future__ import annotations

from alembic import context

from carpay.ledger import tables as _tables  # noqa: F401  (registers the index tables)
from carpay.ledger.db import create_engine
from carpay.ledger.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them: batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = config.attributes.get("engine") or create_engine(
        config.get_main_option("sqlalchemy.url")
    )
    with engine.begin() as connection:
        _run(connection)


if context.is_offline_mode():
    raise SystemExit("carpay migrations run online only")
run_migrations_online()
