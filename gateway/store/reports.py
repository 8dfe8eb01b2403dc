"""Read-only summaries of the archive for people: the safeguarding lead's digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from gateway.store.records import utc_naive
from gateway.store.schema import archive


@dataclass(frozen=True)
class ArchivedVerdict:
    archive_id: int
    queue_id: str
    received_at: datetime
    sender: str
    recipients: tuple[str, ...]
    subject: str
    verdict: str
    findings: tuple[dict[str, Any], ...]
    # The header From, when it names someone other than `sender` (the envelope's: the
    # address the relay made staff send as, so the one a flag is counted against).
    written_as: str = ""


def verdicts_since(engine: Engine, since: datetime) -> list[ArchivedVerdict]:
    """Messages with findings since `since` (gateway-generated notices left out)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                archive.c.id,
                archive.c.queue_id,
                archive.c.received_at,
                archive.c.from_addr,
                archive.c.envelope_from,
                archive.c.envelope_to,
                archive.c.subject,
                archive.c.verdict,
                archive.c.findings,
            )
            .where(archive.c.received_at >= utc_naive(since))
            .where(archive.c.client_address != "gateway")
            .where(archive.c.verdict != "deliver")
            .order_by(archive.c.received_at)
        ).all()
    return [_verdict(r) for r in rows]


def _verdict(r: Any) -> ArchivedVerdict:
    sender = r.envelope_from or r.from_addr
    return ArchivedVerdict(
        r.id,
        r.queue_id,
        r.received_at,
        sender,
        tuple(r.envelope_to),
        r.subject,
        r.verdict,
        tuple(r.findings),
        written_as=r.from_addr if r.from_addr and r.from_addr != sender else "",
    )
