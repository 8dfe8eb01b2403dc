"""console: sign-in sessions of the safeguarding leads' web console, and their reviews

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 03:00:00

- `console_sessions`: one row per sign-in. The browser holds a random token in a cookie; only
  its SHA-256 is kept here, so a copy of the database signs nobody in. `csrf` is the token every
  form of that session must carry. Signing out sets `ended_at`: the cookie stops working at
  once, on every gateway sharing the database. `credential_set_at` is the password's
  `credentials.updated_at` at sign-in: a new password ends the session (compared as copied,
  not against another host's clock).
- `ix_audit_log_action_at`: the console counts an address's failed sign-ins of the last
  minutes (lockout) in the audit log, which grows with every search.
- `reviews`: a safeguarding lead's judgement of a flagged message (`no_concern` or
  `escalated`) with their note. Rows are only ever added; the newest is the message's state.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("credential_set_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_console_sessions"),
    )
    op.create_table(
        "reviews",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("archive_id", Id, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("reviewer", sa.String(320), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["archive_id"], ["archive.id"], name="fk_reviews_archive_id_archive"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
    )
    op.create_index("ix_reviews_archive_id", "reviews", ["archive_id", "id"])
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_action_at", table_name="audit_log")
    op.drop_index("ix_reviews_archive_id", table_name="reviews")
    op.drop_table("reviews")
    op.drop_table("console_sessions")
