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
