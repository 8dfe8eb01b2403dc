"""Every time a notice shows a person is in one format, in the organisation's zone: "Monday 7
December 2026, 15:30". A review found two side by side: the bounce's "It was sent Monday 23
November 2026 22:30" beside "Tuesday 24 November 2026 at 09:00", a deferral's subject "Held until
Tuesday 09:00", the lead's alert "Tuesday 24 November 2026 09:00" under "at", the digest's
"23 Nov 22:30 UTC" under a local period, and a delivery failure's "Tuesday 01 December 2026,
09:00 UTC". The Date headers stay RFC 5322."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

from gateway.notify.delivery import delivery_failure
from gateway.notify.digest import render, summarise
from gateway.notify.dsn import RecipientStatus
from gateway.notify.render import local_time, make_environment
from gateway.store.reports import ArchivedVerdict
from tests.policy.harness import Draft, domain
from tests.policy.test_tipping_off import _content, _prepare

LONDON = ZoneInfo("Europe/London")
ONE_FORMAT = re.compile(r"[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d")
ANY_DATE = re.compile(r"[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4}\S*(?: at)? ?\S*")


def _dates(text: str) -> list[str]:
    """Every date in `text` with what follows it, to see that each is in the one format."""
    return [m.group(0) for m in ANY_DATE.finditer(text)]


def test_the_one_format_is_in_the_zone_asked_for_and_a_time_without_one_is_utc():
    summer = datetime(2026, 7, 1, 11, 15, tzinfo=UTC)
    assert local_time(summer, LONDON) == "Wednesday 1 July 2026, 12:15"
    assert local_time(summer.replace(tzinfo=None), LONDON) == "Wednesday 1 July 2026, 12:15"
    assert local_time("2026-12-07T15:30:00+00:00") == "Monday 7 December 2026, 15:30"


def test_a_refused_out_of_hours_bounce_shows_every_time_in_one_format():
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example",),
        at="2026-11-23T22:30:00",
    )
    told = _content(_prepare("thread-and-press", draft), "bounce")
    assert "It was sent Monday 23 November 2026, 22:30, outside office hours" in told
    assert "(Tuesday 24 November 2026, 09:00)" in told
    dates = _dates(told)
    assert dates and all(ONE_FORMAT.match(d) for d in dates), dates


def test_the_held_notice_and_the_lead_s_alert_say_when_it_goes_in_one_format():
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example", f"lee.mentor@{domain('thread-and-press')}"),
        body="Hi Sam,\n\nKeep this our little secret, don't tell your parents.\n\nAlex",
        at="2026-11-23T22:30:00",
    )
    prepared = _prepare("thread-and-press", draft)
    [notice] = [i.content for i in prepared.items if i.kind == "notice"]
    assert notice is not None
    held = message_from_bytes(notice, policy=policy.default)
    assert held["Subject"].startswith("Held until Tuesday 24 November 2026, 09:00: ")
    assert held["Date"] == "Mon, 23 Nov 2026 22:30:00 +0000"  # RFC 5322, as before
    for text in (_content(prepared, "notice"), _content(prepared, "alert")):
        dates = _dates(text)
        assert dates and all(ONE_FORMAT.match(d) for d in dates), dates


def test_the_digest_lists_urgent_messages_in_the_organisation_s_zone():
    """The archive's times are UTC; the digest's period is the organisation's (summer time
    here, an hour ahead)."""
    until = datetime(2026, 7, 2, 9, 0, tzinfo=LONDON)
    item = ArchivedVerdict(
        archive_id=1,
        queue_id="Q1",
        received_at=datetime(2026, 7, 1, 21, 30),  # as the archive keeps it: UTC, no zone
        sender="alex.teacher@safe.example",
        recipients=("sam.minor@home.example",),
        subject="Thursday",
        verdict="flag",
        findings=({"code": "risk_language", "rule": "r1", "urgent": True},),
    )
    text = render(make_environment(), summarise([item], until - timedelta(days=1), until), "Org")
    assert "Wednesday 1 July 2026, 22:30  alex.teacher@safe.example" in text
    assert "UTC" not in text
    dates = _dates(text)
    assert len(dates) == 3 and all(ONE_FORMAT.match(d) for d in dates), dates


def _failure_text(zone: ZoneInfo | None) -> str:
    raw = delivery_failure(
        make_environment(zone=zone),
        reporting_mta="gateway.safe.example",
        sender="alex.teacher@safe.example",
        original=b"Subject: Trip\r\n\r\nHi\r\n",
        arrival=datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
        statuses=[RecipientStatus("x@home.example", "5.1.1", "550 no such user")],
        expired=False,
        lifetime=5 * 86400,
    )
    notice = message_from_bytes(raw, policy=policy.default)
    text = next(p for p in notice.walk() if p.get_content_type() == "text/plain").get_content()
    return text.replace("\r\n", "\n")


def test_a_delivery_failure_says_when_the_message_was_sent_in_the_organisation_s_zone():
    assert "Sent: Wednesday 1 July 2026, 10:00\n" in _failure_text(LONDON)


def test_a_delivery_failure_whose_environment_has_no_zone_names_the_one_it_shows():
    """Not yet told the organisation's zone: the same format, and "UTC" said, not left to be
    read as local time."""
    assert "Sent: Wednesday 1 July 2026, 09:00 (UTC)\n" in _failure_text(None)


def test_an_alert_without_the_console_s_address_says_where_to_open_the_message():
    """A review: with no `[web] url` the alert said "Open the archive entry", with no way to."""
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example",),
        body="Hi Sam,\n\nKeep this our little secret, don't tell your parents.\n\nAlex",
    )
    prepared = _prepare("teens-in-ai", draft)
    alert = " ".join(_content(prepared, "alert").split())
    assert f"open /ref/{prepared.record.queue_id} in the safeguarding console" in alert
    assert "[web] url" in alert
