"""Writing the archive and its queue entries in one transaction, and reading them back."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Connection, Engine, insert, select, update

from gateway.store.db import is_postgres, transaction
from gateway.store.records import ArchiveRecord, QueueItem, Stored, chain_hash, utc_naive
from gateway.store.schema import archive, archive_addresses, archive_findings, chain_head, queue
from gateway.store.search import index_rows


class Archive:
    def __init__(self, engine: Engine, *, lifetime: float = 5 * 86400.0) -> None:
        self.engine = engine
        self.lifetime = timedelta(seconds=lifetime)
        self._lock_head = is_postgres(engine)

    def store(self, record: ArchiveRecord, items: Sequence[QueueItem]) -> Stored:
        return self.store_many([(record, items)])[0]

    def store_many(
        self, batch: Sequence[tuple[ArchiveRecord, Sequence[QueueItem]]]
    ) -> list[Stored]:
        """Archive and queue every message of `batch` in ONE transaction: one fsync for many."""
        with transaction(self.engine) as conn:
            return self._store_many(conn, batch)

    def _store_many(
        self, conn: Connection, batch: Sequence[tuple[ArchiveRecord, Sequence[QueueItem]]]
    ) -> list[Stored]:
        head = select(chain_head.c.last_id, chain_head.c.last_hash).where(chain_head.c.id == 1)
        if self._lock_head:
            # Several gateways on one PostgreSQL: the chain head serialises archive writers.
            head = head.with_for_update()
        _last_id, last_hash = conn.execute(head).one()

        keys = [r.dedupe_key for r, _ in batch if r.dedupe_key]
        seen: dict[str, tuple[int, str]] = {}
        if keys:
            rows = conn.execute(
                select(archive.c.dedupe_key, archive.c.id, archive.c.queue_id).where(
                    archive.c.dedupe_key.in_(keys)
                )
            )
            seen = {row.dedupe_key: (row.id, row.queue_id) for row in rows}

        results: list[Stored] = []
        last_id = _last_id
        # Search's side tables, written in the same transaction as the records they describe.
        address_rows: list[dict[str, object]] = []
        finding_rows: list[dict[str, object]] = []
        for record, items in batch:
            key = record.dedupe_key
            if key and key in seen:
                archive_id, queue_id = seen[key]
                results.append(Stored(archive_id, queue_id, duplicate=True))
                continue
            record_hash = chain_hash(
                last_hash, record.raw_sha256, record.verdict, record.received_at, record.queue_id
            )
            archive_id = conn.execute(
                insert(archive).returning(archive.c.id),
                {
                    "queue_id": record.queue_id,
                    "received_at": utc_naive(record.received_at),
                    "channel": record.channel,
                    "client_address": record.client_address,
                    "helo": record.helo[:255],
                    "auth_user": record.auth_user,
                    "envelope_from": record.envelope_from,
                    "envelope_to": list(record.envelope_to),
                    "from_addr": record.from_addr,
                    "to_addrs": list(record.to_addrs),
                    "cc_addrs": list(record.cc_addrs),
                    "bcc_addrs": list(record.bcc_addrs),
                    "subject": record.subject,
                    "message_id": record.message_id[:998] if record.message_id else None,
                    "body_text": record.body_text,
                    "size": len(record.raw),
                    "raw_sha256": record.raw_sha256,
                    "raw_gz": zlib.compress(record.raw, 6),
                    "verdict": record.verdict,
                    "mode": record.mode,
                    "findings": list(record.findings),
                    "evaluation": record.evaluation,
                    "dedupe_key": key,
                    "youngest_minor_born": record.youngest_minor_born,
                    "prev_hash": last_hash,
                    "record_hash": record_hash,
                },
            ).scalar_one()
            addresses, findings = index_rows(archive_id, record)
            address_rows.extend(addresses)
            finding_rows.extend(findings)
            if key:
                seen[key] = (archive_id, record.queue_id)
            last_hash, last_id = record_hash, archive_id
            self._queue(conn, archive_id, record, items)
            results.append(Stored(archive_id, record.queue_id, duplicate=False))
        if address_rows:
            conn.execute(insert(archive_addresses), address_rows)
        if finding_rows:
            conn.execute(insert(archive_findings), finding_rows)
        if last_id != _last_id:
            conn.execute(
                update(chain_head)
                .where(chain_head.c.id == 1)
                .values(last_id=last_id, last_hash=last_hash)
            )
        return results

    def _queue(
        self, conn: Connection, archive_id: int, record: ArchiveRecord, items: Sequence[QueueItem]
    ) -> None:
        created = utc_naive(record.received_at)
        rows = []
        for item in items:
            not_before = utc_naive(item.not_before) if item.not_before else created
            rows.append(
                {
                    "archive_id": archive_id,
                    "kind": item.kind,
                    "mail_from": item.mail_from,
                    "recipients": list(item.recipients),
                    "prefix": item.prefix,
                    "content_gz": zlib.compress(item.content, 6)
                    if item.content is not None
                    else None,
                    "status": "queued",
                    "created_at": created,
                    "not_before": not_before,
                    "next_attempt_at": not_before,
                    # A held message's lifetime starts when it may first be sent.
                    "expires_at": max(not_before, created) + self.lifetime,
                    "attempts": 0,
                }
            )
        if rows:
            conn.execute(insert(queue), rows)
