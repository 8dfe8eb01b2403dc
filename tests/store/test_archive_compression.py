"""Migration 0009: PostgreSQL compresses the archive's large columns with lz4, which cost the
server less CPU per message than pglz (issue 7); what is stored reads back the same."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, select, text

from gateway.store.archive import Archive
from gateway.store.db import make_engine
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.records import ArchiveRecord
from gateway.store.schema import archive

pytestmark = pytest.mark.postgres

BODY = " ".join(f"word{n % 300} and the programme for week {n}" for n in range(400))


def _methods(engine: Engine) -> dict[str, str]:
    """Each large column's compression method ('l' lz4, '' the default) and storage ('x'
    compressed and out of line, 'e' out of line as it is)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT attname, attcompression::text || attstorage::text FROM pg_attribute "
                "WHERE attrelid = 'archive'::regclass "
                "AND attname IN ('body_text', 'search_tsv', 'raw_gz')"
            )
        )
        return {name: str(method) for name, method in rows}


@pytest.fixture(autouse=True)
def _lz4(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        choices = conn.execute(
            text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
    engine.dispose()
    if not choices or "lz4" not in choices:
        pytest.skip("this PostgreSQL has no lz4: 0009 leaves pglz (tested by the rest)")


def test_new_rows_are_compressed_with_lz4_and_read_back_whole(postgres_url: str):
    engine = make_engine(postgres_url)
    upgrade(engine)
    assert _methods(engine) == {"body_text": "lx", "search_tsv": "lx", "raw_gz": "e"}
    record = ArchiveRecord(
        queue_id="Q1",
        received_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        raw=f"Subject: week\r\n\r\n{BODY}\r\n".encode(),
        verdict="deliver",
        subject="week",
        body_text=BODY,
    )
    Archive(engine).store(record, [])

    with engine.connect() as conn:
        stored, method, raw_method = conn.execute(
            select(
                archive.c.body_text,
                text("pg_column_compression(body_text)"),
                text("pg_column_compression(raw_gz)"),
            )
        ).one()
    assert stored == BODY
    assert method == "lz4"
    assert raw_method is None  # gzipped already: stored as it is
    engine.dispose()


def test_0009_goes_back_to_the_servers_default(postgres_url: str):
    engine = make_engine(postgres_url)
    upgrade(engine)
    command.downgrade(alembic_config(engine), "0008")
    assert _methods(engine) == {"body_text": "x", "search_tsv": "x", "raw_gz": "x"}
    upgrade(engine)
    assert _methods(engine) == {"body_text": "lx", "search_tsv": "lx", "raw_gz": "e"}
    engine.dispose()
