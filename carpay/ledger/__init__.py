"""The SQL side of carpay: models, migrations, the database and (later) the indexer."""

from carpay.ledger.db import Database, create_engine, database_url
from carpay.ledger.indexer import Creates, Indexer, Watched
from carpay.ledger.migrations import upgrade

__all__ = ["Creates", "Database", "Indexer", "Watched", "create_engine", "database_url", "upgrade"]
