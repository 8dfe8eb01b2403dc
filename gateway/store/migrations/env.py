"""Alembic environment: the engine comes from `gateway.store.migrate`, never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gateway.store.schema import metadata

MIGRATION_LOCK = 0x5AFE_6A7E  # any constant of ours: the key of PostgreSQL's advisory lock

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    # SQLite: take the write lock at BEGIN (db.py's `sqlite_write`). A deferred transaction
    # reads the version table first, and if a running gateway commits meanwhile, its first DDL
    # fails at once with "database is locked" instead of waiting its turn.
    connection.execution_options(sqlite_write=True)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two gateways starting together on a new database would both create the tables
            # (one failed with a duplicate key); the second waits here, then finds them made.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
