"""SQLite's full-text index, filled in batches after the reply rather than in the relay's commit.

The FTS5 index (`archive_fts`, migration 0002) was kept by a trigger on every archive insert:
each commit of a few records also tokenised their text and wrote a small index segment, ~10 %
of the relay's throughput (bench/results/throughput.md, session 17). Since migration 0007 the
archive rows are committed alone, and `index_pending` adds every row past
`archive_fts_progress.last_id` to the index, in id order, a few hundred per transaction:
the archive writer does so every `INDEX_INTERVAL` seconds, and a search first brings the index
up to date, so that it still finds everything archived before it started.

Ids are a safe watermark on SQLite: writers hold the one write lock in turn, so a row with a
smaller id than one already committed is never committed later. The triggers that keep the
index in step when retention blanks a record (update) or a row is deleted act only on rows
already indexed; a row not yet indexed is indexed later with its text as it is then. A delete
also lowers the watermark to the largest id left (migration 0008): SQLite gives the ids of
deleted newest rows again, and the rows that get them must still be indexed.

PostgreSQL writes its search vector with the row (migration 0004): nothing waits there.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Connection, Engine, column, func, select, table, update
from sqlalchemy import insert as sql_insert

from gateway.store.db import transaction
from gateway.store.schema import archive

INDEX_INTERVAL = 0.5  # seconds between the archive writer's indexing runs
BATCH = 500  # rows per indexing transaction: the write lock is not held long
INDEX_MOST = 2_000  # rows per run of the archive writer's; the rest waits for the next

progress = table("archive_fts_progress", column("id"), column("last_id", BigInteger))
_fts = table("archive_fts", column("rowid"), column("subject"), column("body_text"))


def deferred(engine: Engine) -> bool:
    """Whether this database indexes full text after the commit (SQLite) or with it."""
    return engine.dialect.name == "sqlite"


def pending(conn: Connection) -> int:
    """Archived rows not yet in the full-text index."""
    last = conn.execute(select(progress.c.last_id)).scalar_one()
    return int(conn.execute(select(func.count()).where(archive.c.id > last)).scalar_one())


def _behind(engine: Engine) -> bool:
    with engine.connect() as conn:
        last = conn.execute(select(progress.c.last_id)).scalar_one()
        top = conn.execute(select(func.max(archive.c.id))).scalar()
    return top is not None and top > last


def index_batch(conn: Connection, size: int = BATCH) -> int:
    """Index up to `size` rows, the oldest not yet indexed, in `conn`'s write transaction;
    returns how many."""
    last = conn.execute(select(progress.c.last_id)).scalar_one()
    ids = (
        select(archive.c.id).where(archive.c.id > last).order_by(archive.c.id).limit(size)
    ).subquery()
    rows = conn.execute(select(func.count(), func.max(ids.c.id))).one()
    count, top = int(rows[0]), rows[1]
    if not count:
        return 0
    conn.execute(
        sql_insert(_fts).from_select(
            ["rowid", "subject", "body_text"],
            select(archive.c.id, archive.c.subject, archive.c.body_text).where(
                archive.c.id > last, archive.c.id <= top
            ),
        )
    )
    conn.execute(update(progress).values(last_id=top))
    return count


def index_pending(engine: Engine, *, most: int | None = None, size: int = BATCH) -> int:
    """Index what waits, `size` rows per transaction, until none waits (or `most` rows are
    done); returns how many. Nothing to do on PostgreSQL."""
    if not deferred(engine) or not _behind(engine):
        return 0  # no write lock taken to learn that nothing waits
    done = 0
    while most is None or done < most:
        step = size if most is None else min(size, most - done)
        with transaction(engine) as conn:
            indexed = index_batch(conn, step)
        done += indexed
        if indexed < step:
            break
    return done
