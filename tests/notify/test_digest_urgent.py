"""The daily digest lists one by one the messages that alerted the safeguarding lead: findings
of the pack's urgent rules ("reported to the safeguarding lead at once"), whatever check found
them, as each archived finding records it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from gateway.notify.digest import render, summarise
from gateway.notify.render import make_environment
from gateway.store.reports import ArchivedVerdict

AT = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


def _item(archive_id: int, *findings: dict[str, object]) -> ArchivedVerdict:
    return ArchivedVerdict(
        archive_id=archive_id,
        queue_id=f"Q{archive_id}",
        received_at=AT,
        sender="alex.teacher@safe.example",
        recipients=("sam.minor@home.example",),
        subject="Thursday",
        verdict="flag",
        findings=tuple(findings),
    )


def test_the_digest_lists_findings_of_urgent_rules_whatever_their_check():
    urgent_contact = _item(1, {"code": "personal_contact_details", "rule": "r1", "urgent": True})
    quiet_risk = _item(2, {"code": "risk_language", "rule": "r2", "urgent": False})
    archived_before = _item(3, {"code": "risk_language", "rule": "r3"})  # no "urgent" key yet
    sign_off = _item(4, {"code": "informal_sign_off", "rule": "r4", "urgent": False})
    digest = summarise([urgent_contact, quiet_risk, archived_before, sign_off], AT, AT)
    assert [i.archive_id for i in digest.urgent] == [1, 3]


def test_the_digest_also_lists_findings_of_rules_the_pack_makes_urgent_now():
    """As held mail does: the pack's urgent rules count whatever a record says (one archived
    before findings recorded it, or a rule made urgent since)."""
    made_urgent = _item(1, {"code": "personal_contact_details", "rule": "r1", "urgent": False})
    other = _item(2, {"code": "informal_sign_off", "rule": "r4", "urgent": False})
    digest = summarise([made_urgent, other], AT, AT, frozenset({"r1"}))
    assert [i.archive_id for i in digest.urgent] == [1]


def test_an_urgent_message_shows_the_from_line_when_it_named_someone_else():
    item = replace(
        _item(1, {"code": "risk_language", "rule": "r1", "urgent": True}),
        written_as="head.teacher@safe.example",
    )
    text = render(make_environment(), summarise([item], AT, AT), "Org")
    assert "alex.teacher@safe.example (as From: head.teacher@safe.example) -> sam" in text
