"""Fixtures of these tests: a clean, migrated database, on SQLite and on PostgreSQL."""

from carpay.testing.database import database, database_url

__all__ = ["database", "database_url"]
