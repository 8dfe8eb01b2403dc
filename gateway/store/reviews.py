"""Safeguarding leads' reviews of flagged messages. Rows are only added: a later review of the
same message does not erase an earlier one, and the newest is the message's state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, desc, exists, func, insert, or_, select

from gateway.store.audit import AuditNote, add_audit
from gateway.store.db import transaction
from gateway.store.records import as_aware, utc_naive
from gateway.store.schema import archive, archive_findings, reviews

OUTCOMES = {"no_concern": "No concern", "escalated": "Concern — escalated"}


class NoSuchMessage(LookupError):
    pass


@dataclass(frozen=True)
class Review:
    archive_id: int
    at: datetime  # aware UTC
    reviewer: str
    outcome: str  # a key of OUTCOMES
    note: str

    @property
    def outcome_label(self) -> str:
        return OUTCOMES.get(self.outcome, self.outcome)


@dataclass(frozen=True)
class Awaiting:
    """A flagged message nobody has reviewed yet."""

    archive_id: int
    received_at: datetime  # aware UTC
    from_addr: str
    to: tuple[str, ...]
    subject: str
    verdict: str
    codes: tuple[str, ...]
    urgent: bool = False  # a finding of an urgent rule (the watch list): it alerted the lead


class ReviewStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        archive_id: int,
        *,
        reviewer: str,
        outcome: str,
        note: str,
        at: datetime,
        audit: AuditNote | None = None,
    ) -> Review:
        """`audit` is added in the same transaction as the review."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        with transaction(self.engine) as conn:
            # Not a tombstone either: retention removed its notes, and would not look again.
            live = select(archive.c.id).where(
                archive.c.id == archive_id, archive.c.purged_at.is_(None)
            )
            if conn.execute(live).first() is None:
                raise NoSuchMessage(archive_id)
            conn.execute(
                insert(reviews).values(
                    archive_id=archive_id,
                    at=utc_naive(at),
                    reviewer=reviewer,
                    outcome=outcome,
                    note=note,
                )
            )
            if audit is not None:
                add_audit(conn, audit)
        return Review(archive_id, as_aware(utc_naive(at)), reviewer, outcome, note)

    def of(self, archive_id: int) -> list[Review]:
        """Oldest first."""
        return self._read([archive_id])

    def of_many(self, archive_ids: Sequence[int]) -> list[Review]:
        """Every review of these messages, oldest first."""
        return self._read(archive_ids)

    def latest(self, archive_ids: Sequence[int]) -> dict[int, Review]:
        """The newest review of each of these messages that has one."""
        return {review.archive_id: review for review in self._read(archive_ids)}

    def _read(self, archive_ids: Sequence[int]) -> list[Review]:
        if not archive_ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(reviews)
                .where(reviews.c.archive_id.in_(list(archive_ids)))
                .order_by(reviews.c.id)
            ).all()
        return [
            Review(row.archive_id, as_aware(row.at), row.reviewer, row.outcome, row.note)
            for row in rows
        ]

    def awaiting(
        self, *, limit: int = 50, offset: int = 0, urgent_rules: frozenset[str] = frozenset()
    ) -> tuple[list[Awaiting], int]:
        """Messages with findings other than a rewrite and no review, and how many there are:
        those with an urgent finding first (urgent by its record, or by `urgent_rules`, the
        pack's now: a rule made urgent since), then oldest first. A watch-list message must
        not wait behind a day of routine flags."""
        # Read from archive_findings, which holds rows of flagged messages only (a purge
        # deletes a tombstone's), not by looking at every archived message. A rewrite (group
        # mail moved to BCC) is fixed already; it needs nobody's judgement.
        urgent = case(
            (
                or_(
                    archive_findings.c.urgent,
                    archive_findings.c.rule.in_(sorted(urgent_rules)),
                ),
                1,
            ),
            else_=0,
        )
        waiting = (
            select(archive_findings.c.archive_id, func.max(urgent).label("urgent"))
            .where(
                archive_findings.c.action != "rewrite",
                ~exists().where(reviews.c.archive_id == archive_findings.c.archive_id),
            )
            .group_by(archive_findings.c.archive_id)
        )
        with self.engine.connect() as conn:
            total = int(
                conn.execute(select(func.count()).select_from(waiting.subquery())).scalar_one()
            )
            first = (desc("urgent"), archive_findings.c.archive_id)
            page = waiting.order_by(*first).limit(limit).offset(offset).subquery()
            rows = conn.execute(
                select(
                    archive.c.id,
                    archive.c.received_at,
                    archive.c.from_addr,
                    archive.c.to_addrs,
                    archive.c.subject,
                    archive.c.verdict,
                    archive.c.findings,
                    page.c.urgent,
                )
                .join(page, page.c.archive_id == archive.c.id)
                .order_by(page.c.urgent.desc(), archive.c.id)
            ).all()
        return [
            Awaiting(
                archive_id=row.id,
                received_at=as_aware(row.received_at),
                from_addr=row.from_addr,
                to=tuple(row.to_addrs or ()),
                subject=row.subject,
                verdict=row.verdict,
                codes=tuple(dict.fromkeys(f.get("code", "") for f in row.findings or ())),
                urgent=bool(row.urgent),
            )
            for row in rows
        ], total
