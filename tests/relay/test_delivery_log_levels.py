"""A delivery attempt is logged at the level of what it came to: delivered (info), deferred and
to be retried (warning), refused or given up on and bounced (error). All were info, so an admin
watching warnings and above never saw upstream refusing mail (a review)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from structlog.testing import capture_logs

from gateway.store.records import ArchiveRecord, Lease, QueueItem
from tests.relay.test_outcome_and_bounce import BUSY, GONE, GOOD, Upstream, _leased, _worker


@pytest.mark.parametrize(
    ("recipients", "expired", "level", "reply"),
    [
        ((GOOD,), False, "info", "2.0.0 ok"),
        ((BUSY,), False, "warning", "4.2.0 mailbox busy"),
        ((GOOD, BUSY), False, "warning", "4.2.0 mailbox busy"),
        ((GONE,), False, "error", "5.1.1 no such user"),
        ((GOOD, GONE, BUSY), False, "error", "5.1.1 no such user"),
        ((BUSY,), True, "error", "4.2.0 mailbox busy"),  # the lifetime ran out: bounced
    ],
)
def test_a_delivery_attempt_is_logged_at_the_level_of_its_outcome(
    engine: Engine, recipients: tuple[str, ...], expired: bool, level: str, reply: str
):
    worker = _worker(engine)
    entry = _leased(worker, *recipients)
    if expired:
        entry = dataclasses.replace(entry, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    with capture_logs() as logs:
        asyncio.run(worker.deliver(entry, Upstream()))
    [attempt] = [e for e in logs if e["event"] == "delivery_attempt"]
    assert attempt["log_level"] == level
    assert attempt["reply"] == reply  # the answer that explains it, not another's 250
    assert attempt["expired"] is expired


def test_a_notice_upstream_refuses_for_good_is_an_error_and_counted(engine: Engine):
    """An admin's review: Microsoft 365 over SMTP AUTH refuses the null sender, so every alert
    to the safeguarding lead and every "not sent" bounce was dropped with a warning that no
    one watching errors saw, and nothing counted it."""
    worker = _worker(engine)
    now = datetime.now(UTC)
    record = ArchiveRecord(
        queue_id="A0001", received_at=now, raw=b"Subject: Alert\r\n\r\nx\r\n", verdict="deliver"
    )
    item = QueueItem(kind="alert", mail_from="", recipients=(GONE,))
    lease = Lease(worker.owner, now + timedelta(minutes=10))
    [entry] = worker.archive.store(record, [item], lease=lease).leased
    with capture_logs() as logs:
        asyncio.run(worker.deliver(entry, Upstream()))
    [dropped] = [e for e in logs if e["event"] == "undeliverable_notice_dropped"]
    assert (dropped["log_level"], dropped["kind"]) == ("error", "alert")
    assert dropped["reply"] == "550 5.1.1 no such user"
    assert worker.notices_lost == {"alert": 1}


def test_each_recipient_s_outcome_is_counted_for_monitoring(engine: Engine):
    """An admin's review: nothing to alert on while upstream deferred or refused mail (the
    queue gauge is the shared database's, the same on every gateway)."""
    worker = _worker(engine)
    asyncio.run(worker.deliver(_leased(worker, GOOD, GONE, BUSY), Upstream()))
    assert worker.outcomes == {
        ("deliver", "delivered"): 1,
        ("deliver", "refused"): 1,
        ("deliver", "deferred"): 1,
    }


def test_a_database_away_is_logged_once_a_minute_not_at_every_claim(engine: Engine):
    """An admin's review: `queue_claim_failed` at error level every second, from every
    gateway, for as long as the database was away."""
    worker = _worker(engine)
    with capture_logs() as logs:
        for second in range(125):
            worker._claim_failed(ConnectionError("database away"), 1000.0 + second)
    failed = [e["failures"] for e in logs if e["event"] == "queue_claim_failed"]
    assert failed == [1, 61, 121]
