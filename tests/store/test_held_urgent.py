"""Whether held mail alerted the lead decides if a cancel tells its sender by default ("the
sender is not told of an urgent alert"): by the finding's own record, or by the pack's urgent
rules now (a record from before findings said so, or a rule made urgent since)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from gateway.ids import new_queue_id
from gateway.store.archive import Archive
from gateway.store.held import HeldMail
from gateway.store.records import ArchiveRecord, QueueItem

NOW = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)


def _hold(engine: Engine, *findings: dict[str, object]) -> None:
    Archive(engine).store(
        ArchiveRecord(
            queue_id=new_queue_id(),
            received_at=NOW,
            raw=b"Subject: held\r\n\r\nx\r\n",
            verdict="defer",
            findings=tuple(findings),
        ),
        [
            QueueItem(
                kind="deliver",
                mail_from="alex.teacher@safe.example",
                recipients=("sam.minor@home.example",),
                not_before=NOW + timedelta(days=2),
            )
        ],
    )


def test_held_mail_is_urgent_by_its_record_or_by_the_pack_s_urgent_rules_now(engine: Engine):
    _hold(engine, {"code": "personal_contact_details", "rule": "contact", "urgent": False})
    _hold(engine, {"code": "personal_contact_details", "rule": "watch", "urgent": True})
    _hold(engine, {"code": "risk_language", "rule": "secrecy"})  # archived before the flag
    _hold(engine, {"code": "out_of_hours", "rule": "hours"})
    plain = HeldMail(engine, lifetime=86400.0)
    assert [h.urgent for h in plain.waiting(NOW)] == [False, True, True, False]
    by_pack = HeldMail(engine, lifetime=86400.0, urgent_rules=frozenset({"contact"}))
    assert [h.urgent for h in by_pack.waiting(NOW)] == [True, True, True, False]
