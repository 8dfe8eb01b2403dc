"""The delivery queue: claim due entries (each by exactly one worker), record outcomes."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, and_, bindparam, func, or_, select, update

from gateway.store.db import is_postgres, transaction
from gateway.store.records import QueueEntry, utc_naive
from gateway.store.schema import archive, queue

log = structlog.get_logger("gateway.store.queue")

# The delivery worker's statements, built once (see archive.py: a statement object made per call
# pays for its cache key every time).
_NOW = bindparam("now", type_=queue.c.next_attempt_at.type)
_IDS = bindparam("ids", expanding=True)
_PICK = (
    select(queue.c.id)
    .where(
        or_(
            and_(queue.c.status == "queued", queue.c.next_attempt_at <= _NOW),
            # A worker that died mid-send left a lease behind: take it over when it runs out.
            and_(queue.c.status == "sending", queue.c.lease_until < _NOW),
        )
    )
    .order_by(queue.c.next_attempt_at)
    .limit(bindparam("limit"))
)
_PICK_SKIP_LOCKED = _PICK.with_for_update(skip_locked=True)
_LEASE = (
    update(queue)
    .where(queue.c.id.in_(_IDS))
    .values(
        status="sending",
        lease_owner=bindparam("owner"),
        lease_until=bindparam("until", type_=queue.c.lease_until.type),
    )
)
_CLAIMED = (
    select(
        queue.c.id,
        queue.c.archive_id,
        archive.c.queue_id,
        queue.c.kind,
        queue.c.mail_from,
        queue.c.recipients,
        queue.c.attempts,
        queue.c.created_at,
        queue.c.expires_at,
        queue.c.prefix,
        queue.c.content_gz,
        archive.c.raw_gz,
    )
    .join(archive, archive.c.id == queue.c.archive_id)
    .where(queue.c.id.in_(_IDS))
    .order_by(queue.c.next_attempt_at)
)
_DELIVERED = (
    update(queue)
    .where(queue.c.id.in_(_IDS), queue.c.lease_owner == bindparam("owner"))
    .values(
        status="delivered",
        finished_at=bindparam("finished", type_=queue.c.finished_at.type),
        last_error=None,
        lease_owner=None,
        lease_until=None,
    )
)


def _pid_of(owner: str, host: str) -> int | None:
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return None
    return int(parts[1])


@dataclass(frozen=True)
class QueueRow:
    id: int
    queue_id: str
    kind: str
    status: str
    mail_from: str
    recipients: tuple[str, ...]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    lease_owner: str | None = None  # "sending": the gateway (host:pid:worker) sending it
    lease_until: datetime | None = None  # ... and when another may take it over


class QueueStore:
    def __init__(self, engine: Engine, *, lease: float = 600.0) -> None:
        self.engine = engine
        self.lease = timedelta(seconds=lease)
        self._skip_locked = is_postgres(engine)

    def claim(self, owner: str, now: datetime, limit: int = 16) -> list[QueueEntry]:
        """Lease up to `limit` due entries to `owner`; no other worker gets them meanwhile.

        PostgreSQL: FOR UPDATE SKIP LOCKED lets many gateways claim without waiting on each
        other. SQLite: BEGIN IMMEDIATE already serialises writers, so the select-then-update
        cannot interleave.
        """
        now = utc_naive(now)
        until = now + self.lease
        pick = _PICK_SKIP_LOCKED if self._skip_locked else _PICK
        with transaction(self.engine) as conn:
            ids = list(conn.execute(pick, {"now": now, "limit": limit}).scalars())
            if not ids:
                return []
            conn.execute(_LEASE, {"ids": ids, "owner": owner, "until": until})
            rows = conn.execute(_CLAIMED, {"ids": ids}).all()
        return [
            QueueEntry(
                id=row.id,
                archive_id=row.archive_id,
                queue_id=row.queue_id,
                kind=row.kind,
                mail_from=row.mail_from,
                recipients=tuple(row.recipients),
                attempts=row.attempts,
                created_at=row.created_at,
                expires_at=row.expires_at,
                body=bytes(row.prefix)
                + zlib.decompress(row.content_gz if row.content_gz is not None else row.raw_gz),
                lease_until=until,
            )
            for row in rows
        ]

    def delivered_many(self, entry_ids: Sequence[int], owner: str, now: datetime) -> int:
        """Mark every entry in `entry_ids` delivered in ONE transaction (one fsync for many
        sends); only while `owner` still holds the lease. Returns how many
        rows changed."""
        if not entry_ids:
            return 0
        with transaction(self.engine) as conn:
            return self.delivered_on(conn, entry_ids, owner, now)

    @staticmethod
    def delivered_on(conn: Connection, entry_ids: Sequence[int], owner: str, now: datetime) -> int:
        """`delivered_many` within the caller's transaction: the archive writer commits these
        marks together with the records it writes (one transaction and one fsync for both)."""
        result = conn.execute(
            _DELIVERED, {"ids": list(entry_ids), "owner": owner, "finished": utc_naive(now)}
        )
        changed = int(result.rowcount)
        if changed < len(entry_ids):
            # Its lease ran out before the send was recorded: another worker may send it again.
            log.warning("delivered_after_lease_lost", owner=owner, entries=len(entry_ids) - changed)
        return changed

    @staticmethod
    def partly_delivered_on(
        conn: Connection, entry_id: int, owner: str, now: datetime, error: str
    ) -> int:
        """Delivered to some recipients and refused for the others (`error` says which and
        why): kept on the entry, so that whether a child received it can be read back."""
        return QueueStore._finish_on(conn, entry_id, owner, now, status="delivered", error=error)

    @staticmethod
    def failed_on(conn: Connection, entry_id: int, owner: str, now: datetime, error: str) -> int:
        """Gives the entry up, within the caller's transaction (with the bounce it owes); 0 if
        `owner` no longer holds the lease."""
        return QueueStore._finish_on(conn, entry_id, owner, now, status="failed", error=error)

    @staticmethod
    def _finish_on(
        conn: Connection,
        entry_id: int,
        owner: str,
        now: datetime,
        *,
        status: str,
        error: str | None,
    ) -> int:
        result = conn.execute(
            update(queue)
            .where(queue.c.id == entry_id, queue.c.lease_owner == owner)
            .values(
                status=status,
                finished_at=utc_naive(now),
                last_error=error,
                lease_owner=None,
                lease_until=None,
            )
        )
        return int(result.rowcount)

    def retry_later(
        self,
        entry_id: int,
        owner: str,
        *,
        at: datetime,
        error: str,
        recipients: Sequence[str] | None = None,
    ) -> None:
        """Back to the queue until `at`; `recipients` narrows it to those still pending."""
        with transaction(self.engine) as conn:
            self.retry_later_on(conn, entry_id, owner, at=at, error=error, recipients=recipients)

    @staticmethod
    def retry_later_on(
        conn: Connection,
        entry_id: int,
        owner: str,
        *,
        at: datetime,
        error: str,
        recipients: Sequence[str] | None = None,
    ) -> int:
        """`retry_later` within the caller's transaction; 0 if `owner` no longer holds the
        lease."""
        values: dict[str, object] = {
            "status": "queued",
            "next_attempt_at": utc_naive(at),
            "attempts": queue.c.attempts + 1,
            "last_error": error,
            "lease_owner": None,
            "lease_until": None,
        }
        if recipients is not None:
            values["recipients"] = list(recipients)
        result = conn.execute(
            update(queue)
            .where(queue.c.id == entry_id, queue.c.lease_owner == owner)
            .values(**values)
        )
        return int(result.rowcount)

    def release_dead(self, host: str, now: datetime, alive: Callable[[int], bool]) -> int:
        """Run out now the leases held by processes of `host` that no longer run (killed, or
        crashed): their entries go out at the next claim instead of waiting out the lease.
        Owners are "host:pid:worker"; only this host's pids can be checked. Returns how many
        entries were released."""
        with self.engine.connect() as conn:
            owners = conn.execute(
                select(queue.c.lease_owner)
                .where(queue.c.status == "sending", queue.c.lease_owner.like(f"{host}:%"))
                .distinct()
            ).scalars()
            pids = {owner: _pid_of(owner, host) for owner in owners}
        dead = [owner for owner, pid in pids.items() if pid is not None and not alive(pid)]
        if not dead:
            return 0
        with transaction(self.engine) as conn:
            result = conn.execute(
                update(queue)
                .where(queue.c.status == "sending", queue.c.lease_owner.in_(dead))
                .values(lease_until=utc_naive(now) - timedelta(seconds=1))
            )
        return int(result.rowcount)

    def sending(self, entry_id: int) -> tuple[str, datetime | None] | None:
        """Who is sending this entry and until when they hold it, if it is being sent."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(queue.c.lease_owner, queue.c.lease_until).where(
                    queue.c.id == entry_id, queue.c.status == "sending"
                )
            ).first()
        return None if row is None else (row.lease_owner or "?", row.lease_until)

    def retry_now(self, entry_id: int, now: datetime) -> bool:
        """`safeguard queue retry`: make a waiting entry due now (a held message included)."""
        with transaction(self.engine) as conn:
            result = conn.execute(
                update(queue)
                .where(queue.c.id == entry_id, queue.c.status == "queued")
                .values(next_attempt_at=utc_naive(now))
            )
        return result.rowcount == 1

    def waiting_for(self, queue_id: str) -> list[int]:
        """The waiting entries (`queued`) of the message the reference `queue_id` names (the
        id of `250 ... queued as` and of the notices), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(queue.c.id)
                .join(archive, archive.c.id == queue.c.archive_id)
                .where(archive.c.queue_id == queue_id, queue.c.status == "queued")
                .order_by(queue.c.id)
            ).all()
        return [row.id for row in rows]

    def waiting(self) -> dict[str, int]:
        """How many entries wait for delivery (`queued`) or are being sent (`sending`); read
        through the (status, next_attempt_at) index, not the delivered history."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(queue.c.status, func.count())
                .where(queue.c.status.in_(("queued", "sending")))
                .group_by(queue.c.status)
            ).all()
        return {"queued": 0, "sending": 0} | {row[0]: int(row[1]) for row in rows}

    def pending(self, limit: int = 200) -> list[QueueRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    queue.c.id,
                    archive.c.queue_id,
                    queue.c.kind,
                    queue.c.status,
                    queue.c.mail_from,
                    queue.c.recipients,
                    queue.c.attempts,
                    queue.c.next_attempt_at,
                    queue.c.last_error,
                    queue.c.lease_owner,
                    queue.c.lease_until,
                )
                .join(archive, archive.c.id == queue.c.archive_id)
                .where(queue.c.status.in_(("queued", "sending")))
                .order_by(queue.c.next_attempt_at, queue.c.id)
                .limit(limit)
            ).all()
        return [
            QueueRow(
                id=row.id,
                queue_id=row.queue_id,
                kind=row.kind,
                status=row.status,
                mail_from=row.mail_from,
                recipients=tuple(row.recipients),
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at,
                last_error=row.last_error,
                lease_owner=row.lease_owner,
                lease_until=row.lease_until,
            )
            for row in rows
        ]
