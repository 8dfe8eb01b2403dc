"""archive lz4: PostgreSQL compresses the archive's text and word vector with lz4, not pglz

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:50:00

PostgreSQL only, and only where the server was built with lz4 (14 and later; Debian's is).
Each archived message stores its text (`body_text`) and its word vector (`search_tsv`)
compressed. pglz was the server's busiest function under the relay benchmark (~8 % of its CPU,
perf); compressing the benchmark's 5 kB text and its vector took the server 0.070 ms per row
with pglz and 0.027 ms with lz4. The original (`raw_gz`) is gzipped already: it is stored as
it is (STORAGE EXTERNAL), without the attempt to compress it again. Rows written before keep
pglz (PostgreSQL reads both); only new rows change. `pg_dump --no-toast-compression` makes a
dump that a server without lz4 restores without complaint. SQLite: nothing to do.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    choices = bind.execute(
        text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return bool(choices) and "lz4" in choices


def _alter(compression: str, storage: str) -> None:
    if _lz4_available():
        op.execute(
            f"ALTER TABLE archive ALTER COLUMN body_text SET COMPRESSION {compression}, "
            f"ALTER COLUMN search_tsv SET COMPRESSION {compression}, "
            f"ALTER COLUMN raw_gz SET STORAGE {storage}"
        )


def upgrade() -> None:
    _alter("lz4", "EXTERNAL")


def downgrade() -> None:
    _alter("DEFAULT", "EXTENDED")
