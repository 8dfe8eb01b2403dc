"""The review queue puts urgent messages first by what their records say: "A watch-list
message must not wait behind a day of routine flags", and not after a pack change either
(the rule renamed or dropped). Left alone in session 25's note: the queue read urgency from
the pack's urgent rules now, while the console and the export read the record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, update

from gateway.ids import new_queue_id
from gateway.store.archive import Archive
from gateway.store.db import transaction
from gateway.store.integrity import verify
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.records import ArchiveRecord
from gateway.store.reviews import ReviewStore
from gateway.store.schema import archive_findings

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _flagged(engine: Engine, minutes: int, *findings: dict[str, object]) -> int:
    [stored] = Archive(engine).store_many(
        [
            (
                ArchiveRecord(
                    queue_id=new_queue_id(),
                    received_at=NOW + timedelta(minutes=minutes),
                    raw=b"Subject: flagged\r\n\r\nx\r\n",
                    verdict="deliver",
                    findings=tuple(findings),
                ),
                [],
            )
        ]
    )
    return stored.archive_id


def _queue(engine: Engine, urgent_rules: frozenset[str] = frozenset()) -> list[tuple[int, bool]]:
    waiting, _total = ReviewStore(engine).awaiting(urgent_rules=urgent_rules)
    return [(w.archive_id, w.urgent) for w in waiting]


def _archived(engine: Engine) -> tuple[int, int, int, int]:
    routine = _flagged(engine, 0, {"code": "informal_sign_off", "rule": "sign-off"})
    # Urgent when archived, by a rule the pack now in use does not have.
    watched = _flagged(
        engine, 1, {"code": "personal_contact_details", "rule": "old-watch", "urgent": True}
    )
    # Archived before findings said whether they were urgent: risk language was.
    legacy = _flagged(engine, 2, {"code": "risk_language", "rule": "secrecy"})
    later = _flagged(engine, 3, {"code": "out_of_hours", "rule": "hours", "urgent": False})
    return routine, watched, legacy, later


def test_a_finding_urgent_by_its_record_stays_first_after_a_pack_change(engine: Engine):
    routine, watched, legacy, later = _archived(engine)
    assert _queue(engine) == [(watched, True), (legacy, True), (routine, False), (later, False)]
    # A rule made urgent since counts too.
    assert _queue(engine, frozenset({"hours"})) == [
        (watched, True),
        (legacy, True),
        (later, True),
        (routine, False),
    ]


def test_0011_fills_in_the_urgency_of_findings_archived_before_it(engine: Engine):
    _routine, watched, legacy, _later = _archived(engine)
    command.downgrade(alembic_config(engine), "0010")
    upgrade(engine)
    assert _queue(engine)[:2] == [(watched, True), (legacy, True)]
    assert verify(engine).problem is None


def test_an_urgent_finding_made_routine_behind_the_archive_s_back_is_named(engine: Engine):
    """Clearing the flag in the search table would sink a watch-list message in the queue."""
    _routine, watched, _legacy, _later = _archived(engine)
    with transaction(engine) as conn:
        conn.execute(
            update(archive_findings)
            .where(archive_findings.c.archive_id == watched)
            .values(urgent=False)
        )
    report = verify(engine)
    assert report.problem is not None and report.problem.archive_id == watched
    assert "search entries (addresses or findings) were altered" in report.problem.reason
