"""The queue worker: sends due entries upstream, retries with backoff, bounces failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import jinja2
import structlog
from sqlalchemy import Connection

from gateway.clock import Clock
from gateway.config import DeliverySettings
from gateway.delivery.transports import Outcome, Transport
from gateway.ids import new_queue_id
from gateway.notify.delivery import delivery_failure
from gateway.notify.dsn import RecipientStatus
from gateway.store.archive import Archive
from gateway.store.db import transaction
from gateway.store.queue import QueueStore
from gateway.store.records import (
    ArchiveRecord,
    Lease,
    QueueEntry,
    QueueItem,
    Stored,
    as_aware,
    utc_naive,
)
from gateway.store.writer import WriterStopped

log = structlog.get_logger("gateway.delivery")

CLAIM_FAILURE_LOG_EVERY = 60.0  # seconds between log lines while claims keep failing

_T = TypeVar("_T")

# Seconds before its lease ends that a send is stopped (at most a tenth of the lease): the
# outcome must still be recorded while the entry is this worker's.
LEASE_SPARE = 5.0


def backoff(attempts: int, settings: DeliverySettings) -> float:
    """Postfix's schedule: double from retry_min each attempt, capped at retry_max."""
    return float(min(settings.retry_max, settings.retry_min * (2 ** max(0, attempts))))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        return True
    return True


def _errors(outcomes: dict[str, Outcome]) -> str:
    """What the queue keeps of upstream's answers (`last_error`), one recipient after another."""
    return "; ".join(f"{r}: {o.code} {o.text}" for r, o in outcomes.items())[:2000]


def _enhanced(outcome: Outcome) -> str:
    parts = outcome.text.split(" ", 1)[0].split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return ".".join(parts)
    return f"{str(outcome.code)[0]}.0.0"


class DeliveryWorker:
    def __init__(
        self,
        *,
        queue: QueueStore,
        archive: Archive,
        transport_factory: Callable[[], Transport],
        settings: DeliverySettings,
        templates: jinja2.Environment,
        clock: Clock,
        hostname: str,
        commit_delivered: Callable[[Sequence[int], str, datetime], Awaitable[None]] | None = None,
    ) -> None:
        """`commit_delivered` (the relay's `ArchiveWriter.mark_delivered`) marks sends delivered
        in the archive writer's next transaction instead of one of their own."""
        self.queue = queue
        self.archive = archive
        self.transport_factory = transport_factory
        self.settings = settings
        self.templates = templates
        self.clock = clock
        self.hostname = hostname
        self.commit_delivered = commit_delivered
        # queue.lease_owner holds 64 characters: a long host name is cut, not the insert failed.
        self.host = socket.gethostname()[:40]
        self.owner = f"{self.host}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running = False
        self._finished = False
        # The gateway's own notices (alerts, bounces) upstream refused for good, by kind: an
        # upstream that refuses the null sender (Microsoft 365 over SMTP AUTH) drops them all.
        self.notices_lost: Counter[str] = Counter()
        self._claim_failures = 0  # claims failed in a row (the database away)
        self._claim_logged = 0.0  # the loop's time when that was last logged
        # Recipients by (kind, what upstream's answer came to), for alerting on deferrals and
        # refusals: the queue's own gauge is the shared database's, the same on every gateway.
        self.outcomes: Counter[tuple[str, str]] = Counter()
        # Look in the database for due entries: at start, on `wake`, and at least once per
        # poll interval however busy the hand-over is (retries, holds come due, other
        # processes' expired leases, entries left unleased).
        self._claim_due = True
        # Entries written already leased to this worker, handed over after their commit.
        self._handed: deque[QueueEntry] = deque()
        # Beyond this many handed entries waiting for a sender (upstream slower than intake),
        # new ones stay in the queue unleased, for whichever worker is free to claim them.
        self._handed_limit = settings.workers * 4
        # Sends upstream has accepted, not yet marked delivered; and the task marking them.
        self._done: list[tuple[int, datetime, asyncio.Future[None]]] = []
        self._marking: asyncio.Task[None] | None = None
        # Each claim is a write transaction (an fsync, and the database lock on SQLite): take
        # enough per claim that claiming costs little per message under load.
        self._claim_size = max(16, settings.workers * 2)

    def release_dead(self) -> None:
        """At start: what processes of this host that died (kill -9, a crash) still held goes
        out at the first claim, not after `[delivery] lease` seconds."""
        try:
            released = self.queue.release_dead(self.host, self.clock.now(), _process_alive)
        except Exception as exc:  # the lease still runs out; not worth refusing to start
            log.error("lease_release_failed", error=repr(exc))
            return
        if released:
            log.warning("leases_of_dead_processes_released", entries=released)

    def wake(self) -> None:
        """Called after something was queued so it goes out now, not at the next poll."""
        self._claim_due = True
        self._wake.set()

    def lease(self) -> Lease | None:
        """Asked by the archive writer (in its thread) before each commit: lease the new
        entries to this worker, to be handed over in memory, unless it is not running or
        already has enough waiting."""
        if not self._running or self._stopping.is_set() or len(self._handed) >= self._handed_limit:
            return None
        return Lease(self.owner, self.clock.now() + timedelta(seconds=self.settings.lease))

    def committed(self, entries: list[QueueEntry], unleased: bool) -> None:
        """After a commit (on the event loop): send `entries` now; claim the rest."""
        if self._finished and entries:  # the gateway stops the writer first: not expected
            log.warning(
                "handed_after_stop",
                queue_ids=[e.queue_id for e in entries],
                note="sent once their lease runs out",
            )
            return
        self._handed.extend(entries)
        if unleased:
            self._claim_due = True
        if entries or unleased:
            self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        work: asyncio.Queue[QueueEntry | None] = asyncio.Queue(maxsize=self.settings.workers * 2)
        senders = [
            asyncio.create_task(self._sender(work), name=f"sender-{i}")
            for i in range(self.settings.workers)
        ]
        self._running = True
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        try:
            while not self._stopping.is_set():
                if loop.time() >= next_poll:
                    self._claim_due = True
                # One handed entry, then a claim when due: neither starves the other.
                if self._handed:
                    await work.put(self._handed.popleft())
                if self._claim_due:
                    self._claim_due = False
                    next_poll = loop.time() + self.settings.poll_interval
                    try:
                        entries = await asyncio.to_thread(
                            self.queue.claim, self.owner, self.clock.now(), self._claim_size
                        )
                    except Exception as exc:  # database away: keep the worker alive, try again
                        self._claim_failed(exc, loop.time())
                        entries = []
                    else:
                        self._claim_failures = 0
                    for entry in entries:
                        await work.put(entry)
                    if entries:  # there may be more due
                        self._claim_due = True
                    continue
                if self._handed:
                    continue
                self._wake.clear()
                if self._handed or self._claim_due or self._stopping.is_set():
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_poll - loop.time()))
        finally:
            self._running = False
            # Entries already leased to this worker go out before it stops, as claimed ones do.
            while self._handed:
                await work.put(self._handed.popleft())
            for _ in senders:
                await work.put(None)
            await asyncio.gather(*senders, return_exceptions=True)
            if self._marking is not None:
                await self._marking
            self._finished = True

    async def _sender(self, work: asyncio.Queue[QueueEntry | None]) -> None:
        transport: Transport | None = None
        try:
            while (entry := await work.get()) is not None:
                try:
                    # Made here, not before the loop: a sender that could not make one would
                    # end, and entries would wait in `work` for a sender that never comes.
                    if transport is None:
                        transport = self.transport_factory()
                    await self.deliver(entry, transport)
                except Exception as exc:
                    # The lease runs out and another attempt picks the entry up again.
                    log.error("delivery_crashed", queue_id=entry.queue_id, error=repr(exc))
        finally:
            if transport is not None:
                await transport.close()

    def _claim_failed(self, exc: Exception, now: float) -> None:
        """Logged at once, then once a minute while it lasts, with how many tries failed: a
        database away for an hour was an error line every second from every gateway."""
        self._claim_failures += 1
        if self._claim_failures == 1 or now - self._claim_logged >= CLAIM_FAILURE_LOG_EVERY:
            self._claim_logged = now
            log.error("queue_claim_failed", error=repr(exc), failures=self._claim_failures)

    async def deliver(self, entry: QueueEntry, transport: Transport) -> None:
        if self._lease_nearly_out(entry):
            # It waited in memory (upstream slower than intake) until another worker may take
            # it over: sending now could send it twice. Left to the next claim, ours or theirs.
            log.warning("lease_ran_out_before_send", queue_id=entry.queue_id)
            return
        outcomes = await self._send_within_lease(entry, transport)
        now = self.clock.now()
        delivered = [r for r, o in outcomes.items() if o.delivered]
        permanent = {r: o for r, o in outcomes.items() if o.permanent}
        pending = {r: o for r, o in outcomes.items() if not o.delivered and not o.permanent}
        expired = bool(pending) and now >= as_aware(entry.expires_at)
        # An admin filtering on warning and above must see upstream trouble: a refusal, or a
        # deferral the lifetime has run out on, bounces (error); a deferral retries (warning).
        kind = entry.kind
        self.outcomes[kind, "delivered"] += len(delivered)
        self.outcomes[kind, "refused"] += len(permanent)
        self.outcomes[kind, "expired" if expired else "deferred"] += len(pending)
        if permanent or expired:
            level = logging.ERROR
        elif pending:
            level = logging.WARNING
        else:
            level = logging.INFO
        log.log(
            level,
            "delivery_attempt",
            queue_id=entry.queue_id,
            kind=entry.kind,
            attempt=entry.attempts + 1,
            delivered=len(delivered),
            refused=len(permanent),
            deferred=len(pending),
            expired=expired,
            # The reply that explains the trouble, not a 250 for another recipient.
            reply=next(
                (
                    o.text[:200]
                    for o in (*permanent.values(), *pending.values(), *outcomes.values())
                ),
                "",
            ),
        )
        if pending and not expired:
            retry = {
                "at": now + timedelta(seconds=backoff(entry.attempts, self.settings)),
                "error": _errors(pending),
                "recipients": list(pending),
            }
            if permanent:
                outcome = partial(
                    QueueStore.retry_later_on, entry_id=entry.id, owner=self.owner, **retry
                )
                await self._settle(entry, permanent, expired=False, now=now, outcome=outcome)
            else:
                await self._record(self.queue.retry_later, entry.id, self.owner, **retry)
            return
        failures = dict(permanent)
        if expired:
            failures.update(
                {
                    r: Outcome(o.code, f"4.4.7 delivery time expired: {o.text}")
                    for r, o in pending.items()
                }
            )
        if not failures:
            await self._mark_delivered(entry.id, now)
            return
        error = _errors(failures)
        settle = QueueStore.partly_delivered_on if delivered else QueueStore.failed_on
        finish = partial(settle, entry_id=entry.id, owner=self.owner, now=now, error=error)
        await self._settle(entry, failures, expired=expired, now=now, outcome=finish)

    async def _send_within_lease(
        self, entry: QueueEntry, transport: Transport
    ) -> dict[str, Outcome]:
        """A send still going when the lease ends could cross another worker's send of the
        same entry: it is stopped a little before (upstream slow or stalled) and retried."""
        left = None
        if entry.lease_until is not None:
            spare = min(LEASE_SPARE, self.settings.lease / 10)
            now = utc_naive(self.clock.now())
            left = max((entry.lease_until - now).total_seconds() - spare, 0.0)
        try:
            async with asyncio.timeout(left):
                return await transport.send(entry.mail_from, entry.recipients, entry.body)
        except TimeoutError:
            await transport.close()  # the session stopped mid-transaction
            log.warning("send_outlasted_lease", queue_id=entry.queue_id, seconds=left)
            answer = Outcome(451, "4.4.2 upstream did not finish within the entry's lease")
            return {rcpt: answer for rcpt in entry.recipients}

    def _lease_nearly_out(self, entry: QueueEntry) -> bool:
        """In the lease's last quarter a send might not finish before it ends."""
        if entry.lease_until is None:
            return False
        margin = timedelta(seconds=self.settings.lease / 4)
        return utc_naive(self.clock.now()) >= entry.lease_until - margin

    async def _mark_delivered(self, entry_id: int, now: datetime) -> None:
        """Group commit for outcomes: upstream has answered 250, so the entry is marked
        delivered together with those the other senders finished meanwhile, one transaction
        for all. The sender waits for that commit before it takes its next entry, so a kill
        finds at most one message per sender accepted upstream and not yet marked (the lease
        runs out and it is sent again: a duplicate, never a loss).

        In the relay the archive writer commits the mark, with the records and every other
        sender's mark then waiting (marks alone wait up to 20 ms for a record while mail is
        coming in): no transaction of its own, and none waited for in turn."""
        if self.commit_delivered is not None:
            try:
                await self.commit_delivered([entry_id], self.owner, now)
                return
            except WriterStopped:  # the gateway is stopping: a transaction of its own
                pass
            except Exception as exc:
                log.warning("queue_outcome_retried", outcome="delivered_many", error=repr(exc))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done.append((entry_id, now, future))
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_done(), name="mark-delivered")
        await future

    async def _mark_done(self) -> None:
        while self._done:
            batch, self._done = self._done, []
            try:
                await self._record(
                    self.queue.delivered_many,
                    [entry_id for entry_id, _, _ in batch],
                    self.owner,
                    max(now for _, now, _ in batch),
                )
            except Exception as exc:  # as before: the sender logs it, the lease runs out
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def _record(self, outcome: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Records a send's outcome in the queue, trying once more if that fails: a pooled
        connection lost while in use fails the transactions in flight on it, and an outcome
        left unrecorded would send the message again (and bounce again) once the lease ran
        out. Each is safe to repeat: it changes the entry only while this worker holds its
        lease, and gives the lease up when it does."""
        try:
            return await asyncio.to_thread(outcome, *args, **kwargs)
        except Exception as exc:
            name = getattr(outcome, "__name__", "outcome")
            log.warning("queue_outcome_retried", outcome=name, error=repr(exc))
            return await asyncio.to_thread(outcome, *args, **kwargs)

    async def _settle(
        self,
        entry: QueueEntry,
        failures: dict[str, Outcome],
        *,
        expired: bool,
        now: datetime,
        outcome: Callable[[Connection], int],
    ) -> None:
        """Records a send's outcome and the bounce it owes the sender in ONE transaction.

        Apart, a bounce committed before an outcome that then failed to record would be sent
        again with the entry once its lease ran out (to every recipient, those that had
        accepted it too). Here neither is written without the other, and neither once the
        lease is lost: whoever holds the entry then settles it, and bounces it."""
        bounce = self._bounce(entry, failures, expired=expired, now=now)

        def outcome_and_bounce() -> Stored | None:
            with transaction(self.queue.engine) as conn:
                if not outcome(conn):
                    log.warning("outcome_after_lease_lost", queue_id=entry.queue_id)
                    return None
                if bounce is None:
                    return None
                return self.archive.write(conn, [self.archive.prepare(*bounce)], None)[0]

        stored = await self._record(outcome_and_bounce)
        if stored is not None:
            log.info(
                "bounce_queued",
                queue_id=entry.queue_id,
                bounce_queue_id=stored.queue_id,
                recipients=len(failures),
            )
            self.wake()

    def _bounce(
        self, entry: QueueEntry, failures: dict[str, Outcome], *, expired: bool, now: datetime
    ) -> tuple[ArchiveRecord, list[QueueItem]] | None:
        """The bounce of `failures` to the sender, as a record to archive; None if none is owed."""
        # Never bounce a bounce or a notice (RFC 5321 §4.5.5), nor mail without a sender.
        if entry.kind != "deliver" or not entry.mail_from:
            self.notices_lost[entry.kind] += 1
            # Error: an alert that never reaches the safeguarding lead, or a bounce that never
            # tells staff their mail was not sent, is not routine.
            log.error(
                "undeliverable_notice_dropped",
                queue_id=entry.queue_id,
                kind=entry.kind,
                reply=_first_reply(failures),
                hint="upstream refused the gateway's own notice, sent from <>: deploy/README.md",
            )
            return None
        statuses = [
            RecipientStatus(
                rcpt, "4.4.7" if expired and o.code < 500 else _enhanced(o), f"{o.code} {o.text}"
            )
            for rcpt, o in failures.items()
        ]
        raw = delivery_failure(
            self.templates,
            reporting_mta=self.hostname,
            sender=entry.mail_from,
            original=entry.body,
            arrival=as_aware(entry.created_at),
            statuses=statuses,
            expired=expired,
            lifetime=self.settings.lifetime,
            sent=now,
        )
        record = ArchiveRecord(
            queue_id=new_queue_id(),
            received_at=now,
            raw=raw,
            verdict="deliver",
            channel="email",
            client_address="gateway",
            envelope_from="",
            envelope_to=(entry.mail_from,),
            from_addr=f"mailer-daemon@{self.hostname}",
            to_addrs=(entry.mail_from,),
            subject="Undelivered Mail Returned to Sender",
            body_text="",
            dedupe=False,
            evaluation={"generated": "delivery_failure", "for_queue_id": entry.queue_id},
        )
        return record, [QueueItem(kind="bounce", mail_from="", recipients=(entry.mail_from,))]


def _first_reply(failures: dict[str, Outcome]) -> str:
    for outcome in failures.values():
        return f"{outcome.code} {outcome.text}"[:200]
    return ""
