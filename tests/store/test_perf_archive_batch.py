"""A batch of records goes to the archive in a fixed number of statements (issue 7); the hash chain,
the dedupe answers and the rows beside each record are exactly what one-by-one storing gives."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg import pq
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import IntegrityError

from gateway.store.archive import Archive
from gateway.store.db import make_engine
from gateway.store.integrity import verify
from gateway.store.migrate import upgrade
from gateway.store.records import ArchiveRecord, QueueItem, Stored
from gateway.store.schema import archive, archive_addresses, archive_findings, chain_head, queue

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def _record(n: int, message_id: str | None = None) -> tuple[ArchiveRecord, list[QueueItem]]:
    record = ArchiveRecord(
        queue_id=f"Q{n:04d}",
        received_at=T0 + timedelta(seconds=n),
        raw=f"Message-ID: <{message_id}>\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode(),
        verdict="deliver" if n % 3 else "flag",
        envelope_from="alex.teacher@safe.example",
        envelope_to=(f"{n}p@volunteers.example",),
        to_addrs=(f"{n}p@volunteers.example",),
        message_id=message_id or f"m{n}@safe.example",
        findings=({"code": "no-second-staff", "rule": "r1", "action": "flag"},)
        if n % 3 == 0
        else (),
    )
    items = [
        QueueItem(kind="deliver", mail_from=record.envelope_from, recipients=record.envelope_to),
        QueueItem(kind="alert", mail_from="", recipients=("dsl@safe.example",), content=b"x"),
    ]
    return record, items


def _chain(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(archive.c.queue_id, archive.c.prev_hash, archive.c.record_hash).order_by(
                    archive.c.id
                )
            )
        ]


def _trace_protocol(engine: Engine, path: Path) -> Callable[[], str]:
    """libpq's trace of every message on the connections `engine` hands out until the function
    returned is called; it returns the trace."""
    out = path.open("w")

    def traced(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.pgconn.trace(out.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def untraced(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.pgconn.untrace()

    event.listen(engine, "checkout", traced)
    event.listen(engine, "checkin", untraced)

    def stop() -> str:
        event.remove(engine, "checkout", traced)
        event.remove(engine, "checkin", untraced)
        out.close()
        return path.read_text()

    return stop


def _round_trips(trace: str) -> int:
    """How often the client waited for the server: each run of the client's messages (F) that
    the server's (B) answer."""
    sides = [line.split("\t", 1)[0] for line in trace.splitlines() if line]
    return sum(1 for pair in itertools.pairwise(sides) if pair == ("F", "B"))


def test_a_batch_writes_the_same_chain_as_one_record_at_a_time(database_url: str, tmp_path: Path):
    batch = [_record(n) for n in range(1, 11)]
    one_by_one = _engine(f"sqlite:///{tmp_path / 'single.db'}")
    for record, items in batch:
        Archive(one_by_one).store(record, items)
    engine = _engine(database_url)
    statements: list[str] = []
    event.listen(
        engine, "before_cursor_execute", lambda *args: statements.append(args[2].split()[0])
    )
    if engine.dialect.name == "postgresql":
        traced = _trace_protocol(engine, tmp_path / "libpq.trace")

    stored = Archive(engine).store_many(batch)
    batch_statements = list(statements)  # the batch's own, not the reads below
    trace = traced() if engine.dialect.name == "postgresql" else ""

    assert [s.duplicate for s in stored] == [False] * 10
    assert _chain(engine) == _chain(one_by_one)
    assert verify(engine).ok
    if engine.dialect.name == "sqlite":
        # Ten records cost SQLAlchemy a fixed number of statements, none per record: BEGIN,
        # the chain head, the dedupe lookup and its update; the rows go straight through the
        # sqlite3 cursor (gateway/store/bulk.py).
        assert batch_statements == ["BEGIN", "SELECT", "SELECT", "UPDATE"]
    else:
        # On PostgreSQL everything goes on psycopg's own cursor, in pipeline mode: ten records
        # wait for the server four times, whatever the batch's size: BEGIN; the chain head
        # locked, with the new ids and the dedupe lookup; every row and the new head; COMMIT.
        assert batch_statements == []
        assert _round_trips(trace) == 4
    with engine.connect() as conn:
        ids = dict(conn.execute(select(archive.c.queue_id, archive.c.id)).all())
        assert [s.archive_id for s in stored] == [ids[r.queue_id] for r, _ in batch]
        assert [s.queue_id for s in stored] == [r.queue_id for r, _ in batch]
        entries = conn.execute(select(queue.c.archive_id, queue.c.kind, queue.c.recipients)).all()
        assert sorted(entries) == sorted(
            (ids[r.queue_id], item.kind, list(item.recipients))
            for r, items in batch
            for item in items
        )
        addressed = {
            (row.archive_id, row.role, row.address)
            for row in conn.execute(select(archive_addresses))
        }
        assert (ids["Q0007"], "envelope_to", "7p@volunteers.example") in addressed
        flagged = sorted(conn.execute(select(archive_findings.c.archive_id)).scalars())
        assert flagged == sorted(ids[f"Q{n:04d}"] for n in (3, 6, 9))
        head = conn.execute(select(chain_head.c.last_id, chain_head.c.last_hash)).one()
    assert head == (ids["Q0010"], _chain(engine)[-1][2])
    one_by_one.dispose()
    engine.dispose()


def test_dedupe_within_a_batch_and_against_the_archive(database_url: str):
    engine = _engine(database_url)
    store = Archive(engine)
    [earlier] = store.store_many([_record(1, "same-1@safe.example")])

    first, again_old, fresh, again_fresh, other = store.store_many(
        [
            _record(2, "new-2@safe.example"),
            _record(1, "same-1@safe.example"),  # archived before this batch
            _record(3, "new-3@safe.example"),
            _record(2, "new-2@safe.example"),  # earlier in this same batch
            _record(4, "new-4@safe.example"),
        ]
    )

    assert again_old == Stored(earlier.archive_id, "Q0001", duplicate=True)
    assert again_fresh == Stored(first.archive_id, "Q0002", duplicate=True)
    assert [first.duplicate, fresh.duplicate, other.duplicate] == [False, False, False]
    assert [q for q, _, _ in _chain(engine)] == ["Q0001", "Q0002", "Q0003", "Q0004"]
    with engine.connect() as conn:
        assert len(conn.execute(select(queue.c.id)).all()) == 2 * 4  # nothing queued twice
    assert verify(engine).ok
    engine.dispose()


def test_a_batch_of_only_duplicates_leaves_the_chain_head_alone(database_url: str):
    engine = _engine(database_url)
    store = Archive(engine)
    store.store(*_record(1))
    with engine.connect() as conn:
        before = conn.execute(select(chain_head)).one()
    assert store.store_many([_record(1), _record(1)])[1].duplicate
    with engine.connect() as conn:
        assert conn.execute(select(chain_head)).one() == before
    engine.dispose()


@pytest.mark.postgres
def test_pipelined_and_core_writers_share_one_archive(postgres_url: str):
    """A gateway of this version beside one that still writes through Core (a rolling upgrade),
    both writing at once: the ids the pipelined writer takes beforehand come from the same
    sequences an INSERT uses, under the same lock, so neither collides with the other and the
    chain stays whole and in id order."""
    engine = _engine(postgres_url)
    pipelined, core = Archive(engine), Archive(engine)
    core._pipelined = False  # what a writer through another driver, or an older gateway, does

    def write(store: Archive, start: int) -> list[Stored]:
        return [s for n in range(start, start + 40, 2) for s in store.store_many([_record(n)])]

    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(write, pipelined, 1), pool.submit(write, core, 2)]
        stored = [s for future in done for s in future.result()]

    ids = [s.archive_id for s in stored]
    assert len(set(ids)) == 40
    chain = _chain(engine)
    assert sorted(q for q, _, _ in chain) == [f"Q{n:04d}" for n in range(1, 41)]
    assert verify(engine).ok  # every link in id order
    with engine.connect() as conn:
        assert len(set(conn.execute(select(queue.c.id)).scalars())) == 2 * 40
    engine.dispose()


def test_a_failed_write_is_sqlalchemys_error_and_leaves_the_archive_usable(database_url: str):
    """On PostgreSQL the rows go on psycopg's own cursor: its errors still come out as
    SQLAlchemy's, as callers expect from Core, and the connection goes on working."""
    engine = _engine(database_url)
    store = Archive(engine)
    store.store(*_record(1))
    with pytest.raises(IntegrityError):  # the same queue id again, a new Message-ID
        store.store(*_record(1, "another@safe.example"))
    store.store(*_record(2))
    assert [q for q, _, _ in _chain(engine)] == ["Q0001", "Q0002"]
    assert verify(engine).ok
    engine.dispose()
