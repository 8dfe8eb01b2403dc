"""The delivery worker marks finished sends delivered in batches (issue 7): one transaction for
many, and still only entries this worker holds the lease on."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, event, select

from gateway.store import db
from gateway.store.archive import Archive
from gateway.store.db import make_engine, transaction
from gateway.store.migrate import upgrade
from gateway.store.queue import QueueStore
from gateway.store.records import ArchiveRecord, QueueItem
from gateway.store.schema import meta, queue

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _filled(url: str, count: int) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    Archive(engine).store_many(
        [
            (
                ArchiveRecord(
                    queue_id=f"Q{n:04d}",
                    received_at=NOW,
                    raw=f"Subject: {n}\r\n\r\nx\r\n".encode(),
                    verdict="deliver",
                    message_id=f"q{n}@safe.example",
                ),
                [
                    QueueItem(
                        kind="deliver", mail_from="a@safe.example", recipients=("b@x.example",)
                    )
                ],
            )
            for n in range(count)
        ]
    )
    return engine


def _statuses(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(queue.c.id, queue.c.status, queue.c.lease_owner)).all()
    return {row.id: (row.status, row.lease_owner) for row in rows}


def test_delivered_many_marks_a_batch_in_one_transaction(database_url: str):
    engine = _filled(database_url, 6)
    store = QueueStore(engine)
    mine = [e.id for e in store.claim("w1", NOW, limit=4)]
    theirs = [e.id for e in store.claim("w2", NOW, limit=4)]
    assert len(mine) == 4 and len(theirs) == 2
    # One of "mine" was meanwhile taken over by another worker (its lease ran out): not ours.
    with engine.begin() as conn:
        conn.execute(queue.update().where(queue.c.id == mine[0]).values(lease_owner="w3"))
    commits: list[object] = []
    event.listen(engine, "commit", commits.append)
    changed = store.delivered_many([*mine, theirs[0]], "w1", NOW + timedelta(seconds=1))

    assert changed == 3
    assert len(commits) == 1
    statuses = _statuses(engine)
    assert [statuses[i] for i in mine] == [("sending", "w3")] + [("delivered", None)] * 3
    assert [statuses[i] for i in theirs] == [("sending", "w2")] * 2
    assert store.delivered_many([], "w1", NOW) == 0
    engine.dispose()


def _hold_the_lock(path: str, seconds: float, ready: multiprocessing.synchronize.Event) -> None:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        ready.set()
        time.sleep(seconds)


def test_sqlite_writers_queue_on_a_lock_file_beside_the_database(tmp_path: Path, monkeypatch):
    """Another process's writer holds the lock file: ours waits for it (not in SQLite's busy
    handler), and goes in as soon as it is released; one that cannot get it in time goes on
    without it, SQLite's own lock deciding as before."""
    database = tmp_path / "archive.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    lock_file = f"{database}-writer-lock"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_the_lock, args=(lock_file, 0.6, ready))
    holder.start()
    try:
        assert ready.wait(30)
        started = time.monotonic()
        with transaction(engine) as conn:
            waited = time.monotonic() - started
            conn.execute(meta.insert().values(key="k", value="v", updated_at=NOW))
    finally:
        holder.join(30)
    assert 0.3 < waited < 5
    assert os.path.exists(lock_file)

    ready = context.Event()
    holder = context.Process(target=_hold_the_lock, args=(lock_file, 3.0, ready))
    holder.start()
    monkeypatch.setattr(db, "_WAIT", 0.2)
    try:
        assert ready.wait(30)
        started = time.monotonic()
        with transaction(engine) as conn:
            conn.execute(meta.update().values(value="w"))
        assert time.monotonic() - started < 2.0
    finally:
        holder.join(30)
    engine.dispose()
