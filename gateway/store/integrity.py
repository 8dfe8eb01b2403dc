"""Walking the archive's hash chain: every record links to the one before it."""

from __future__ import annotations

import bisect
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from gateway.store.records import CHAINED_COLUMNS, chain_hash, content_digest
from gateway.store.retention import audited_ids
from gateway.store.schema import archive, archive_addresses, archive_findings, chain_head
from gateway.store.search import index_rows

GENESIS = "0" * 64


@dataclass(frozen=True)
class Problem:
    archive_id: int
    queue_id: str
    reason: str

    def __str__(self) -> str:
        return f"record {self.archive_id} (queue id {self.queue_id}): {self.reason}"


@dataclass(frozen=True)
class Report:
    checked: int
    problem: Problem | None
    tombstones: int = 0  # records emptied by an audited retention purge (links still checked)
    head: str = ""  # "ID:HASH" of the last record, to keep elsewhere and pass back as `expect`

    @property
    def ok(self) -> bool:
        return self.problem is None


def parse_head(text: str) -> tuple[int, str]:
    """ "ID:HASH", as a report's `head` gives it; ValueError if it is not that."""
    number, _, digest = text.strip().partition(":")
    if not (
        number.isdigit() and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
    ):
        raise ValueError(
            f"expected ID:HASH as verify prints it (e.g. 1234:{'0' * 8}...), got {text!r}"
        )
    return int(number), digest


def verify(
    engine: Engine,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 2000,
    expect: tuple[int, str] | None = None,
) -> Report:
    """Recompute every link and every raw message's SHA-256; stop at the first mismatch.

    A tombstone (a record retention emptied) has no message left to hash, so only its link
    and record hash are recomputed, and it must fall inside a range an audited purge names.
    `expect`: a head kept from an earlier run (id, record hash): the chain must still pass
    through it. The chain has no secret, so rewriting every record from a change onwards, and
    the head, leaves a chain that verifies; a head kept elsewhere is what then differs.
    """
    purged = _Ranges(audited_ids(engine))
    with engine.connect() as conn:
        head_id, head_hash = conn.execute(
            select(chain_head.c.last_id, chain_head.c.last_hash).where(chain_head.c.id == 1)
        ).one()
        total = conn.execute(
            select(func.count()).select_from(archive).where(archive.c.id <= head_id)
        ).scalar_one()
    previous, checked, after, tombstones = GENESIS, 0, 0, 0
    # One snapshot per batch for the records and their search entries (PostgreSQL's default
    # gives each statement its own): a purge committed in between is not an alteration.
    snapshot = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    while True:
        with engine.connect().execution_options(**snapshot) as conn, conn.begin():
            rows = conn.execute(
                select(
                    archive.c.id,
                    archive.c.queue_id,
                    archive.c.raw_sha256,
                    archive.c.raw_gz,
                    archive.c.verdict,
                    archive.c.received_at,
                    archive.c.prev_hash,
                    archive.c.record_hash,
                    archive.c.purged_at,
                    archive.c.content_sha256,
                    *(archive.c[name] for name in CHAINED_COLUMNS),
                )
                # Up to the head read first: a running gateway archives more meanwhile, and a
                # record past it is not "removed from the end" (a review: a false alarm from
                # a nightly verify of a live gateway).
                .where(archive.c.id > after, archive.c.id <= head_id)
                .order_by(archive.c.id)
                .limit(batch)
            ).all()
            # Only records archived since 0010 are checked against them (`_unindexed`).
            chained = any(row.content_sha256 is not None for row in rows)
            indexed = _indexed(conn, rows[0].id, rows[-1].id) if chained else {}
        if not rows:
            break
        for row in rows:
            reason = _problem(row, previous, purged) or _unindexed(row, indexed)
            if reason is None and expect is not None and row.id == expect[0]:
                if row.record_hash != expect[1]:
                    reason = (
                        f"its hash is {row.record_hash}, not {expect[1]} as the head kept "
                        "earlier says: the chain was rewritten from here or before"
                    )
                expect = None
            if reason is not None:
                return Report(checked, Problem(row.id, row.queue_id, reason), tombstones)
            tombstones += row.purged_at is not None
            previous = row.record_hash
            checked += 1
        after = rows[-1].id
        if progress is not None:
            progress(checked, total)
    if head_id != after or head_hash != previous:
        # Every record removed leaves nothing to link: the head still names the last one.
        reason = (
            "the chain head does not match the last record (records were removed from the end)"
            if checked
            else f"the chain head names record {head_id}, but the archive holds no records "
            "(every record was removed)"
        )
        return Report(checked, Problem(int(head_id), "-", reason), tombstones)
    if expect is not None:
        reason = "the head kept earlier names this record, and the archive no longer holds it"
        return Report(checked, Problem(expect[0], "-", reason), tombstones)
    return Report(checked, None, tombstones, head=f"{after}:{previous}" if checked else "")


def _indexed(conn: Connection, first: int, last: int) -> dict[int, set[tuple[object, ...]]]:
    """What search's side tables hold for the records `first`..`last`: their addresses by role,
    and their findings."""
    found: dict[int, set[tuple[object, ...]]] = {}
    for table, columns in (
        (archive_addresses, ("role", "address")),
        (archive_findings, ("code", "rule", "action", "urgent")),
    ):
        rows = conn.execute(
            select(table.c.archive_id, *(table.c[c] for c in columns)).where(
                table.c.archive_id.between(first, last)
            )
        )
        for archive_id, *values in rows:
            found.setdefault(archive_id, set()).add((table.name, *values))
    return found


def _unindexed(row: Any, indexed: dict[int, set[tuple[object, ...]]]) -> str | None:
    """A chained record (since 0010) whose search entries are not those its columns give:
    `contact:`, `flag:` and an export of a child's history would miss it."""
    if row.content_sha256 is None or row.purged_at is not None:
        return None
    addresses, findings = index_rows(row.id, SimpleNamespace(**row._mapping))
    expected = {("archive_addresses", a["role"], a["address"]) for a in addresses} | {
        ("archive_findings", f["code"], f["rule"], f["action"], f["urgent"]) for f in findings
    }
    if indexed.get(row.id, set()) != expected:
        return "its search entries (addresses or findings) were altered: search would miss it"
    return None


class _Ranges:
    """Id ranges merged into disjoint, sorted intervals, for a bisect lookup per record."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for first, last in sorted(ranges):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self.starts = [first for first, _ in merged]
        self.lasts = [last for _, last in merged]

    def __contains__(self, value: int) -> bool:
        at = bisect.bisect_right(self.starts, value) - 1
        return at >= 0 and value <= self.lasts[at]


def _problem(row: Any, previous: str, purged: _Ranges) -> str | None:
    if row.prev_hash != previous:
        return (
            "its link to the previous record is broken "
            "(a record before it was removed, inserted or altered)"
        )
    expected = chain_hash(
        row.prev_hash,
        row.raw_sha256,
        row.verdict,
        row.received_at,
        row.queue_id,
        row.content_sha256,
    )
    if row.record_hash != expected:
        return "its verdict, time or hash was altered"
    if (
        row.content_sha256 is not None
        and row.purged_at is None
        and content_digest(row._mapping) != row.content_sha256
    ):
        return "what was recorded about it (findings, addresses, subject, ...) was altered"
    if row.purged_at is not None:
        if row.id not in purged:
            return "its content was removed, but no audited retention purge removed it"
        return None
    try:
        raw = zlib.decompress(row.raw_gz)
    except zlib.error:
        return "the stored message cannot be read"
    if hashlib.sha256(raw).hexdigest() != row.raw_sha256:
        return "the stored message does not match its SHA-256"
    return None
