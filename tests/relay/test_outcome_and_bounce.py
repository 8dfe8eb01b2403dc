"""A send's outcome and the bounce it owes are written together or not at all.

Apart, a bounce committed before an outcome that then failed to record went out, and the entry
was sent again once its lease ran out - to every recipient, those that had accepted it too -
and bounced a second time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import OperationalError

from gateway.clock import SystemClock
from gateway.config import DeliverySettings
from gateway.delivery.transports import Outcome
from gateway.delivery.worker import DeliveryWorker
from gateway.notify.render import make_environment
from gateway.store.archive import Archive
from gateway.store.db import transaction
from gateway.store.queue import QueueStore
from gateway.store.records import ArchiveRecord, Lease, QueueEntry, QueueItem
from gateway.store.schema import archive, queue

GOOD, GONE, BUSY = "priya@parents.example", "nobody@home.example", "busy@home.example"


class Upstream:
    """Accepts GOOD, refuses GONE for good and BUSY for now."""

    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        answers = {
            GOOD: Outcome(250, "2.0.0 ok"),
            GONE: Outcome(550, "5.1.1 no such user"),
            BUSY: Outcome(451, "4.2.0 mailbox busy"),
        }
        return {r: answers[r] for r in recipients}

    async def close(self) -> None:
        return None


def _worker(engine: Engine) -> DeliveryWorker:
    return DeliveryWorker(
        queue=QueueStore(engine),
        archive=Archive(engine),
        transport_factory=Upstream,
        settings=DeliverySettings(),
        templates=make_environment(),
        clock=SystemClock(),
        hostname="gateway.safe.example",
    )


def _leased(worker: DeliveryWorker, *recipients: str) -> QueueEntry:
    now = datetime.now(UTC)
    record = ArchiveRecord(
        queue_id="Q0001",
        received_at=now,
        raw=b"From: alex@safe.example\r\nSubject: Thursday\r\n\r\nSee you there.\r\n",
        verdict="deliver",
    )
    item = QueueItem(kind="deliver", mail_from="alex@safe.example", recipients=recipients)
    lease = Lease(worker.owner, now + timedelta(minutes=10))
    [entry] = worker.archive.store(record, [item], lease=lease).leased
    return entry


def _state(engine: Engine) -> tuple[int, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        records = conn.execute(select(func.count()).select_from(archive)).scalar_one()
        rows = conn.execute(
            select(queue.c.kind, queue.c.status, queue.c.lease_owner, queue.c.recipients).order_by(
                queue.c.id
            )
        ).all()
    return records, [tuple(r) for r in rows]


@pytest.mark.parametrize("failing", ["outcome", "bounce"])
def test_a_bounce_is_not_kept_when_its_outcome_cannot_be_recorded(
    engine: Engine, monkeypatch, failing: str
):
    worker = _worker(engine)
    entry = _leased(worker, GOOD, GONE)

    def broken(*args: object, **kwargs: object) -> object:
        raise OperationalError("UPDATE", {}, Exception("disk I/O error"))

    if failing == "outcome":
        monkeypatch.setattr(QueueStore, "partly_delivered_on", staticmethod(broken))
    else:
        monkeypatch.setattr(worker.archive, "write", broken)
    with pytest.raises(OperationalError):  # tried twice; the sender logs it, the lease runs out
        asyncio.run(worker.deliver(entry, Upstream()))
    assert _state(engine) == (
        1,
        [("deliver", "sending", worker.owner, [GOOD, GONE])],
    )  # still this worker's to settle: no bounce waits to go out on its own

    monkeypatch.undo()
    asyncio.run(worker.deliver(entry, Upstream()))  # the send once the lease is taken again
    records, rows = _state(engine)
    assert records == 2
    assert rows == [
        ("deliver", "delivered", None, [GOOD, GONE]),
        ("bounce", "queued", None, ["alex@safe.example"]),
    ]
    # Delivered to one and refused for the other: the entry says which (a child's export
    # reads it back: whether they received it).
    with engine.connect() as conn:
        error = conn.execute(select(queue.c.last_error).where(queue.c.kind == "deliver")).scalar()
    assert error is not None and error.startswith(f"{GONE}: 550")


def test_no_bounce_is_written_by_a_worker_that_lost_the_lease(engine: Engine):
    worker = _worker(engine)
    entry = _leased(worker, GONE)
    with transaction(engine) as conn:  # the lease ran out and another worker took the entry over
        conn.execute(update(queue).values(lease_owner="other-worker"))
    asyncio.run(worker.deliver(entry, Upstream()))
    assert _state(engine) == (1, [("deliver", "sending", "other-worker", [GONE])])


def test_a_refusal_beside_a_deferral_bounces_once_and_retries_only_the_deferred(engine: Engine):
    worker = _worker(engine)
    entry = _leased(worker, GONE, BUSY)
    asyncio.run(worker.deliver(entry, Upstream()))
    records, rows = _state(engine)
    assert records == 2
    assert rows == [
        ("deliver", "queued", None, [BUSY]),
        ("bounce", "queued", None, ["alex@safe.example"]),
    ]
