"""What the archive writer commits in one transaction (issue 7): the delivery worker's marks
with the records (one fsync for both, and neither fails the other), and on SQLite whatever
arrives while another process's writer holds the write lock."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from structlog.testing import capture_logs

from gateway.store.archive import Archive
from gateway.store.db import make_engine
from gateway.store.migrate import upgrade
from gateway.store.queue import QueueStore
from gateway.store.records import ArchiveRecord, Lease, QueueItem
from gateway.store.schema import archive, queue
from gateway.store.writer import ArchiveWriter, WriterStopped

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OWNER = "relay-1:100:w"


def _record(n: int, queue_id: str | None = None) -> ArchiveRecord:
    return ArchiveRecord(
        queue_id=queue_id or f"Q{n:04d}",
        received_at=NOW,
        raw=f"Subject: {n}\r\n\r\nbody {n}\r\n".encode(),
        verdict="deliver",
    )


def _deliver() -> list[QueueItem]:
    return [QueueItem(kind="deliver", mail_from="a@safe.example", recipients=("b@x.example",))]


class Held:
    """A writer whose first batch waits in `lease` until released, so that what is submitted
    meanwhile makes up its second batch."""

    def __init__(self, engine: Engine) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.writer = ArchiveWriter(Archive(engine), lease=self._lease)

    def second_batch(self, *rest: Coroutine[Any, Any, Any]) -> list[Any]:
        """Record 1 alone in the first batch, then `rest` (each one's result or error)."""

        async def run(writer: ArchiveWriter) -> list[Any]:
            first = asyncio.create_task(writer.submit(_record(1), _deliver()))
            await asyncio.to_thread(self.entered.wait, 10)
            tasks = [asyncio.ensure_future(a) for a in rest]
            await asyncio.sleep(0.05)  # each is queued to the writer
            self.release.set()
            return [await first, *await asyncio.gather(*tasks, return_exceptions=True)]

        return _run(self.writer, run)  # type: ignore[no-any-return]

    def _lease(self) -> Lease | None:
        if not self.release.is_set():
            self.entered.set()
            self.release.wait(10)
        return Lease(OWNER, NOW + timedelta(minutes=10))


def _sent(engine: Engine, count: int) -> list[int]:
    """Entries leased to OWNER, as if its worker had just sent them."""
    lease = Lease(OWNER, NOW + timedelta(minutes=10))
    stored = Archive(engine).store_many(
        [(_record(900 + n), _deliver()) for n in range(count)], lease=lease
    )
    return [entry.id for s in stored for entry in s.leased]


def _commits(engine: Engine) -> list[int]:
    counted: list[int] = []
    event.listen(engine, "commit", lambda conn: counted.append(1))
    return counted


def _status(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(queue.c.id, queue.c.status)).all())  # type: ignore[arg-type]


def _run(writer: ArchiveWriter, work: Callable[[ArchiveWriter], Awaitable[Any]]) -> Any:
    writer.start()
    try:
        return asyncio.run(asyncio.wait_for(work(writer), 10))
    finally:
        writer.stop()


def test_marks_ride_in_the_transaction_of_the_records_waiting_with_them(engine: Engine):
    sent = _sent(engine, 3)
    held = Held(engine)
    commits = _commits(engine)
    w = held.writer
    results = held.second_batch(
        w.submit(_record(2), _deliver()),
        w.mark_delivered(sent[:2], OWNER, NOW),
        w.mark_delivered(sent[2:], OWNER, NOW),
    )
    assert not any(isinstance(r, BaseException) for r in results)
    assert len(commits) == 2  # the first record alone; the second with both marks
    status = _status(engine)
    assert [status[i] for i in sent] == ["delivered"] * 3
    # What `/metrics` reports of group commit: 2 records in 2 transactions, none of marks alone.
    assert (w.records, w.transactions, w.mark_transactions) == (2, 2, 0)


def test_marks_with_no_record_waiting_are_committed_on_their_own(engine: Engine):
    sent = _sent(engine, 2)
    writer = ArchiveWriter(Archive(engine))
    _run(writer, lambda w: w.mark_delivered(sent, OWNER, NOW))
    assert [_status(engine)[i] for i in sent] == ["delivered"] * 2
    assert (writer.records, writer.transactions, writer.mark_transactions) == (0, 0, 1)


def test_marks_alone_wait_for_a_record_and_share_its_transaction(engine: Engine):
    """A transaction of marks alone was one in three under load: marks wait a little for a
    record, and the record, which an SMTP client waits for, ends the wait at once."""
    sent = _sent(engine, 2)
    commits = _commits(engine)

    async def work(writer: ArchiveWriter) -> float:
        await writer.submit(_record(1), _deliver())  # mail is coming in
        commits.clear()
        mark = asyncio.ensure_future(writer.mark_delivered(sent, OWNER, NOW))
        await asyncio.sleep(0.05)
        assert not mark.done()  # waiting for a record, well within mark_wait
        start = time.monotonic()
        await writer.submit(_record(2), _deliver())
        took = time.monotonic() - start
        await mark
        return took

    took = _run(ArchiveWriter(Archive(engine), mark_wait=5.0), work)
    assert took < 2.0  # the record was not held back for the marks' wait
    assert len(commits) == 1  # the marks with the record
    assert [_status(engine)[i] for i in sent] == ["delivered"] * 2


def test_with_no_mail_coming_in_marks_do_not_wait(engine: Engine):
    """A backlog going out after an outage, with no new mail: each sender waits for its mark
    before its next send, so a wait for a record that will not come would slow every send."""
    sent = _sent(engine, 1)

    async def work(writer: ArchiveWriter) -> float:
        start = time.monotonic()
        await writer.mark_delivered(sent, OWNER, NOW)
        return time.monotonic() - start

    assert _run(ArchiveWriter(Archive(engine), mark_wait=5.0), work) < 2.0
    assert _status(engine)[sent[0]] == "delivered"


def test_stopping_commits_the_marks_that_wait_for_a_record(engine: Engine):
    sent = _sent(engine, 1)
    writer = ArchiveWriter(Archive(engine), mark_wait=30.0)

    async def work(writer: ArchiveWriter) -> None:
        await writer.submit(_record(1), _deliver())  # mail is coming in
        mark = asyncio.ensure_future(writer.mark_delivered(sent, OWNER, NOW))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(writer.stop)
        await mark  # committed, not refused

    _run(writer, work)
    assert _status(engine)[sent[0]] == "delivered"


def test_a_mark_only_changes_an_entry_its_worker_still_holds(engine: Engine):
    """As `QueueStore.delivered_many`: another worker took the entry over when the lease ran
    out, so the mark of the first is not recorded for it."""
    sent = _sent(engine, 1)
    with capture_logs() as logs:
        _run(ArchiveWriter(Archive(engine)), lambda w: w.mark_delivered(sent, "another:1:w", NOW))
    assert _status(engine)[sent[0]] == "sending"
    # Said, for whoever looks into a message that reached its recipient twice.
    assert [e["entries"] for e in logs if e["event"] == "delivered_after_lease_lost"] == [1]


def test_a_record_that_cannot_be_stored_fails_neither_the_marks_nor_its_neighbours(
    engine: Engine,
):
    sent = _sent(engine, 1)
    held = Held(engine)
    w = held.writer
    results = held.second_batch(
        w.submit(_record(2, queue_id="Q0001"), _deliver()),  # taken by 1
        w.submit(_record(3), _deliver()),
        w.mark_delivered(sent, OWNER, NOW),
    )
    _, clash, third, marked = results
    assert isinstance(clash, Exception)
    assert not isinstance(third, BaseException) and marked is None
    # Record 1; then, the batch having failed, record 3 and the marks each on their own.
    assert (w.records, w.transactions, w.mark_transactions) == (2, 2, 1)
    assert _status(engine)[sent[0]] == "delivered"
    with engine.connect() as conn:
        stored = conn.execute(select(archive.c.queue_id).where(archive.c.id > 0)).scalars()
        assert {"Q0001", "Q0003"} <= set(stored)


def test_a_stopped_writer_takes_no_more_work(engine: Engine):
    """The gateway stops the writer before its delivery worker: the worker's last marks must
    be told to go elsewhere at once, not wait for a thread that has gone."""
    writer = ArchiveWriter(Archive(engine))
    writer.start()
    writer.stop()
    with pytest.raises(WriterStopped):
        asyncio.run(writer.mark_delivered([1], OWNER, NOW))
    with pytest.raises(WriterStopped):
        asyncio.run(writer.submit(_record(1), _deliver()))


def test_what_arrives_while_another_process_holds_the_write_lock_joins_the_waiting_batch(
    tmp_path: Path,
):
    """On SQLite the relay processes' writers take turns on one write lock: the records and
    marks that reach a writer while it waits for its turn go in that turn, not in a later one."""
    database = tmp_path / "archive.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    sent = _sent(engine, 2)
    other = os.open(f"{database}-writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(other, fcntl.LOCK_EX)  # another relay process's writer, mid-transaction
    writer = ArchiveWriter(Archive(engine), lease=lambda: Lease(OWNER, NOW + timedelta(minutes=10)))
    commits = _commits(engine)
    writer.start()

    async def run() -> list[Any]:
        first = asyncio.ensure_future(writer.submit(_record(1), _deliver()))
        await asyncio.sleep(0.05)  # the writer has it, and waits for the lock
        rest = [
            asyncio.ensure_future(writer.submit(_record(2), _deliver())),
            asyncio.ensure_future(writer.submit(_record(3), _deliver())),
            asyncio.ensure_future(writer.mark_delivered(sent, OWNER, NOW)),
        ]
        await asyncio.sleep(0.05)
        fcntl.flock(other, fcntl.LOCK_UN)
        return await asyncio.gather(first, *rest)

    try:
        results = asyncio.run(asyncio.wait_for(run(), 10))
    finally:
        writer.stop()
        os.close(other)
    assert [len(r.leased) for r in results[:3]] == [1, 1, 1]
    assert len(commits) == 1
    assert [_status(engine)[i] for i in sent] == ["delivered"] * 2
    engine.dispose()


def test_a_lease_that_cannot_be_had_leaves_the_records_stored_for_a_claim(engine: Engine):
    """The worker's lease is a convenience: if asking for it fails, the records are still
    committed (and answered), their entries left in the queue for a claim."""

    def broken() -> Lease | None:
        raise RuntimeError("no lease")

    stored = _run(
        ArchiveWriter(Archive(engine), lease=broken),
        lambda w: w.submit(_record(1), _deliver()),
    )
    assert stored.leased == () and stored.unleased
    assert list(_status(engine).values()) == ["queued"]


class _Fault(Exception):
    pass


def test_a_fault_in_the_writer_answers_its_batch_and_the_next_one_is_written(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    """A bug of ours in a batch must not leave its sessions waiting for ever (they answer
    451), nor stop the writer for the sessions after them."""
    writer = ArchiveWriter(Archive(engine))
    commit, faults = writer._commit, [1]

    def once(batch: object) -> None:
        if faults:
            faults.pop()
            raise _Fault("a bug")
        commit(batch)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_commit", once)

    async def two(w: ArchiveWriter) -> list[Any]:
        first = await asyncio.gather(w.submit(_record(1), _deliver()), return_exceptions=True)
        return [*first, await w.submit(_record(2), _deliver())]

    failed, stored = _run(writer, two)
    assert isinstance(failed, _Fault)
    assert stored.queue_id == "Q0002"


def test_a_writer_thread_that_ends_answers_what_it_held_and_refuses_the_rest(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    """Should the thread end for any reason, the sessions waiting on it get an answer (451)
    and the delivery worker, refused, marks its sends in a transaction of its own."""

    class Ended(BaseException):
        pass

    def end(batch: object) -> None:
        raise Ended

    writer = ArchiveWriter(Archive(engine))
    monkeypatch.setattr(writer, "_commit", end)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # its end is expected

    async def run(w: ArchiveWriter) -> list[Any]:
        held = await asyncio.gather(w.submit(_record(1), _deliver()), return_exceptions=True)
        later = await asyncio.gather(w.mark_delivered([1], OWNER, NOW), return_exceptions=True)
        return [*held, *later]

    held, later = _run(writer, run)
    assert isinstance(held, WriterStopped)
    assert isinstance(later, WriterStopped)


def test_marks_that_cannot_be_written_do_not_fail_the_record_beside_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    """The batch failed because of its marks: the one record in it is written again on its
    own (and stored), the marks' sender gets the error and records its send itself."""
    sent = _sent(engine, 1)
    held = Held(engine)

    def broken(*args: object, **kwargs: object) -> int:
        raise _Fault("the marks' UPDATE")

    monkeypatch.setattr(QueueStore, "delivered_on", broken)
    w = held.writer
    _, stored, marked = held.second_batch(
        w.submit(_record(2), _deliver()), w.mark_delivered(sent, OWNER, NOW)
    )
    assert isinstance(marked, _Fault)
    assert stored.queue_id == "Q0002" and len(stored.leased) == 1
