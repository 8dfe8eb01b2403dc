"""Writing the archive and its queue entries in one transaction, and reading them back."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.exc import NoResultFound

from gateway.store.bulk import Bulk
from gateway.store.db import is_postgres, transaction
from gateway.store.records import (
    ArchiveRecord,
    Lease,
    QueueEntry,
    QueueItem,
    Stored,
    chain_hash,
    content_digest,
    utc_naive,
)
from gateway.store.schema import (
    archive,
    archive_addresses,
    archive_findings,
    archive_search_insert,
    chain_head,
    queue,
)
from gateway.store.search import index_rows, text_vector

# Built once: SQLAlchemy caches a statement's compiled form under a key it derives from the
# statement object each time one is executed; a new object per call pays for that every time.
_HEAD = select(chain_head.c.last_hash).where(chain_head.c.id == 1)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_SEEN = select(archive.c.dedupe_key, archive.c.id, archive.c.queue_id).where(
    archive.c.dedupe_key.in_(bindparam("keys", expanding=True))
)
_SET_HEAD = (
    update(chain_head)
    .where(chain_head.c.id == 1)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)

# PostgreSQL through psycopg (`Bulk.pipeline`): one round trip locks the chain head, looks up
# the batch's dedupe keys and takes its new rows' ids from the tables' own sequences; one more
# writes every row and the new head. Through Core each statement waited for its answer, the
# head locked: a batch took nine round trips in libpq's trace, four now with BEGIN and COMMIT.
# The ids are taken while the head is locked, as an INSERT takes them, so the chain stays in
# id order across gateways (and beside one that writes through Core): this holds while every
# archive row is written under the head's lock and the sequences hand out ids in order (their
# cache is 1, as SERIAL makes them; a sequence cached per session would break it).
_PG_HEAD = "SELECT last_hash FROM chain_head WHERE id = 1 FOR UPDATE"
_PG_IDS = (
    "SELECT ARRAY(SELECT nextval(pg_get_serial_sequence('archive', 'id')::regclass)"
    " FROM generate_series(1, %s)),"
    " ARRAY(SELECT nextval(pg_get_serial_sequence('queue', 'id')::regclass)"
    " FROM generate_series(1, %s))"
)
_PG_SEEN = "SELECT dedupe_key, id, queue_id FROM archive WHERE dedupe_key = ANY(%s)"
_PG_SET_HEAD = "UPDATE chain_head SET last_id = %s, last_hash = %s WHERE id = 1"


@dataclass
class Rows:
    """One record's rows, built before the transaction (`Archive.prepare`): compressing and
    laying out a batch takes no lock, so other writers (another relay process) wait only for
    the statements. The chain link and the ids are filled in under the lock (`Archive.write`);
    a failed transaction's rows are not written again (prepare the record anew)."""

    record: ArchiveRecord
    items: Sequence[QueueItem]
    key: str | None  # dedupe key
    row: dict[str, object]  # the archive row, but prev_hash, record_hash (and id)
    queue_rows: list[dict[str, object]]  # and the side tables' rows, but their archive_id
    address_rows: list[dict[str, object]]
    finding_rows: list[dict[str, object]]
    archive_id: int = 0
    # Which of `queue_rows` are written leased (see `lease`), with the bytes each will send.
    leased_bodies: dict[int, bytes] = field(default_factory=dict)

    def link(self, prev_hash: str) -> str:
        record = self.record
        record_hash = chain_hash(
            prev_hash,
            str(self.row["raw_sha256"]),
            record.verdict,
            record.received_at,
            record.queue_id,
            # Always made by `_archive_row`; a test writing as the code before 0010 drops it.
            self.row.get("content_sha256"),  # type: ignore[arg-type]
        )
        self.row["prev_hash"] = prev_hash
        self.row["record_hash"] = record_hash
        return record_hash

    def number(self, archive_id: int) -> None:
        self.archive_id = archive_id
        for rows in (self.queue_rows, self.address_rows, self.finding_rows):
            for row in rows:
                row["archive_id"] = archive_id

    def lease(self, lease: Lease) -> bool:
        """Lease the entries due now (not held for later); whether there were any."""
        until = utc_naive(lease.until)
        for index, (row, item) in enumerate(zip(self.queue_rows, self.items, strict=True)):
            if row["not_before"] <= row["created_at"]:  # type: ignore[operator]
                row.update(status="sending", lease_owner=lease.owner, lease_until=until)
                content = item.content if item.content is not None else self.record.raw
                self.leased_bodies[index] = item.prefix + content
        return bool(self.leased_bodies)

    def entries(self, row_ids: Sequence[int]) -> list[QueueEntry]:
        """The leased rows as entries to send, given every queue row's id in order."""
        if len(row_ids) != len(self.queue_rows):  # pragma: no cover - a broken driver
            raise RuntimeError(f"{len(row_ids)} queue ids for {len(self.queue_rows)} rows")
        entries = []
        for index, body in self.leased_bodies.items():
            row = self.queue_rows[index]
            entries.append(
                QueueEntry(
                    id=row_ids[index],
                    archive_id=self.archive_id,
                    queue_id=self.record.queue_id,
                    kind=str(row["kind"]),
                    mail_from=str(row["mail_from"]),
                    recipients=tuple(row["recipients"]),  # type: ignore[call-overload]
                    attempts=0,
                    created_at=row["created_at"],  # type: ignore[arg-type]
                    expires_at=row["expires_at"],  # type: ignore[arg-type]
                    body=body,
                    lease_until=row["lease_until"],  # type: ignore[arg-type]
                )
            )
        return entries


def _archive_row(record: ArchiveRecord, key: str | None, *, vector: bool) -> dict[str, object]:
    row: dict[str, object] = {
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
    }
    row["content_sha256"] = content_digest(row)
    if vector:
        row["search_tsv"] = text_vector(record.subject, record.body_text)
    return row


def queue_row(
    archive_id: int, item: QueueItem, created: datetime, lifetime: timedelta
) -> dict[str, object]:
    """The queue table's row for `item` of archived message `archive_id`; `created` naive UTC."""
    not_before = utc_naive(item.not_before) if item.not_before else created
    return {
        "archive_id": archive_id,
        "kind": item.kind,
        "mail_from": item.mail_from,
        "recipients": list(item.recipients),
        "prefix": item.prefix,
        "content_gz": zlib.compress(item.content, 6) if item.content is not None else None,
        "status": "queued",
        "created_at": created,
        "not_before": not_before,
        "next_attempt_at": not_before,
        # A held message's lifetime starts when it may first be sent.
        "expires_at": max(not_before, created) + lifetime,
        "attempts": 0,
        # Every row carries every key (one executemany); `lease` may set them.
        "lease_owner": None,
        "lease_until": None,
    }


class Archive:
    def __init__(self, engine: Engine, *, lifetime: float = 5 * 86400.0) -> None:
        self.engine = engine
        self.lifetime = timedelta(seconds=lifetime)
        self._lock_head = is_postgres(engine)
        self._bulk = Bulk(engine.dialect)
        self._pipelined = self._bulk.psycopg
        # PostgreSQL: the writer makes the full-text vector (text_vector); SQLite's FTS5
        # triggers index the text themselves.
        self._vector = is_postgres(engine)
        self._table = archive_search_insert if self._vector else archive

    def store(
        self, record: ArchiveRecord, items: Sequence[QueueItem], *, lease: Lease | None = None
    ) -> Stored:
        return self.store_many([(record, items)], lease=lease)[0]

    def store_many(
        self,
        batch: Sequence[tuple[ArchiveRecord, Sequence[QueueItem]]],
        *,
        lease: Lease | None = None,
    ) -> list[Stored]:
        """Archive and queue every message of `batch` in ONE transaction: one fsync for many.

        With `lease`, the entries due now are written already leased to its owner and come back
        in `Stored.leased`, ready to send; held ones (`not_before` later) wait in the queue."""
        rows = [self.prepare(record, items) for record, items in batch]
        with transaction(self.engine) as conn:
            return self.write(conn, rows, lease)

    def prepare(self, record: ArchiveRecord, items: Sequence[QueueItem]) -> Rows:
        addresses, findings = index_rows(0, record)
        key = record.dedupe_key
        return Rows(
            record,
            items,
            key,
            _archive_row(record, key, vector=self._vector),
            self._queue_rows(0, record, items),
            addresses,
            findings,
        )

    def write(self, conn: Connection, batch: Sequence[Rows], lease: Lease | None) -> list[Stored]:
        """`store_many` within the caller's transaction, of rows made by `prepare`."""
        keys = [p.key for p in batch if p.key]
        if not self._pipelined:
            # Several gateways on one PostgreSQL: the chain head (FOR UPDATE) serialises writers.
            last_hash = conn.execute(_HEAD_FOR_UPDATE if self._lock_head else _HEAD).scalar_one()
            seen: dict[str, tuple[int, str]] = {}
            if keys:
                rows = conn.execute(_SEEN, {"keys": keys})
                seen = {row.dedupe_key: (row.id, row.queue_id) for row in rows}
            return self._write(conn, batch, lease, last_hash, seen, None)
        with self._bulk.pipeline(conn):
            queries: list[tuple[str, Sequence[object]]] = [
                (_PG_HEAD, ()),
                (_PG_IDS, (len(batch), sum(len(p.queue_rows) for p in batch))),
            ]
            if keys:
                queries.append((_PG_SEEN, (keys,)))
            head, [(archive_ids, queue_ids)], *found = self._bulk.fetch(conn, queries)
            if not head:  # as Core's scalar_one says it
                raise NoResultFound("the archive's chain head (chain_head, id 1) is missing")
            [(last_hash,)] = head
            seen = {key: (id_, queue_id) for rows in found for key, id_, queue_id in rows}
            allocated = (iter(sorted(archive_ids)), iter(sorted(queue_ids)))
            return self._write(conn, batch, lease, last_hash, seen, allocated)

    def _write(
        self,
        conn: Connection,
        batch: Sequence[Rows],
        lease: Lease | None,
        last_hash: str,
        seen: dict[str, tuple[int, str]],
        allocated: tuple[Iterator[int], Iterator[int]] | None,
    ) -> list[Stored]:
        """`write` once the chain head is read (and locked) and the dedupe keys looked up;
        `allocated`: the new archive and queue rows' ids, when taken beforehand."""
        # The chain first (it needs no ids), then every new record in one go (store/bulk.py).
        fresh: list[Rows] = []
        # Per record of `batch`: its answer, when archived before; else (index into `fresh`,
        # whether it repeats a message met earlier in this same batch).
        plan: list[Stored | tuple[int, bool]] = []
        first_in_batch: dict[str, int] = {}
        for pending in batch:
            key = pending.key
            if key and key in seen:
                archive_id, queue_id = seen[key]
                plan.append(Stored(archive_id, queue_id, duplicate=True))
                continue
            if key and key in first_in_batch:
                plan.append((first_in_batch[key], True))
                continue
            last_hash = pending.link(last_hash)
            if key:
                first_in_batch[key] = len(fresh)
            plan.append((len(fresh), False))
            fresh.append(pending)

        ids: list[int] = []
        if fresh:
            rows = [p.row for p in fresh]
            if allocated is None:
                ids = self._bulk.insert_ids(conn, self._table, rows)
            else:
                ids = [next(allocated[0]) for _ in fresh]
                for row, archive_id in zip(rows, ids, strict=True):
                    row["id"] = archive_id
                self._bulk.insert(conn, self._table, rows)
            # The queue and search's side tables, in the same transaction.
            for archive_id, pending in zip(ids, fresh, strict=True):
                pending.number(archive_id)
            leased = self._insert_queue(
                conn, fresh, lease, None if allocated is None else allocated[1]
            )
            for table, side in (
                (archive_addresses, [r for p in fresh for r in p.address_rows]),
                (archive_findings, [r for p in fresh for r in p.finding_rows]),
            ):
                self._bulk.insert(conn, table, side)
            if allocated is None:
                conn.execute(_SET_HEAD, {"new_id": ids[-1], "new_hash": last_hash})
            else:
                self._bulk.execute(conn, _PG_SET_HEAD, (ids[-1], last_hash))

        results: list[Stored] = []
        for step in plan:
            if isinstance(step, Stored):
                results.append(step)
            else:
                index, duplicate = step
                pending = fresh[index]
                if duplicate:
                    results.append(Stored(ids[index], pending.record.queue_id, duplicate=True))
                    continue
                entries = tuple(leased.get(ids[index], ()))
                results.append(
                    Stored(
                        ids[index],
                        pending.record.queue_id,
                        duplicate=False,
                        leased=entries,
                        unleased=len(entries) < len(pending.queue_rows),
                    )
                )
        return results

    def _insert_queue(
        self,
        conn: Connection,
        fresh: Sequence[Rows],
        lease: Lease | None,
        allocated: Iterator[int] | None,
    ) -> dict[int, list[QueueEntry]]:
        """Insert the batch's queue rows (with the ids `allocated`, if given); with `lease`,
        those due now are leased to its owner and returned, by archive id, as entries to send."""
        rows = [r for p in fresh for r in p.queue_rows]
        due = [] if lease is None else [p for p in fresh if p.lease(lease)]
        if allocated is not None:
            taken = [next(allocated) for _ in rows]
            for row, row_id in zip(rows, taken, strict=True):
                row["id"] = row_id
            self._bulk.insert(conn, queue, rows)
            row_ids = iter(taken)
        elif not due:
            self._bulk.insert(conn, queue, rows)
            return {}
        else:
            row_ids = iter(self._bulk.insert_ids(conn, queue, rows))
        ids = {p.archive_id: [next(row_ids) for _ in p.queue_rows] for p in fresh}
        return {p.archive_id: p.entries(ids[p.archive_id]) for p in due}

    def _queue_rows(
        self, archive_id: int, record: ArchiveRecord, items: Sequence[QueueItem]
    ) -> list[dict[str, object]]:
        created = utc_naive(record.received_at)
        return [queue_row(archive_id, item, created, self.lifetime) for item in items]
