"""Held mail: deliveries the policy deferred (out of hours), waiting in the queue for their
time. A safeguarding lead may release one now or cancel it; the sender of a cancelled message
is told, when the lead so decides, by a notice queued in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, Select, insert, select, update

from gateway.policy.types import stored_finding_urgent
from gateway.store.archive import queue_row
from gateway.store.audit import AuditNote, add_audit
from gateway.store.db import transaction
from gateway.store.records import QueueItem, as_aware, utc_naive
from gateway.store.schema import archive, queue


@dataclass(frozen=True)
class HeldMessage:
    entry_id: int
    archive_id: int
    queue_id: str
    received_at: datetime  # aware UTC
    release_at: datetime  # aware UTC: when the worker will send it
    envelope_from: str
    recipients: tuple[str, ...]
    subject: str
    codes: tuple[str, ...]
    # A finding of an urgent rule (the watch list): the lead has been alerted, and the sender
    # must not learn of it from a "Not sent" notice unless the lead decides to tell them.
    urgent: bool = False


_HELD = (
    queue.c.kind == "deliver",
    queue.c.status == "queued",
    queue.c.attempts == 0,
    queue.c.not_before > queue.c.created_at,
)


class HeldMail:
    """`urgent_rules`: the pack's urgent rules now. A finding of one counts as urgent whatever
    its record says (one archived before findings recorded it, or a rule made urgent since)."""

    def __init__(
        self, engine: Engine, *, lifetime: float, urgent_rules: frozenset[str] = frozenset()
    ) -> None:
        self.engine = engine
        self.lifetime = timedelta(seconds=lifetime)
        self.urgent_rules = urgent_rules

    def _select(self, now: datetime) -> Select[Any]:
        return (
            select(
                queue.c.id,
                queue.c.archive_id,
                archive.c.queue_id,
                archive.c.received_at,
                queue.c.next_attempt_at,
                archive.c.envelope_from,
                queue.c.recipients,
                archive.c.subject,
                archive.c.findings,
            )
            .join(archive, archive.c.id == queue.c.archive_id)
            .where(*_HELD, queue.c.next_attempt_at > utc_naive(now))
        )

    def _held(self, row: Row[Any]) -> HeldMessage:
        return HeldMessage(
            entry_id=row.id,
            archive_id=row.archive_id,
            queue_id=row.queue_id,
            received_at=as_aware(row.received_at),
            release_at=as_aware(row.next_attempt_at),
            envelope_from=row.envelope_from,
            recipients=tuple(row.recipients or ()),
            subject=row.subject,
            codes=tuple(dict.fromkeys(f.get("code", "") for f in row.findings or ())),
            urgent=any(stored_finding_urgent(f, self.urgent_rules) for f in row.findings or ()),
        )

    def waiting(self, now: datetime, limit: int = 200) -> list[HeldMessage]:
        """Held deliveries not yet due, the soonest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._select(now).order_by(queue.c.next_attempt_at, queue.c.id).limit(limit)
            ).all()
        return [self._held(row) for row in rows]

    def of_message(self, archive_id: int, now: datetime) -> list[HeldMessage]:
        """The archived message's deliveries still held (none once released, cancelled or
        sent)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._select(now).where(queue.c.archive_id == archive_id).order_by(queue.c.id)
            ).all()
        return [self._held(row) for row in rows]

    def get(self, entry_id: int, now: datetime) -> HeldMessage | None:
        with self.engine.connect() as conn:
            row = conn.execute(self._select(now).where(queue.c.id == entry_id)).first()
        return None if row is None else self._held(row)

    def release(self, entry_id: int, now: datetime, *, audit: AuditNote | None = None) -> bool:
        """Due now: the delivery worker sends it on its next look at the queue. False if it is
        no longer held (released, cancelled or already sent). `audit` is added in the same
        transaction, if it was released."""
        with transaction(self.engine) as conn:
            result = conn.execute(
                update(queue)
                .where(queue.c.id == entry_id, *_HELD, queue.c.next_attempt_at > utc_naive(now))
                .values(next_attempt_at=utc_naive(now))
            )
            if result.rowcount != 1:
                return False
            if audit is not None:
                add_audit(conn, audit)
        return True

    def cancel(
        self,
        entry_id: int,
        now: datetime,
        *,
        reason: str,
        notice: bytes | None = None,
        notify: tuple[str, ...] = (),
        audit: AuditNote | None = None,
    ) -> bool:
        """Never sent; `notice` (if given) is queued to `notify`, and `audit` added, in the same
        transaction."""
        moment = utc_naive(now)
        with transaction(self.engine) as conn:
            archive_id = conn.execute(
                update(queue)
                .where(queue.c.id == entry_id, *_HELD)
                .values(status="cancelled", finished_at=moment, last_error=reason[:1000])
                .returning(queue.c.archive_id)
            ).scalar_one_or_none()
            if archive_id is None:
                return False
            if notice is not None and notify:
                item = QueueItem(kind="notice", mail_from="", recipients=notify, content=notice)
                conn.execute(insert(queue), queue_row(archive_id, item, moment, self.lifetime))
            if audit is not None:
                add_audit(conn, audit)
        return True
