"""Group commit: many SMTP sessions' archive writes share one transaction and one fsync.

Sessions hand their record to a single writer thread and await the result; the thread takes
everything waiting, commits it in one transaction, and only then wakes each session to answer
`250`. Under load this is what makes "durable before the reply" cheap. The delivery worker's
sends that upstream accepted are marked delivered in the same transactions: one commit, not two.
"""

from __future__ import annotations

import asyncio
import queue as stdlib_queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import structlog
from sqlalchemy import Connection

from gateway.store.archive import Archive, Rows
from gateway.store.db import transaction
from gateway.store.queue import QueueStore
from gateway.store.records import ArchiveRecord, Lease, QueueEntry, QueueItem, Stored

log = structlog.get_logger("gateway.store.writer")


@dataclass
class _Job:
    record: ArchiveRecord
    items: Sequence[QueueItem]
    future: asyncio.Future[Stored]
    loop: asyncio.AbstractEventLoop
    answered: bool = False


@dataclass
class _Mark:
    entry_ids: Sequence[int]
    owner: str
    now: datetime
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop
    answered: bool = False


_STOP = object()

# Called on the submitting session's event loop after each commit: the entries written leased
# (to send now), and whether others wait in the queue to be claimed.
Committed = Callable[[list[QueueEntry], bool], None]


class WriterStopped(RuntimeError):
    """The writer takes no more work: the gateway is stopping (or its thread has ended)."""


def _no_lease() -> Lease | None:
    return None


def _ignore(entries: list[QueueEntry], unleased: bool) -> None:
    return None


class _Batch:
    """What one transaction commits: records, each with its rows prepared outside the write
    lock, and marks."""

    def __init__(self, archive: Archive, limit: int) -> None:
        self.archive = archive
        self.limit = limit
        self.jobs: list[_Job] = []
        self.rows: list[Rows] = []
        self.marks: list[_Mark] = []
        self.stop = False  # the writer's last batch

    def add(self, job: _Job | _Mark) -> None:
        if isinstance(job, _Mark):
            self.marks.append(job)
            return
        try:
            rows = self.archive.prepare(job.record, job.items)
        except Exception as exc:
            log.error("archive_write_failed", error=repr(exc), queue_id=job.record.queue_id)
            _answer(job, exc)
            return
        self.jobs.append(job)
        self.rows.append(rows)

    def take(
        self, jobs: stdlib_queue.SimpleQueue[_Job | _Mark | object], most: int | None = None
    ) -> None:
        """Adds what waits in `jobs` (`most` of them at a time), up to the limit, without
        waiting for more."""
        taken = 0
        while not self.stop and len(self.jobs) + len(self.marks) < self.limit:
            if most is not None and taken >= most:
                return
            taken += 1
            try:
                more = jobs.get_nowait()
            except stdlib_queue.Empty:
                return
            if more is _STOP:
                self.stop = True
            else:
                self.add(more)  # type: ignore[arg-type]


class ArchiveWriter:
    """`lease` (asked in the writer thread, once per batch) says whether the delivery worker
    takes this batch's entries straight from memory; `committed` hands them over. `index`, if
    given, is called in the writer thread every `index_interval` seconds, between batches:
    SQLite's full-text indexing, after the commit instead of in it (`gateway.store.fulltext`).
    Marks with no record beside them wait up to `mark_wait` seconds for one (`_await_record`).
    """

    def __init__(
        self,
        archive: Archive,
        *,
        max_batch: int = 64,
        lease: Callable[[], Lease | None] = _no_lease,
        committed: Committed = _ignore,
        index: Callable[[], int] | None = None,
        index_interval: float = 0.5,
        mark_wait: float = 0.02,
    ) -> None:
        self.archive = archive
        self.mark_wait = mark_wait
        # This thread's CPU seconds so far (commits, indexing), as of its last batch.
        self.cpu_seconds = 0.0
        # Transactions committed with records (marks beside them or not), with marks alone,
        # and the records: records per transaction is group commit's batch, which sets what
        # a record costs (`/metrics`, bench/throughput.py).
        self.transactions = 0
        self.mark_transactions = 0
        self.records = 0
        self._last_record = -float("inf")  # time.monotonic() when a record last came
        self.max_batch = max_batch
        self.lease = lease
        self.committed = committed
        self.index = index
        self.index_interval = index_interval
        self._index_due = 0.0
        self._jobs: stdlib_queue.SimpleQueue[_Job | _Mark | object] = stdlib_queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Guards `_open` and the queue's end: nothing is put after _STOP, so every job
        # accepted is committed before the thread ends.
        self._lock = threading.Lock()
        self._open = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._open = True
                self._thread = threading.Thread(
                    target=self._run, name="archive-writer", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._open = False
            if thread is not None:
                self._jobs.put(_STOP)
        if thread is not None:
            thread.join()

    @property
    def running(self) -> bool:
        """Whether work is taken (false before start, after stop, or once the thread ended)."""
        return self._open

    def _put(self, job: _Job | _Mark) -> None:
        with self._lock:
            if not self._open:
                raise WriterStopped("the archive writer is not running")
            self._jobs.put(job)

    async def submit(self, record: ArchiveRecord, items: Sequence[QueueItem]) -> Stored:
        """Returns once the record and its queue entries are committed; raises if they are not."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._put(_Job(record, items, future, loop))
        return await future

    async def mark_delivered(self, entry_ids: Sequence[int], owner: str, now: datetime) -> None:
        """`QueueStore.delivered_many`, committed with the next batch of records (or on its own
        when none comes within `mark_wait`) together with every other mark waiting: returns
        once committed, raises if not, and `WriterStopped` once the writer has stopped."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._put(_Mark(entry_ids, owner, now, future, loop))
        await future

    def _run(self) -> None:
        first: object = None
        batch = _Batch(self.archive, self.max_batch)
        try:
            while True:
                first = self._next()
                if first is _STOP:
                    return
                batch = _Batch(self.archive, self.max_batch)
                try:
                    batch.add(first)  # type: ignore[arg-type]
                    batch.take(self._jobs)
                    if batch.marks and not batch.jobs:
                        self._await_record(batch)
                    self._commit(batch)
                except Exception as exc:
                    # A fault of ours must not leave a session or a sender waiting for ever.
                    log.error("archive_writer_failed", error=repr(exc))
                    _answer_all([first, *batch.jobs, *batch.marks], exc)
                self.cpu_seconds = time.thread_time()
                if batch.stop:
                    return
        finally:
            # However the thread ends, nothing more is taken, and whatever was is answered:
            # a session gets 451, the delivery worker marks in a transaction of its own.
            with self._lock:
                self._open = False
            held = [first, *batch.jobs, *batch.marks]
            while True:
                try:
                    held.append(self._jobs.get_nowait())
                except stdlib_queue.Empty:
                    break
            _answer_all(held, WriterStopped("the archive writer has stopped"))

    def _await_record(self, batch: _Batch) -> None:
        """Marks alone wait up to `mark_wait` seconds for a record to commit with, and take
        every mark that comes meanwhile: under load a transaction of marks alone (BEGIN,
        UPDATE, COMMIT, an fsync) was one in three. Only the delivery worker's senders wait
        for them, not an SMTP client; a record ends the wait at once. With no record in the
        last `10 * mark_wait` seconds (a backlog going out after an outage, overnight) none
        is likely to come, and a sender waits for its mark before its next send: no wait."""
        now = time.monotonic()
        if now - self._last_record > 10 * self.mark_wait:
            return
        deadline = now + self.mark_wait
        while not batch.stop and len(batch.marks) < batch.limit:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return
            try:
                more = self._jobs.get(timeout=wait)
            except stdlib_queue.Empty:
                return
            if more is _STOP:
                batch.stop = True
                return
            batch.add(more)  # type: ignore[arg-type]
            if batch.jobs:
                batch.take(self._jobs)
                return

    def _next(self) -> _Job | _Mark | object:
        """The next job, indexing full text whenever it is due meanwhile."""
        if self.index is None:
            return self._jobs.get()
        while True:
            wait = self._index_due - time.monotonic()
            if wait <= 0:
                self._index_due = time.monotonic() + self.index_interval
                try:
                    self.index()
                except Exception as exc:  # the rows wait; a search brings the index up to date
                    log.error("fulltext_index_failed", error=repr(exc))
                self.cpu_seconds = time.thread_time()
                continue
            try:
                return self._jobs.get(timeout=wait)
            except stdlib_queue.Empty:
                continue

    def _commit(self, batch: _Batch) -> None:
        jobs, marks = batch.jobs, batch.marks
        if not jobs and not marks:  # its one record could not be prepared (already answered)
            return
        if jobs:
            self._last_record = time.monotonic()
        results: list[Stored | BaseException] = []
        marked: BaseException | None = None
        try:
            # While another process's writer holds the write lock, what comes meanwhile joins
            # this batch: the wait gathers a bigger batch instead of costing it a turn more.
            # One at a time, so that the lock is tried again between them.
            waiting = partial(batch.take, self._jobs, 1)
            with transaction(self.archive.engine, waiting=waiting) as conn:
                # Marks first: on PostgreSQL, before the records lock the chain head.
                if marks:
                    _write_marks(conn, marks)
                if jobs:
                    results = list(self.archive.write(conn, batch.rows, self._lease()))
            self._count(len(jobs), 1 if jobs else 0, 0 if jobs else 1)
        except Exception as exc:
            # Whichever part failed, the rest must not: the marks on their own, then each record.
            marked = self._mark_alone(marks) if marks else None
            # A record that failed alone has its answer; one beside marks may not have failed.
            alone = exc if not marks else None
            results = self._store_each(jobs, self._lease() if jobs else None, alone)
            stored = sum(isinstance(result, Stored) for result in results)
            self._count(stored, stored, 1 if marks and marked is None else 0)
        # Hand the entries over before any session answers, so that none is left leased and
        # unsent because its client went away (the lease would hold it until it ran out).
        handed: dict[asyncio.AbstractEventLoop, list[QueueEntry]] = {}
        unleased: set[asyncio.AbstractEventLoop] = set()
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, Stored) and not result.duplicate:
                handed.setdefault(job.loop, []).extend(result.leased)
                if result.unleased:
                    unleased.add(job.loop)
        for loop, entries in handed.items():
            _call_soon(loop, self.committed, entries, loop in unleased)
        for job, result in zip(jobs, results, strict=True):
            _answer(job, result)
        for mark in marks:
            _answer(mark, marked)

    def _count(self, records: int, transactions: int, mark_transactions: int) -> None:
        self.records += records
        self.transactions += transactions
        self.mark_transactions += mark_transactions

    def _lease(self) -> Lease | None:
        try:
            return self.lease()
        except Exception as exc:  # the entries then wait for a claim
            log.error("archive_writer_lease_failed", error=repr(exc))
            return None

    def _store_each(
        self, jobs: list[_Job], lease: Lease | None, alone: Exception | None
    ) -> list[Stored | BaseException]:
        """After a batch failed: one bad record must not fail its neighbours. `alone`: the
        error of a batch that was this one record and nothing else, not tried again."""
        if len(jobs) == 1 and alone is not None:
            log.error("archive_write_failed", error=repr(alone), queue_id=jobs[0].record.queue_id)
            return [alone]
        results: list[Stored | BaseException] = []
        for job in jobs:
            try:
                results.append(self.archive.store(job.record, job.items, lease=lease))
            except Exception as single:
                log.error("archive_write_failed", error=repr(single), queue_id=job.record.queue_id)
                results.append(single)
        return results

    def _mark_alone(self, marks: list[_Mark]) -> BaseException | None:
        try:
            with transaction(self.archive.engine) as conn:
                _write_marks(conn, marks)
        except Exception as exc:
            log.error("queue_outcome_write_failed", error=repr(exc), entries=len(marks))
            return exc
        return None


def _write_marks(conn: Connection, marks: list[_Mark]) -> None:
    """One UPDATE per worker for every mark of the batch."""
    by_owner: dict[str, tuple[list[int], datetime]] = {}
    for mark in marks:
        ids, latest = by_owner.setdefault(mark.owner, ([], mark.now))
        ids.extend(mark.entry_ids)
        by_owner[mark.owner] = (ids, max(latest, mark.now))
    for owner, (ids, now) in by_owner.items():
        QueueStore.delivered_on(conn, ids, owner, now)


def _answer_all(jobs: Sequence[object], result: BaseException) -> None:
    for job in jobs:
        if isinstance(job, _Job | _Mark) and not job.answered:
            _answer(job, result)


def _answer(job: _Job | _Mark, result: object) -> None:
    job.answered = True
    _call_soon(job.loop, _resolve, job.future, result)


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object
) -> None:
    """A loop that closed meanwhile (its process is stopping) must not end this thread, which
    serves every other loop's sessions too."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError as exc:
        log.warning("archive_writer_loop_closed", error=repr(exc))


def _resolve(future: asyncio.Future[Any], result: object) -> None:
    if future.cancelled():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
