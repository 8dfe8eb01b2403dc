"""One archived message as a safeguarding lead looks at it: the record, exactly as received,
and what became of it (its queue entries: delivery, bounce, notice, alert)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, select

from gateway.chat import sent_apart
from gateway.store.records import as_aware
from gateway.store.schema import archive, archive_findings, queue


@dataclass(frozen=True)
class QueueHistory:
    id: int
    kind: str  # deliver | bounce | notice | alert
    recipients: tuple[str, ...]
    status: str  # queued | sending | delivered | failed | cancelled
    created_at: datetime  # aware UTC, as the rest
    not_before: datetime
    next_attempt_at: datetime
    attempts: int
    last_error: str | None
    finished_at: datetime | None
    content: bytes | None  # a notice's own bytes (bounce, notice, alert, a rewritten copy)


@dataclass(frozen=True)
class ArchivedMessage:
    id: int
    queue_id: str
    received_at: datetime
    channel: str
    auth_user: str | None
    client_address: str
    envelope_from: str
    envelope_to: tuple[str, ...]
    from_addr: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    verdict: str
    mode: str
    findings: tuple[dict[str, Any], ...]
    raw: bytes | None  # None once retention has made the record a tombstone
    purged_at: datetime | None
    history: tuple[QueueHistory, ...]


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_aware(moment)


def archive_id_for(engine: Engine, queue_id: str) -> int | None:
    """The record of an archive reference (the queue id notices and alerts quote)."""
    with engine.connect() as conn:
        found = conn.execute(select(archive.c.id).where(archive.c.queue_id == queue_id)).scalar()
    return None if found is None else int(found)


def archived_message(engine: Engine, archive_id: int) -> ArchivedMessage | None:
    with engine.connect() as conn:
        row = conn.execute(select(archive).where(archive.c.id == archive_id)).first()
        if row is None:
            return None
        entries = conn.execute(
            select(queue).where(queue.c.archive_id == archive_id).order_by(queue.c.id)
        ).all()
    purged = row.purged_at is not None
    return ArchivedMessage(
        id=row.id,
        queue_id=row.queue_id,
        received_at=as_aware(row.received_at),
        channel=row.channel,
        auth_user=row.auth_user,
        client_address=row.client_address,
        envelope_from=row.envelope_from,
        envelope_to=tuple(row.envelope_to or ()),
        from_addr=row.from_addr,
        to=tuple(row.to_addrs or ()),
        cc=tuple(row.cc_addrs or ()),
        bcc=tuple(row.bcc_addrs or ()),
        subject=row.subject,
        verdict=row.verdict,
        mode=row.mode,
        findings=tuple(row.findings or ()),
        raw=None if purged or not row.raw_gz else zlib.decompress(row.raw_gz),
        purged_at=_aware(row.purged_at),
        history=tuple(
            QueueHistory(
                id=e.id,
                kind=e.kind,
                recipients=tuple(e.recipients or ()),
                status=e.status,
                created_at=as_aware(e.created_at),
                not_before=as_aware(e.not_before),
                next_attempt_at=as_aware(e.next_attempt_at),
                attempts=e.attempts,
                last_error=e.last_error,
                finished_at=_aware(e.finished_at),
                content=None if e.content_gz is None else zlib.decompress(e.content_gz),
            )
            for e in entries
        ),
    )


@dataclass(frozen=True)
class ListedMessage:
    """What a row of the console's lists (search results, a person's page, the review queue)
    shows beside a search hit or a queue entry."""

    channel: str  # "email", or the chat tool's ("whatsapp"): its verdict is worded for it
    # When the chat tool sent a chat message it passed on late (`gateway.chat.sent_apart`, from
    # the archived message's Date:), else None.
    sent_at: datetime | None
    # A finding other than a rewrite: the review queue lists it until it is reviewed
    # (ReviewStore.awaiting). A rewrite alone (mass mail moved to Bcc) needs no review.
    needs_review: bool


def listed_messages(engine: Engine, archive_ids: list[int]) -> dict[int, ListedMessage]:
    """`ListedMessage` of each of these records (a page of them: two lookups by primary key).
    Only a chat message's bytes are read (the API takes 256 kB at most), never a mail's."""
    if not archive_ids:
        return {}
    chat_raw = case((archive.c.channel != "email", archive.c.raw_gz), else_=None)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                archive.c.id, archive.c.channel, archive.c.received_at, chat_raw.label("raw")
            ).where(archive.c.id.in_(archive_ids))
        ).all()
        # As the review queue decides (ReviewStore.awaiting), so that "Not yet" means it waits.
        waiting = set(
            conn.execute(
                select(archive_findings.c.archive_id)
                .where(
                    archive_findings.c.archive_id.in_(archive_ids),
                    archive_findings.c.action != "rewrite",
                )
                .distinct()
            ).scalars()
        )
    return {
        row.id: ListedMessage(
            channel=row.channel,
            sent_at=sent_apart(
                row.channel,
                zlib.decompress(row.raw) if row.raw else None,
                as_aware(row.received_at),
            ),
            needs_review=row.id in waiting,
        )
        for row in rows
    }
