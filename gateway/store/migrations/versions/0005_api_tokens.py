"""api_tokens: the chat integrations allowed to call the HTTP API

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 00:30:00

One row per integration (`safeguard api token create NAME`). Only the token's SHA-256 is kept:
a token is 256 random bits, so a fast hash is enough, and a copy of the database gives nobody
a token that works. `revoke` deletes the row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_api_tokens"),
        sa.UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
