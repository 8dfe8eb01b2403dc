"""Retention in the store: find old records, turn them into tombstones, remember that we did.

A tombstone keeps exactly what the hash chain covers (queue id, time, verdict, the raw
message's SHA-256, the links) so `archive verify` still walks an unbroken chain; everything
else about the message (bytes, text, addresses, findings, queue copies) is removed. Which
records may go is the policy's decision (gateway.policy.retention), not the store's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, and_, delete, func, insert, select, update

from gateway.store.db import transaction
from gateway.store.records import utc_naive
from gateway.store.schema import (
    archive,
    archive_addresses,
    archive_findings,
    audit_log,
    queue,
    reviews,
)

FINISHED = ("delivered", "failed", "cancelled")
PURGE_ACTION = "purge"


@dataclass(frozen=True)
class Candidate:
    """A record old enough that retention might let it go."""

    id: int
    queue_id: str
    received_at: datetime  # naive UTC, as stored
    youngest_minor_born: date | None
    addresses: tuple[str, ...]


def live_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(archive).where(archive.c.purged_at.is_(None))
            ).scalar_one()
        )


def candidates(
    engine: Engine, received_before: datetime, *, batch: int = 1000
) -> Iterator[list[Candidate]]:
    """Records not yet purged and received before `received_before`, oldest id first."""
    before = utc_naive(received_before)
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    archive.c.id,
                    archive.c.queue_id,
                    archive.c.received_at,
                    archive.c.youngest_minor_born,
                )
                .where(
                    archive.c.id > after,
                    archive.c.purged_at.is_(None),
                    archive.c.received_at < before,
                )
                .order_by(archive.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return
            ids = [row.id for row in rows]
            people: dict[int, set[str]] = {i: set() for i in ids}
            for archive_id, address in conn.execute(
                select(archive_addresses.c.archive_id, archive_addresses.c.address).where(
                    archive_addresses.c.archive_id.in_(ids)
                )
            ):
                people[archive_id].add(address)
        yield [
            Candidate(
                row.id,
                row.queue_id,
                row.received_at,
                row.youngest_minor_born,
                tuple(sorted(people[row.id])),
            )
            for row in rows
        ]
        after = ids[-1]


def tombstone(
    engine: Engine, ids: Sequence[int], *, at: datetime, actor: str, rule: str
) -> list[int]:
    """Empty the given records and audit it, in one transaction; return the ids purged.

    The audit row names the ids, so a record emptied any other way (by SQL) shows up in
    `archive verify`. A record with a queue entry still waiting (not delivered, failed or
    cancelled) is left alone: it cannot be past retention unless the queue is stuck, and then
    it is evidence.
    """
    if not ids:
        return []
    with transaction(engine) as conn:
        busy = {
            row.archive_id
            for row in conn.execute(
                select(queue.c.archive_id).where(
                    queue.c.archive_id.in_(ids), queue.c.status.not_in(FINISHED)
                )
            )
        }
        chosen = [i for i in ids if i not in busy]
        if not chosen:
            return []
        conn.execute(delete(queue).where(queue.c.archive_id.in_(chosen)))
        conn.execute(delete(archive_addresses).where(archive_addresses.c.archive_id.in_(chosen)))
        conn.execute(delete(archive_findings).where(archive_findings.c.archive_id.in_(chosen)))
        # A lead's review note speaks of the message (and the child): it goes with it.
        conn.execute(delete(reviews).where(reviews.c.archive_id.in_(chosen)))
        conn.execute(
            update(archive)
            .where(and_(archive.c.id.in_(chosen), archive.c.purged_at.is_(None)))
            .values(
                client_address="",
                helo="",
                auth_user=None,
                envelope_from="",
                envelope_to=[],
                from_addr="",
                to_addrs=[],
                cc_addrs=[],
                bcc_addrs=[],
                subject="",
                message_id=None,
                body_text="",
                raw_gz=b"",
                findings=[],
                evaluation={},
                dedupe_key=None,
                youngest_minor_born=None,
                purged_at=utc_naive(at),
            )
        )
        conn.execute(
            insert(audit_log),
            {
                "at": utc_naive(at),
                "actor": actor[:320],
                "action": PURGE_ACTION,
                "query": rule,
                "result_count": len(chosen),
                "detail": {"ranges": as_ranges(chosen)},
            },
        )
        return chosen


def as_ranges(ids: Iterable[int]) -> list[list[int]]:
    """[1, 2, 3, 7, 8] -> [[1, 3], [7, 8]]: an audit entry stays small for a year's records."""
    ranges: list[list[int]] = []
    for i in sorted(ids):
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges


def audited_ids(engine: Engine) -> list[tuple[int, int]]:
    """Every id range an audited purge says it emptied (verify checks each tombstone is in one)."""
    found: list[tuple[int, int]] = []
    with engine.connect() as conn:
        for (detail,) in conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == PURGE_ACTION)
        ):
            for first, last in (detail or {}).get("ranges", []):
                found.append((int(first), int(last)))
    return sorted(found)
