"""The notice a sender gets when upstream never took their message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

from gateway.notify.delivery import delivery_failure
from gateway.notify.dsn import RecipientStatus
from gateway.notify.render import make_environment


def test_a_bounce_at_expiry_is_dated_when_it_is_written_not_when_the_mail_came():
    """Five days of "try again later": the notice's Date is today (a mail client sorts by
    it), its Arrival-Date the day the message came."""
    came = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    now = came + timedelta(days=5)
    raw = delivery_failure(
        make_environment(),
        reporting_mta="gateway.safe.example",
        sender="alex.teacher@safe.example",
        original=b"Subject: Trip\r\n\r\nHi\r\n",
        arrival=came,
        statuses=[RecipientStatus("x@home.example", "4.4.7", "451 try later")],
        expired=True,
        lifetime=5 * 86400,
        sent=now,
    )
    notice = message_from_bytes(raw, policy=policy.default)
    assert notice["Date"].datetime == now
    report = next(p for p in notice.walk() if p.get_content_type() == "message/delivery-status")
    assert "Arrival-Date: Tue, 01 Dec 2026 09:00:00 +0000" in report.as_string()
