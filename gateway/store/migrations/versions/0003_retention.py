"""retention: the youngest minor's date of birth on each record, and tombstones

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:30:00

- `archive.youngest_minor_born`: the date of birth of the youngest under-18 the message
  involved, as the directory said when it was archived. Retention ("until the youngest minor
  involved is 25") must still hold after a leaver is removed from the directory. Records
  archived before this revision have NULL; `archive purge` also asks the current directory.
- `archive.purged_at`: set when retention turned the record into a tombstone, which keeps what
  the hash chain covers (queue id, time, verdict, raw SHA-256, links) and nothing else.

Plain ADD COLUMN (no batch operation): on SQLite a batch copy would drop the FTS triggers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("archive", sa.Column("youngest_minor_born", sa.Date(), nullable=True))
    op.add_column("archive", sa.Column("purged_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("archive", "purged_at")
    op.drop_column("archive", "youngest_minor_born")
