"""chain content: the hash chain covers what the gateway recorded about a message

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:45:00

Until now a record's link covered its raw message's SHA-256, verdict, time and queue id: its
findings, addresses and subject could be changed, or a flag removed, and `archive verify`
still said intact. Each record archived from now on stores `content_sha256`, the digest of
those columns (`gateway.store.records.CHAINED_COLUMNS`), and its link covers it. Records
archived before keep their links (no digest: verified as before). Both databases: one
nullable column, no rewrite of existing rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("archive", sa.Column("content_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("archive", "content_sha256")
