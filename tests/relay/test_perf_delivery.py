"""Delivery without a round trip per message to spare (issue 7): no NOOP before reusing the
upstream connection (a dropped one is replaced and the message sent once more), and outcomes
marked delivered in batches - each only after upstream's 250."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.clock import SystemClock
from gateway.config import DeliverySettings, UpstreamSettings
from gateway.delivery.transports import Outcome, SmtpTransport
from gateway.delivery.worker import DeliveryWorker
from gateway.notify.render import make_environment
from gateway.store.queue import QueueEntry
from gateway.store.writer import WriterStopped


class OneMessagePerConnection:
    """An upstream that takes one message per connection, then treats the connection as one it
    timed out while idle: the next command gets `reply` (if any) and the connection closes."""

    def __init__(self, reply: bytes | None, *, lose_second_data: bool = False) -> None:
        self.reply = reply
        self.lose_second_data = lose_second_data  # instead: take MAIL, RCPT, DATA; then close
        self.connections = 0
        self.commands: list[bytes] = []
        self.messages: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"220 upstream ESMTP\r\n")
        took_one = False
        while line := await reader.readline():
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper()
            self.commands.append(verb)
            if took_one and not self.lose_second_data:
                if self.reply:
                    writer.write(self.reply)
                break
            if verb == b"EHLO":
                writer.write(b"250-upstream\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                lines = []
                while (data := await reader.readline()) not in (b".\r\n", b""):
                    lines.append(data)
                self.messages.append(b"".join(lines))
                if took_one:  # lose_second_data: the reply to the final dot never comes
                    break
                writer.write(b"250 2.0.0 Ok: stored\r\n")
                took_one = True
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        await writer.drain()
        writer.close()


async def _two_sends(upstream: OneMessagePerConnection) -> list[dict[str, Outcome]]:
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = SmtpTransport(
        UpstreamSettings(scheme="smtp", host="127.0.0.1", port=port, timeout=5)
    )
    body = b"From: a@safe.example\r\nSubject: reuse\r\n\r\nhello\r\n"
    try:
        return [await transport.send("a@safe.example", ["b@home.example"], body) for _ in "12"]
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "reply", [None, b"421 4.4.2 upstream: idle timeout\r\n"], ids=["dropped", "421"]
)
def test_a_connection_upstream_closed_while_idle_is_replaced_and_the_message_sent(reply):
    upstream = OneMessagePerConnection(reply)
    first, second = asyncio.run(_two_sends(upstream))
    assert first["b@home.example"].delivered
    assert second["b@home.example"].delivered
    assert len(upstream.messages) == 2
    assert upstream.connections == 2
    assert b"NOOP" not in upstream.commands


def test_any_other_refusal_of_mail_from_on_a_reused_connection_stands():
    upstream = OneMessagePerConnection(b"550 5.7.1 sender refused\r\n")
    first, second = asyncio.run(_two_sends(upstream))
    assert first["b@home.example"].delivered
    assert second["b@home.example"] == Outcome(550, "5.7.1 sender refused")
    assert upstream.connections == 1  # not sent again elsewhere


def test_a_connection_lost_once_data_began_is_not_resent_at_once():
    """Upstream may have taken the message before it went away: that is for a retry later,
    like any other deferral, not for an immediate second copy."""
    upstream = OneMessagePerConnection(None, lose_second_data=True)
    first, second = asyncio.run(_two_sends(upstream))
    assert first["b@home.example"].delivered
    assert second["b@home.example"].code == 451
    assert upstream.connections == 1
    assert len(upstream.messages) == 2


# --- outcomes in batches ----------------------------------------------------------------------
# The worker reads the real clock: entries must not have expired by the day the test runs.
NOW = datetime.now(UTC)


def _entry(n: int, rcpt: str) -> QueueEntry:
    return QueueEntry(
        id=n,
        archive_id=n,
        queue_id=f"Q{n}",
        kind="deliver",
        mail_from="a@safe.example",
        recipients=(rcpt,),
        attempts=0,
        created_at=NOW,
        expires_at=NOW + timedelta(days=5),
        body=b"Subject: x\r\n\r\nx\r\n",
    )


class AnsweringTransport:
    """Upstream answers 250, except 451 for later@home.example; remembers what it accepted."""

    def __init__(self, accepted: set[str]) -> None:
        self.accepted = accepted

    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        await asyncio.sleep(0.002)
        if recipients[0] == "later@home.example":
            return {r: Outcome(451, "4.3.0 try later") for r in recipients}
        self.accepted.update(recipients)
        return {r: Outcome(250, "ok") for r in recipients}

    async def close(self) -> None:
        return None


class SlowTransport(AnsweringTransport):
    """Upstream taking 50 ms per message: slower than the tests hand mail over."""

    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        await asyncio.sleep(0.05)
        return await super().send(mail_from, recipients, body)


class RecordingQueue:
    def __init__(self, entries: list[QueueEntry], accepted: set[str]) -> None:
        self.entries = entries
        self.accepted = accepted
        self.batches: list[list[int]] = []
        self.retried: list[int] = []

    def claim(self, owner: str, now: datetime, limit: int = 16) -> list[QueueEntry]:
        taken, self.entries = self.entries[:limit], self.entries[limit:]
        return taken

    def delivered_many(self, entry_ids: Sequence[int], owner: str, now: datetime) -> int:
        # Marked only once upstream has said 250 for that entry's recipients.
        assert all(f"{i}@home.example" in self.accepted for i in entry_ids)
        self.batches.append(list(entry_ids))
        return len(entry_ids)

    def retry_later(self, entry_id: int, owner: str, **kwargs: object) -> None:
        self.retried.append(entry_id)


def _worker(
    queue: object,
    transport: Callable[[], object],
    commit_delivered: Callable[..., Awaitable[None]] | None = None,
    **settings: float,
) -> DeliveryWorker:
    """A worker on a stand-in queue and transport (no archive: nothing here bounces)."""
    return DeliveryWorker(
        queue=queue,  # type: ignore[arg-type]
        archive=None,  # type: ignore[arg-type]
        transport_factory=transport,  # type: ignore[arg-type]
        settings=DeliverySettings(**settings),  # type: ignore[arg-type]
        templates=make_environment(),
        clock=SystemClock(),
        hostname="gateway.safe.example",
        commit_delivered=commit_delivered,
    )


def _run_until_marked(queue: RecordingQueue, accepted: set[str], count: int, workers: int) -> None:
    """Runs a worker on `queue` until `count` entries are marked delivered, then stops it."""

    async def run() -> None:
        worker = _worker(
            queue, lambda: AnsweringTransport(accepted), workers=workers, poll_interval=0.05
        )
        task = asyncio.create_task(worker.run())
        while sum(map(len, queue.batches)) < count:
            await asyncio.sleep(0.01)
        worker.stop()
        await task

    asyncio.run(asyncio.wait_for(run(), 30))


def test_sends_are_marked_delivered_in_batches_after_upstream_accepted_them():
    accepted: set[str] = set()
    entries = [_entry(n, f"{n}@home.example") for n in range(1, 41)]
    entries.insert(7, _entry(99, "later@home.example"))
    queue = RecordingQueue(entries, accepted)
    _run_until_marked(queue, accepted, 40, workers=4)
    marked = [i for batch in queue.batches for i in batch]
    assert sorted(marked) == list(range(1, 41))
    assert len(queue.batches) < 40 / 2  # several per transaction, not one each
    assert queue.retried == [99]


class CountingQueue(RecordingQueue):
    def __init__(self, accepted: set[str]) -> None:
        super().__init__([], accepted)
        self.claims = 0

    def claim(self, owner: str, now: datetime, limit: int = 16) -> list[QueueEntry]:
        self.claims += 1
        return []


def test_entries_committed_leased_are_sent_without_a_claim():
    """What the relay committed is handed to the worker in memory: no claim transaction (and
    no reading the body back) between the commit and the send."""
    accepted: set[str] = set()
    queue = CountingQueue(accepted)

    async def run() -> None:
        worker = _worker(queue, lambda: AnsweringTransport(accepted), workers=2, poll_interval=60)
        assert worker.lease() is None  # not running: nothing is leased to it
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.05)
        lease = worker.lease()
        assert lease is not None and lease.owner == worker.owner
        for n in range(1, 21):
            worker.committed([_entry(n, f"{n}@home.example")], False)
        while sum(map(len, queue.batches)) < 20:
            await asyncio.sleep(0.01)
        # Handed over just before the stop: still sent, not left to wait for its lease to end.
        worker.committed([_entry(21, "21@home.example")], False)
        worker.stop()
        await task
        assert worker.lease() is None

    asyncio.run(asyncio.wait_for(run(), 30))
    assert sorted(i for batch in queue.batches for i in batch) == list(range(1, 22))
    assert queue.claims == 1  # the one at start, for what an earlier run left due


def test_a_worker_with_a_backlog_leaves_new_entries_to_be_claimed():
    """Upstream slower than intake: beyond a few per sender, new entries stay in the queue
    unleased, for whichever worker (of any gateway) is free first."""

    async def run() -> None:
        worker = _worker(
            CountingQueue(set()), lambda: AnsweringTransport(set()), workers=1, poll_interval=60
        )
        worker._running = True  # as in run(), without senders draining the backlog
        worker.committed([_entry(n, f"{n}@home.example") for n in range(4)], False)
        assert worker.lease() is None
        worker._handed.clear()
        assert worker.lease() is not None

    asyncio.run(run())


def test_a_busy_hand_over_still_looks_in_the_queue_every_poll_interval():
    """Retries, holds that came due and other processes' expired leases wait in the database:
    a steady stream of handed-over mail must not keep the worker from looking there."""
    accepted: set[str] = set()
    queue = CountingQueue(accepted)

    async def run() -> None:
        worker = _worker(queue, lambda: AnsweringTransport(accepted), workers=2, poll_interval=0.2)
        task = asyncio.create_task(worker.run())
        for n in range(1, 31):  # one every 50 ms for 1.5 s: never a quiet poll interval
            worker.committed([_entry(n, f"{n}@home.example")], False)
            await asyncio.sleep(0.05)
        worker.stop()
        await task

    asyncio.run(asyncio.wait_for(run(), 30))
    assert queue.claims >= 5  # at start, then about every 0.2 s


def test_a_backlog_of_handed_mail_does_not_starve_the_claims():
    """Upstream slower than intake: entries left unleased (and retries) are still claimed,
    between handed ones."""

    accepted: set[str] = set()
    queue = CountingQueue(accepted)

    async def run() -> None:
        worker = _worker(queue, lambda: SlowTransport(accepted), workers=1, poll_interval=60)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.01)
        before = queue.claims
        worker.committed([_entry(n, f"{n}@home.example") for n in range(1, 11)], True)
        await asyncio.sleep(0.2)
        assert queue.claims > before  # the unleased ones were looked for at once
        worker.stop()
        await task

    asyncio.run(asyncio.wait_for(run(), 30))


def test_nothing_is_leased_to_a_stopping_worker_and_its_handed_mail_still_goes():
    accepted: set[str] = set()
    queue = CountingQueue(accepted)

    async def run() -> None:
        worker = _worker(queue, lambda: SlowTransport(accepted), workers=1, poll_interval=30)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.01)
        assert worker.lease() is not None
        # More than the work queue holds, behind a slow upstream: the worker is blocked handing
        # them to its sender when the stop comes, and must notice it without waiting out the
        # poll interval.
        worker.committed([_entry(n, f"{n}@home.example") for n in range(1, 9)], False)
        await asyncio.sleep(0.02)
        worker.stop()
        assert worker.lease() is None
        await asyncio.wait_for(task, 5)

    asyncio.run(asyncio.wait_for(run(), 30))
    assert sorted(i for batch in queue.batches for i in batch) == list(range(1, 9))


def test_an_entry_whose_lease_is_nearly_out_is_not_sent():
    """Mail that waited in memory until another worker may take it over (its lease in its last
    quarter) is left for the next claim rather than risk sending it twice."""
    accepted: set[str] = set()
    queue = CountingQueue(accepted)
    now = datetime.now(UTC).replace(tzinfo=None)
    fresh = replace(_entry(1, "1@home.example"), lease_until=now + timedelta(seconds=500))
    stale = replace(_entry(2, "2@home.example"), lease_until=now + timedelta(seconds=100))

    async def run() -> None:
        worker = _worker(queue, lambda: AnsweringTransport(accepted), workers=1, poll_interval=60)
        task = asyncio.create_task(worker.run())
        worker.committed([stale, fresh], False)
        while not queue.batches:
            await asyncio.sleep(0.01)
        worker.stop()
        await task

    asyncio.run(asyncio.wait_for(run(), 30))
    assert accepted == {"1@home.example"}  # the stale one never reached upstream
    assert [i for batch in queue.batches for i in batch] == [1]


class FailingOnceQueue(RecordingQueue):
    """The first mark and the first retry fail, as on a pooled connection the database
    dropped while in use."""

    def __init__(self, entries: list[QueueEntry], accepted: set[str]) -> None:
        super().__init__(entries, accepted)
        self.failures = {"delivered_many": 1, "retry_later": 1}

    def _fail_once(self, outcome: str) -> None:
        if self.failures[outcome]:
            self.failures[outcome] -= 1
            raise ConnectionError("server closed the connection unexpectedly")

    def delivered_many(self, entry_ids: Sequence[int], owner: str, now: datetime) -> int:
        self._fail_once("delivered_many")
        return super().delivered_many(entry_ids, owner, now)

    def retry_later(self, entry_id: int, owner: str, **kwargs: object) -> None:
        self._fail_once("retry_later")
        super().retry_later(entry_id, owner, **kwargs)


def test_an_outcome_that_fails_to_record_once_is_recorded_again_not_left_to_a_resend():
    """Recording a delivery or a deferral is safe to repeat: one lost connection must not
    send mail twice (nor its bounce)."""
    accepted: set[str] = set()
    entries = [_entry(n, f"{n}@home.example") for n in range(1, 6)]
    entries.insert(2, _entry(99, "later@home.example"))
    queue = FailingOnceQueue(entries, accepted)
    _run_until_marked(queue, accepted, 5, workers=2)
    assert queue.failures == {"delivered_many": 0, "retry_later": 0}
    assert sorted(i for batch in queue.batches for i in batch) == [1, 2, 3, 4, 5]
    assert queue.retried == [99]


def test_in_the_relay_sends_are_marked_by_the_archive_writer_and_by_the_queue_once_it_stops():
    """The relay's archive writer commits the marks with the records it writes (no transaction
    of their own); once the gateway has stopped it, the last sends are still marked."""
    accepted: set[str] = set()
    queue = RecordingQueue([_entry(n, f"{n}@home.example") for n in range(1, 21)], accepted)
    by_writer: list[int] = []

    async def commit_delivered(entry_ids: Sequence[int], owner: str, now: datetime) -> None:
        assert all(f"{i}@home.example" in accepted for i in entry_ids)
        if len(by_writer) >= 10:
            raise WriterStopped("stopping")
        by_writer.extend(entry_ids)

    async def run() -> None:
        worker = _worker(queue, lambda: AnsweringTransport(accepted), commit_delivered, workers=2)
        task = asyncio.create_task(worker.run())
        while len(by_writer) + sum(map(len, queue.batches)) < 20:
            await asyncio.sleep(0.01)
        worker.stop()
        await task

    asyncio.run(asyncio.wait_for(run(), 30))
    by_queue = [i for batch in queue.batches for i in batch]
    assert len(by_writer) == 10
    assert sorted(by_writer + by_queue) == list(range(1, 21))
