"""fulltext after commit: SQLite indexes archived text in batches, not in the relay's commit

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 08:00:00

SQLite only (PostgreSQL writes its search vector with the row, 0004). See
`gateway.store.fulltext`:

- The insert trigger `archive_fts_ai` is dropped: rows reach `archive_fts` through
  `fulltext.index_pending`, in id order, and `archive_fts_progress.last_id` says how far.
- It starts at the archive's last id: every row before this revision was indexed by the trigger.
- The delete and update triggers (retention blanking a record) now act only on rows already
  indexed (`old.id <= last_id`). FTS5's 'delete' of text it never indexed would corrupt the
  index; a row not yet indexed gets its text as it is when it is indexed.

Caution for later migrations (as in 0002): an Alembic batch operation on `archive` copies the
table and drops its triggers; recreate `archive_fts_ad` and `archive_fts_au` as here after.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEXED = "old.id <= (SELECT last_id FROM archive_fts_progress)"
_DELETE_OLD = (
    "INSERT INTO archive_fts(archive_fts, rowid, subject, body_text) "
    "VALUES ('delete', old.id, old.subject, old.body_text); "
)
_INSERT_NEW = (
    "INSERT INTO archive_fts(rowid, subject, body_text) "
    "VALUES (new.id, new.subject, new.body_text); "
)

_GUARDED = [
    f"CREATE TRIGGER archive_fts_ad AFTER DELETE ON archive WHEN {_INDEXED} BEGIN {_DELETE_OLD}END",
    f"CREATE TRIGGER archive_fts_au AFTER UPDATE OF subject, body_text ON archive "
    f"WHEN {_INDEXED} BEGIN {_DELETE_OLD}{_INSERT_NEW}END",
]
# 0002's, for downgrade.
_EVERY_ROW = [
    f"CREATE TRIGGER archive_fts_ai AFTER INSERT ON archive BEGIN {_INSERT_NEW}END",
    f"CREATE TRIGGER archive_fts_ad AFTER DELETE ON archive BEGIN {_DELETE_OLD}END",
    "CREATE TRIGGER archive_fts_au AFTER UPDATE OF subject, body_text ON archive "
    f"BEGIN {_DELETE_OLD}{_INSERT_NEW}END",
]
_TRIGGERS = ("archive_fts_ai", "archive_fts_ad", "archive_fts_au")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE archive_fts_progress ("
        "id INTEGER PRIMARY KEY CHECK (id = 1), last_id BIGINT NOT NULL)"
    )
    op.execute(
        "INSERT INTO archive_fts_progress VALUES (1, (SELECT COALESCE(MAX(id), 0) FROM archive))"
    )
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in _GUARDED:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # What waits is indexed first: 0002's triggers assume every row is.
    op.execute(
        "INSERT INTO archive_fts(rowid, subject, body_text) SELECT id, subject, body_text "
        "FROM archive WHERE id > (SELECT last_id FROM archive_fts_progress)"
    )
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in _EVERY_ROW:
        op.execute(statement)
    op.execute("DROP TABLE archive_fts_progress")
