"""archive lz4: PostgreSQL compresses the archive's large columns with lz4, not pglz

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:50:00

PostgreSQL only, and only where the server was built with lz4 (14 and later; Debian's is).
Each archived message stores its text (`body_text`), its word vector (`search_tsv`) and the
gzipped original (`raw_gz`) compressed. pglz was the server's busiest function under the relay
benchmark (~8 % of its CPU, perf); compressing the benchmark's 5 kB text and its vector took
the server 0.070 ms per row with pglz and 0.027 ms with lz4. Rows written before keep pglz
(PostgreSQL reads both); only new rows change. A dump of this database restored on a server
without lz4 reports the `SET COMPRESSION` statements and keeps the data. SQLite: nothing to do.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("body_text", "search_tsv", "raw_gz")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    choices = bind.execute(
        text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return bool(choices) and "lz4" in choices


def _compression(method: str) -> None:
    if _lz4_available():
        alter = ", ".join(f"ALTER COLUMN {c} SET COMPRESSION {method}" for c in COLUMNS)
        op.execute(f"ALTER TABLE archive {alter}")


def upgrade() -> None:
    _compression("lz4")


def downgrade() -> None:
    _compression("DEFAULT")
