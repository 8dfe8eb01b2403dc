"""The archive writer's driver-level INSERTs store what SQLAlchemy Core would, to the byte
(issue 7: the commit's CPU, without a second way of writing a value)."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, Table, Text, cast, insert, select
from sqlalchemy.exc import DBAPIError

from gateway.store.bulk import Bulk
from gateway.store.db import make_engine, transaction
from gateway.store.migrate import upgrade
from gateway.store.schema import archive, archive_search_insert, queue

ROW: dict[str, object] = {
    "queue_id": "Q1",
    "received_at": datetime(2026, 12, 4, 9, 30, 1, 250),
    "channel": "email",
    "client_address": "127.0.0.1",
    "helo": "client.example",
    "auth_user": None,
    "envelope_from": "alex.teacher@safe.example",
    "envelope_to": ["sam@pupils.example", "parent@home.example"],
    "from_addr": "alex.teacher@safe.example",
    "to_addrs": ["sam@pupils.example"],
    "cc_addrs": [],
    "bcc_addrs": [],
    "subject": "Trip on Thursday – “bring lunch” 🚌",
    "message_id": "m1@safe.example",
    "body_text": "Hello\r\nSee you at 9.\x00",
    "size": 42,
    "raw_sha256": "0" * 64,
    "raw_gz": b"\x78\x9c\x00\xff",
    "verdict": "flag",
    "mode": "enforce",
    "findings": [{"code": "out_of_hours", "evidence": {"at": "22:10", "ok": None, "n": 1.5}}],
    "evaluation": {"rules": ["r1"], "é": True},
    "dedupe_key": None,
    "youngest_minor_born": date(2012, 5, 17),
    "prev_hash": "a" * 64,
    "record_hash": "b" * 64,
}


def _engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def _stored(path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def test_driver_rows_equal_core_rows_to_the_byte(tmp_path: Path):
    core, driver = _engine(tmp_path / "core.db"), _engine(tmp_path / "driver.db")
    queue_row: dict[str, object] = {
        "kind": "deliver",
        "mail_from": "",
        "recipients": ["a@b.example"],
        "prefix": b"Received: x\r\n",
        "content_gz": None,
        "status": "sending",
        "created_at": datetime(2026, 12, 4, 9, 30),
        "not_before": datetime(2026, 12, 4, 9, 30),
        "next_attempt_at": datetime(2026, 12, 4, 9, 30),
        "expires_at": datetime(2026, 12, 9, 9, 30),
        "attempts": 0,
        "lease_owner": "host:1",
        "lease_until": datetime(2026, 12, 4, 9, 35, 0, 999999),
    }
    with transaction(core) as conn:
        [archive_id] = conn.execute(insert(archive).returning(archive.c.id), [ROW]).scalars()
        conn.execute(insert(queue), [{**queue_row, "archive_id": archive_id}])
    bulk = Bulk(driver.dialect)
    with transaction(driver) as conn:
        [archive_id] = bulk.insert_ids(conn, archive, [ROW])
        ids = bulk.insert_ids(conn, queue, [{**queue_row, "archive_id": archive_id}] * 2)

    assert ids == [1, 2]
    assert _stored(tmp_path / "driver.db", "archive") == _stored(tmp_path / "core.db", "archive")
    assert _stored(tmp_path / "driver.db", "queue")[:1] == _stored(tmp_path / "core.db", "queue")
    core.dispose()
    driver.dispose()


def test_a_row_without_a_column_the_first_had_is_refused(tmp_path: Path):
    """Rows of one call are bound by the first row's columns: a missing one is an error, never
    a silent NULL."""
    engine = _engine(tmp_path / "a.db")
    row = dict(ROW)
    short = {k: v for k, v in ROW.items() if k != "verdict"} | {"queue_id": "Q2"}
    with pytest.raises(KeyError), transaction(engine) as conn:
        Bulk(engine.dialect).insert_ids(conn, archive, [row, short])
    assert _stored(tmp_path / "a.db", "archive") == []  # the transaction rolled back
    engine.dispose()


def test_none_in_a_json_column_is_stored_as_core_stores_it(tmp_path: Path):
    """SQLAlchemy's JSON type writes None as the JSON text 'null', not as SQL NULL; the driver
    path must not differ even there."""
    core, driver = _engine(tmp_path / "core.db"), _engine(tmp_path / "driver.db")
    row = ROW | {"findings": None, "evaluation": None}
    with transaction(core) as conn:
        conn.execute(insert(archive), [row])
    with transaction(driver) as conn:
        Bulk(driver.dialect).insert(conn, archive, [row])

    stored = _stored(tmp_path / "driver.db", "archive")
    assert stored == _stored(tmp_path / "core.db", "archive")
    core.dispose()
    driver.dispose()


def test_a_row_without_a_defaulted_column_is_refused_by_name(tmp_path: Path):
    """Core fills a column's Python-side default (`channel`); the driver path cannot, so it
    names the column instead of writing a row Core would have written differently."""
    engine = _engine(tmp_path / "a.db")
    row = {k: v for k, v in ROW.items() if k != "channel"}
    with pytest.raises(RuntimeError, match="channel"), transaction(engine) as conn:
        Bulk(engine.dialect).insert(conn, archive, [row])
    engine.dispose()


@pytest.mark.postgres
def test_psycopg_rows_equal_core_rows_to_the_value(postgres_url: str):
    """On PostgreSQL the rows go through psycopg's own cursor, as one prepared statement, with
    the ids the writer took beforehand: every column reads back as Core's insert stores it,
    the search vector included."""
    engine = make_engine(postgres_url)
    upgrade(engine)
    row = ROW | {"search_tsv": "'bring':3B 'trip':1A", "body_text": "Hello\r\nSee you at 9."}
    queue_row = {
        "kind": "deliver",
        "mail_from": "",
        "recipients": ["a@b.example"],
        "prefix": b"Received: x\r\n",
        "content_gz": None,
        "status": "queued",
        "created_at": datetime(2026, 12, 4, 9, 30),
        "not_before": datetime(2026, 12, 4, 9, 30),
        "next_attempt_at": datetime(2026, 12, 4, 9, 30),
        "expires_at": datetime(2026, 12, 9, 9, 30),
        "attempts": 0,
        "lease_owner": None,
        "lease_until": None,
    }
    bulk = Bulk(engine.dialect)
    assert bulk.psycopg
    with transaction(engine) as conn:
        conn.execute(insert(archive_search_insert), [row | {"id": 1}])
        conn.execute(insert(queue), [queue_row | {"id": 1, "archive_id": 1}])
    with transaction(engine) as conn, bulk.pipeline(conn):
        bulk.insert(conn, archive_search_insert, [row | {"id": 2, "queue_id": "Q2"}])
        bulk.insert(conn, queue, [queue_row | {"id": 2, "archive_id": 2}])

    def as_stored(table: Table) -> list[dict[str, str | None]]:
        """Each row's columns as the server's own text (JSON as written), but its ids."""
        columns = [
            cast(c, Text).label(c.name)
            for c in table.columns
            if c.name not in ("id", "queue_id", "archive_id")
        ]
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(*columns).order_by(table.c.id))]

    for table in (archive_search_insert, queue):
        core, driver = as_stored(table)
        assert driver == core
    assert as_stored(archive_search_insert)[1]["search_tsv"] == "'bring':3B 'trip':1A"
    engine.dispose()


@pytest.mark.postgres
def test_a_statement_outside_a_pipeline_fails_as_sqlalchemys_error_too(postgres_url: str):
    """`execute` and `fetch` raise the driver's errors as Core raises them (`DBAPIError`),
    whether or not they run in a pipeline: callers catch one kind of error."""
    engine = make_engine(postgres_url)
    bulk = Bulk(engine.dialect)
    with engine.connect() as conn, pytest.raises(DBAPIError, match="no_such_table"):
        bulk.fetch(conn, [("SELECT * FROM no_such_table", ())])
    with engine.connect() as conn, pytest.raises(DBAPIError, match="no_such_table"):
        bulk.execute(conn, "DELETE FROM no_such_table")
    engine.dispose()
