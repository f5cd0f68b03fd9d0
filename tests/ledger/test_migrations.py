"""Tests of carpay/ledger/migrations: they build exactly the models' schema, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from carpay.ledger.db import Database
from carpay.ledger.migrations import alembic_config, upgrade
from carpay.ledger.models import Base


def _diff(db: Database) -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_migrations_form_one_line():
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_migrated_schema_matches_the_models(database):
    assert _diff(database) == []


def test_upgrade_twice_changes_nothing(database):
    upgrade(database.engine)
    upgrade(database.engine)
    with database.engine.connect() as c:
        version = c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert _diff(database) == []


def test_downgrade_and_upgrade_again(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    upgrade(db.engine)
    with db.engine.begin() as connection:
        config = alembic_config(db.engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    with db.engine.connect() as c:
        tables = {r[0] for r in c.exec_driver_sql("SELECT name FROM sqlite_master")}
    assert "outbox" not in tables
    upgrade(db.engine)
    assert _diff(db) == []
    db.dispose()
