"""fulltext after delete: a deleted top row's id, given again, is indexed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:40:00

SQLite only. SQLite gives a new row the largest id + 1, so once the newest archive rows are
deleted (by hand: `verify` reports the gap in the chain) their ids are given again. 0007's
watermark (`archive_fts_progress.last_id`) would still count them as indexed and the new rows
would never be found by a search. The delete trigger now also lowers the watermark to the
largest id left, whatever order the rows go in.

Caution for later migrations (as in 0007): an Alembic batch operation on `archive` copies the
table and drops its triggers; recreate `archive_fts_ad` and `archive_fts_au` as here after.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEXED = "old.id <= (SELECT last_id FROM archive_fts_progress)"
_DELETE_OLD = (
    "INSERT INTO archive_fts(archive_fts, rowid, subject, body_text) "
    "VALUES ('delete', old.id, old.subject, old.body_text); "
)
_LOWER = (
    "UPDATE archive_fts_progress SET last_id = "
    "MIN(last_id, (SELECT COALESCE(MAX(id), 0) FROM archive)); "
)


def _delete_trigger(body: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS archive_fts_ad")
    op.execute(
        f"CREATE TRIGGER archive_fts_ad AFTER DELETE ON archive WHEN {_INDEXED} BEGIN {body}END"
    )


def upgrade() -> None:
    _delete_trigger(_DELETE_OLD + _LOWER)


def downgrade() -> None:
    _delete_trigger(_DELETE_OLD)  # 0007's trigger
