"""Group commit: many SMTP sessions' archive writes share one transaction and one fsync.

Sessions hand their record to a single writer thread and await the result; the thread takes
everything waiting, commits it in one transaction, and only then wakes each session to answer
`250`. Under load this is what makes "durable before the reply" cheap.
"""

from __future__ import annotations

import asyncio
import queue as stdlib_queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from gateway.store.archive import Archive
from gateway.store.records import ArchiveRecord, Lease, QueueEntry, QueueItem, Stored

log = structlog.get_logger("gateway.store.writer")


@dataclass
class _Job:
    record: ArchiveRecord
    items: Sequence[QueueItem]
    future: asyncio.Future[Stored]
    loop: asyncio.AbstractEventLoop


_STOP = object()

# Called on the submitting session's event loop after each commit: the entries written leased
# (to send now), and whether others wait in the queue to be claimed.
Committed = Callable[[list[QueueEntry], bool], None]


def _no_lease() -> Lease | None:
    return None


def _ignore(entries: list[QueueEntry], unleased: bool) -> None:
    return None


class ArchiveWriter:
    """`lease` (asked in the writer thread, once per batch) says whether the delivery worker
    takes this batch's entries straight from memory; `committed` hands them over."""

    def __init__(
        self,
        archive: Archive,
        *,
        max_batch: int = 64,
        lease: Callable[[], Lease | None] = _no_lease,
        committed: Committed = _ignore,
    ) -> None:
        self.archive = archive
        self.max_batch = max_batch
        self.lease = lease
        self.committed = committed
        self._jobs: stdlib_queue.SimpleQueue[_Job | object] = stdlib_queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="archive-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join()
            self._thread = None

    async def submit(self, record: ArchiveRecord, items: Sequence[QueueItem]) -> Stored:
        """Returns once the record and its queue entries are committed; raises if they are not."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._jobs.put(_Job(record, items, future, loop))
        return await future

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._jobs.get_nowait()
                except stdlib_queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.append(more)
            self._commit([job for job in batch if isinstance(job, _Job)])
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> None:
        lease = self.lease()
        try:
            results: list[Stored | BaseException] = list(
                self.archive.store_many([(job.record, job.items) for job in jobs], lease=lease)
            )
        except Exception as exc:
            if len(jobs) == 1:
                log.error("archive_write_failed", error=repr(exc), queue_id=jobs[0].record.queue_id)
                results = [exc]
            else:
                # One bad record must not fail its neighbours: retry each on its own.
                results = []
                for job in jobs:
                    try:
                        results.append(self.archive.store(job.record, job.items, lease=lease))
                    except Exception as single:
                        log.error(
                            "archive_write_failed", error=repr(single), queue_id=job.record.queue_id
                        )
                        results.append(single)
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


def _resolve(future: asyncio.Future[Stored], result: Stored | BaseException) -> None:
    if future.cancelled():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
