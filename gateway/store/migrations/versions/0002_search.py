"""search: address and finding side tables, full-text index, verdict index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00

Full text covers the subject and the new text (archive.body_text), tokenised alike on both
databases so that a query returns the same messages on either:

- SQLite: an FTS5 external-content table over archive(subject, body_text), kept in step by
  triggers. unicode61 with remove_diacritics 0: tokens are runs of letters and digits, case
  folded, accents kept (PostgreSQL's 'simple' configuration keeps them too).
- PostgreSQL: a STORED generated tsvector column, subject weighted A and body B (so `subject:`
  can be told apart and a phrase never runs from the subject into the body), and a GIN index.
  'simple' means no stemming and no stop words, like FTS5. The text is first cut at every
  character that is not a letter or digit, because PostgreSQL's parser would otherwise keep
  e-mail addresses, host names, URLs and hyphenated words whole where FTS5 splits them.

Caution for later migrations: on SQLite, an Alembic batch operation on `archive` copies the
table and drops its triggers; recreate the three archive_fts_* triggers (and 'rebuild') after.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Keep in step with gateway.search.query.text_tokens: separators are whatever is not a letter
# or digit. On PostgreSQL, [:alnum:] follows the database's LC_CTYPE; see _check_ctype().
_PG_TSV = (
    "setweight(to_tsvector('simple'::regconfig, "
    "regexp_replace(subject, '[^[:alnum:]]+', ' ', 'g')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, "
    "regexp_replace(body_text, '[^[:alnum:]]+', ' ', 'g')), 'B')"
)

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE archive_fts USING fts5("
    "subject, body_text, content='archive', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER archive_fts_ai AFTER INSERT ON archive BEGIN "
    "INSERT INTO archive_fts(rowid, subject, body_text) "
    "VALUES (new.id, new.subject, new.body_text); END",
    "CREATE TRIGGER archive_fts_ad AFTER DELETE ON archive BEGIN "
    "INSERT INTO archive_fts(archive_fts, rowid, subject, body_text) "
    "VALUES ('delete', old.id, old.subject, old.body_text); END",
    # The archive is append-only through the product, but retention may blank a record's text.
    "CREATE TRIGGER archive_fts_au AFTER UPDATE OF subject, body_text ON archive BEGIN "
    "INSERT INTO archive_fts(archive_fts, rowid, subject, body_text) "
    "VALUES ('delete', old.id, old.subject, old.body_text); "
    "INSERT INTO archive_fts(rowid, subject, body_text) "
    "VALUES (new.id, new.subject, new.body_text); END",
    "INSERT INTO archive_fts(archive_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    op.create_table(
        "archive_addresses",
        sa.Column("archive_id", _ID, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["archive_id"],
            ["archive.id"],
            name=op.f("fk_archive_addresses_archive_id_archive"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("archive_id", "role", "address", name=op.f("pk_archive_addresses")),
    )
    op.create_index(
        "ix_archive_addresses_address", "archive_addresses", ["address", "role", "archive_id"]
    )
    op.create_index(
        "ix_archive_addresses_domain", "archive_addresses", ["domain", "role", "archive_id"]
    )
    op.create_table(
        "archive_findings",
        sa.Column("archive_id", _ID, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["archive_id"],
            ["archive.id"],
            name=op.f("fk_archive_findings_archive_id_archive"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("archive_id", "code", "rule", name=op.f("pk_archive_findings")),
    )
    op.create_index("ix_archive_findings_code", "archive_findings", ["code", "archive_id"])
    op.create_index("ix_archive_verdict_received_at", "archive", ["verdict", "received_at"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        _check_ctype()
        op.execute(
            "ALTER TABLE archive ADD COLUMN search_tsv tsvector "
            f"GENERATED ALWAYS AS ({_PG_TSV}) STORED"
        )
        op.execute("CREATE INDEX ix_archive_search_tsv ON archive USING gin (search_tsv)")
    _backfill()


def _check_ctype() -> None:
    """Say so if this database's LC_CTYPE does not know non-ASCII letters (e.g. 'C')."""
    knows = op.get_bind().execute(sa.text("SELECT 'ë' ~ '[[:alnum:]]'")).scalar()
    if not knows:
        log.warning(
            "this PostgreSQL database's LC_CTYPE treats non-ASCII letters as separators, so "
            "words such as 'Zoë' are indexed in pieces; create it with a UTF-8 LC_CTYPE "
            "(e.g. C.UTF-8) for search results to match SQLite's"
        )


def _backfill() -> None:
    """Index the messages archived before this revision (a fresh archive has none)."""
    bind = op.get_bind()
    archive = sa.table(
        "archive",
        sa.column("id", _ID),
        sa.column("envelope_from", sa.String),
        sa.column("envelope_to", sa.JSON),
        sa.column("from_addr", sa.String),
        sa.column("to_addrs", sa.JSON),
        sa.column("cc_addrs", sa.JSON),
        sa.column("bcc_addrs", sa.JSON),
        sa.column("findings", sa.JSON),
    )
    addresses = sa.table(
        "archive_addresses",
        sa.column("archive_id"),
        sa.column("role"),
        sa.column("address"),
        sa.column("domain"),
    )
    findings = sa.table(
        "archive_findings",
        sa.column("archive_id"),
        sa.column("code"),
        sa.column("rule"),
        sa.column("action"),
    )
    after = 0
    while True:
        rows = bind.execute(
            sa.select(archive).where(archive.c.id > after).order_by(archive.c.id).limit(1000)
        ).all()
        if not rows:
            return
        address_rows: list[dict[str, Any]] = []
        finding_rows: list[dict[str, Any]] = []
        for row in rows:
            # The same rules as gateway.store.search.index_rows, frozen here on purpose: a
            # migration must not change meaning when application code changes later.
            seen: set[tuple[str, str]] = set()
            roles = (
                ("from", [row.from_addr]),
                ("envelope_from", [row.envelope_from]),
                ("to", row.to_addrs or []),
                ("cc", row.cc_addrs or []),
                ("bcc", row.bcc_addrs or []),
                ("envelope_to", row.envelope_to or []),
            )
            for role, values in roles:
                for value in values:
                    address = str(value or "").strip().lower()[:320]
                    if address and (role, address) not in seen:
                        seen.add((role, address))
                        domain = address.rpartition("@")[2] if "@" in address else ""
                        address_rows.append(
                            {
                                "archive_id": row.id,
                                "role": role,
                                "address": address,
                                "domain": domain[:255],
                            }
                        )
            codes: set[tuple[str, str]] = set()
            for finding in row.findings or []:
                key = (str(finding.get("code", ""))[:64], str(finding.get("rule", ""))[:128])
                if key[0] and key not in codes:
                    codes.add(key)
                    finding_rows.append(
                        {
                            "archive_id": row.id,
                            "code": key[0],
                            "rule": key[1],
                            "action": str(finding.get("action", ""))[:16],
                        }
                    )
        if address_rows:
            bind.execute(sa.insert(addresses), address_rows)
        if finding_rows:
            bind.execute(sa.insert(findings), finding_rows)
        after = rows[-1].id


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("archive_fts_ai", "archive_fts_ad", "archive_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS archive_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_archive_search_tsv")
        op.execute("ALTER TABLE archive DROP COLUMN IF EXISTS search_tsv")
    op.drop_index("ix_archive_verdict_received_at", table_name="archive")
    op.drop_index("ix_archive_findings_code", table_name="archive_findings")
    op.drop_table("archive_findings")
    op.drop_index("ix_archive_addresses_domain", table_name="archive_addresses")
    op.drop_index("ix_archive_addresses_address", table_name="archive_addresses")
    op.drop_table("archive_addresses")
