"""Migrating the archive: several gateways start together, and an older gateway never writes to
a database a newer one has migrated (an IT admin's review of a two-gateway deployment)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from gateway.cli import cli
from gateway.store.db import make_engine
from gateway.store.migrate import SchemaTooNew, upgrade


@pytest.mark.postgres
def test_two_gateways_starting_together_on_a_new_database_both_start(postgres_url: str):
    """The review: one of two gateways started at once on an empty database exited with
    `duplicate key value violates unique constraint "pg_type_typname_nsp_index"`. Processes,
    as gateways are (Alembic's context is one per process)."""
    script = (
        "import sys\n"
        "from gateway.store.db import make_engine\n"
        "from gateway.store.migrate import upgrade\n"
        "upgrade(make_engine(sys.argv[1]))\n"
    )
    starts = [
        subprocess.Popen([sys.executable, "-c", script, postgres_url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for start in starts:
        _, err = start.communicate(timeout=120)
        assert start.returncode == 0, err.decode()


def test_a_database_migrated_by_a_newer_gateway_is_refused(tmp_path: Path):
    """An old gateway kept relaying on a schema a newer one had migrated, leaving out the
    tamper-evidence digest it did not know of; it now refuses to start, saying why."""
    engine = make_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    with pytest.raises(SchemaTooNew, match=r"0099_from_the_future.*newer than this gateway's"):
        upgrade(engine)
    engine.dispose()
    config = tmp_path / "gateway.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "archive.db"}"\n')
    said = CliRunner().invoke(cli, ["--config", str(config), "search", "hello"])
    assert said.exit_code == 2
    assert "a newer version of the gateway has upgraded it; upgrade this one too" in said.stderr
