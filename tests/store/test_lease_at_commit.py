"""Entries written already leased (issue 7): the relay's worker is handed what it committed, with
no claim transaction between the commit and the send; what it is handed is exactly what a claim
would have read back, and what is held for later still waits in the queue."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from gateway.store.archive import Archive
from gateway.store.db import make_engine
from gateway.store.migrate import upgrade
from gateway.store.queue import QueueStore
from gateway.store.records import ArchiveRecord, Lease, QueueItem, utc_naive
from gateway.store.schema import queue

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _record(n: int, message_id: str | None = None) -> ArchiveRecord:
    return ArchiveRecord(
        queue_id=f"Q{n:04d}",
        received_at=NOW,
        raw=f"Subject: {n}\r\n\r\nbody {n}\r\n".encode(),
        verdict="deliver",
        message_id=message_id,
    )


def _deliver(rcpt: str, **kwargs: object) -> QueueItem:
    return QueueItem(kind="deliver", mail_from="a@safe.example", recipients=(rcpt,), **kwargs)  # type: ignore[arg-type]


def test_entries_due_now_come_back_leased_as_a_claim_would_read_them(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    archive = Archive(engine)
    lease = Lease("relay-1", NOW + timedelta(minutes=10))
    stored = archive.store_many(
        [
            (_record(1), [_deliver("b@x.example", prefix=b"X-Stamp: 1\r\n")]),
            (
                _record(2),
                [
                    _deliver("c@x.example"),
                    # A notice with its own content, and one held until the morning.
                    QueueItem(
                        kind="notice",
                        mail_from="",
                        recipients=("dsl@safe.example",),
                        content=b"Subject: notice\r\n\r\nn\r\n",
                    ),
                    _deliver("d@x.example", not_before=NOW + timedelta(hours=12)),
                ],
            ),
        ],
        lease=lease,
    )

    assert [len(s.leased) for s in stored] == [1, 2]
    assert [s.unleased for s in stored] == [False, True]
    handed = {e.id: e for s in stored for e in s.leased}
    with engine.connect() as conn:
        rows = conn.execute(select(queue).order_by(queue.c.id)).all()
    assert [(r.status, r.lease_owner) for r in rows] == [("sending", "relay-1")] * 3 + [
        ("queued", None)
    ]
    assert set(handed) == {r.id for r in rows[:3]}

    # What a claim reads back for the same rows (once their lease has run out) is the same.
    later = NOW + timedelta(minutes=11)
    claimed = {e.id: e for e in QueueStore(engine).claim("other", later, limit=10)}
    assert set(claimed) == set(handed)
    for entry_id, entry in handed.items():
        assert entry.lease_until == utc_naive(lease.until)
        assert claimed[entry_id].lease_until == utc_naive(later) + timedelta(minutes=10)
        assert replace(entry, lease_until=None) == replace(claimed[entry_id], lease_until=None)
    assert handed[rows[0].id].body == b"X-Stamp: 1\r\nSubject: 1\r\n\r\nbody 1\r\n"
    assert handed[rows[2].id].body == b"Subject: notice\r\n\r\nn\r\n"
    engine.dispose()


def test_a_resend_already_archived_is_handed_nothing(database_url: str):
    """A client's resend after a lost 250 is recognised: nothing new is queued or sent."""
    engine = make_engine(database_url)
    upgrade(engine)
    archive = Archive(engine)
    lease = Lease("relay-1", NOW + timedelta(minutes=10))
    first = archive.store(_record(1, "m1@safe.example"), [_deliver("b@x.example")], lease=lease)
    again = archive.store_many(
        [
            (_record(1, "m1@safe.example"), [_deliver("b@x.example")]),
            (_record(2, "m2@safe.example"), [_deliver("b@x.example")]),
            (_record(2, "m2@safe.example"), [_deliver("b@x.example")]),
        ],
        lease=lease,
    )
    assert len(first.leased) == 1
    assert [(s.duplicate, len(s.leased)) for s in again] == [(True, 0), (False, 1), (True, 0)]
    engine.dispose()


def test_without_a_lease_entries_wait_for_a_claim(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    stored = Archive(engine).store(_record(1), [_deliver("b@x.example")])
    assert stored.leased == () and stored.unleased
    assert [e.queue_id for e in QueueStore(engine).claim("w", NOW)] == ["Q0001"]
    engine.dispose()


def test_the_writer_hands_over_what_it_committed_even_when_the_session_is_gone(
    database_url: str,
):
    """The writer hands the entries over itself, not the session: a client that went away
    while its mail was being committed leaves nothing leased to this worker and unsent."""
    import asyncio

    from gateway.store.writer import ArchiveWriter

    engine = make_engine(database_url)
    upgrade(engine)
    handed: list[tuple[list[str], bool]] = []

    def committed(entries: list, unleased: bool) -> None:  # type: ignore[type-arg]
        handed.append((sorted(e.queue_id for e in entries), unleased))

    writer = ArchiveWriter(
        Archive(engine),
        lease=lambda: Lease("relay-1", NOW + timedelta(minutes=10)),
        committed=committed,
    )
    writer.start()

    async def run() -> None:
        sessions = [
            asyncio.create_task(writer.submit(_record(n), [_deliver("b@x.example")]))
            for n in range(1, 4)
        ]
        await asyncio.sleep(0)  # each job is queued to the writer
        sessions[1].cancel()  # its client disconnected
        await asyncio.gather(*sessions, return_exceptions=True)
        while sum(len(ids) for ids, _ in handed) < 3:
            await asyncio.sleep(0.01)

    try:
        asyncio.run(asyncio.wait_for(run(), 10))
    finally:
        writer.stop()
        engine.dispose()
    assert sorted(q for ids, _ in handed for q in ids) == ["Q0001", "Q0002", "Q0003"]
    assert not any(unleased for _, unleased in handed)


def test_leases_of_this_hosts_dead_processes_run_out_at_start(database_url: str):
    """A gateway killed with mail leased to it: at the next start, what it held goes out at
    the first claim instead of after `[delivery] lease` (10 minutes). Only this host's
    processes can be known dead; a live one's lease, and another host's, are left alone."""
    import os
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(child.stdout)
    engine = make_engine(database_url)
    upgrade(engine)
    archive = Archive(engine)
    until = NOW + timedelta(minutes=10)
    for n, owner in enumerate(
        (f"gw1:{dead_pid}:a1", f"gw1:{os.getpid()}:b2", f"gw2:{dead_pid}:c3"), start=1
    ):
        archive.store(_record(n), [_deliver("b@x.example")], lease=Lease(owner, until))
    store = QueueStore(engine)

    def alive(pid: int) -> bool:
        return pid != dead_pid

    assert store.release_dead("gw1", NOW + timedelta(minutes=1), alive) == 1
    claimed = store.claim("gw1:999:new", NOW + timedelta(minutes=1), limit=10)
    assert [e.queue_id for e in claimed] == ["Q0001"]
    assert store.release_dead("gw1", NOW + timedelta(minutes=1), alive) == 0
    engine.dispose()
