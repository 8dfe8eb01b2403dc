"""Alembic, driven from code: `upgrade(engine)` brings any database to the current schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer gateway than this one."""


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    newer = sorted(set(current) - known)
    if newer:
        # An older gateway writing to a newer schema leaves out what it does not know of
        # (the tamper-evidence digest of migration 0010): it must not start.
        raise SchemaTooNew(
            f"the database's schema ({', '.join(newer)}) is newer than this gateway's "
            f"({max(known)}): a newer version of the gateway has upgraded it; upgrade this "
            "one too (every gateway sharing a database runs the same version)"
        )
    command.upgrade(config, revision)
