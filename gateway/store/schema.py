"""Tables of the archive, the delivery queue and the directory (SQLAlchemy Core).

Times are stored as naive UTC: SQLite keeps no zone, and one convention on both databases
keeps the hash chain byte-identical wherever it is recomputed.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for an archive.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

archive = Table(
    "archive",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("queue_id", String(32), nullable=False, unique=True),
    Column("received_at", DateTime(), nullable=False),
    Column("channel", String(32), nullable=False, default="email"),
    Column("client_address", String(64), nullable=False, default=""),
    Column("helo", String(255), nullable=False, default=""),
    Column("auth_user", String(320)),
    Column("envelope_from", String(320), nullable=False, default=""),
    Column("envelope_to", JSON, nullable=False),
    Column("from_addr", String(320), nullable=False, default=""),
    Column("to_addrs", JSON, nullable=False),
    Column("cc_addrs", JSON, nullable=False),
    Column("bcc_addrs", JSON, nullable=False),
    Column("subject", Text, nullable=False, default=""),
    Column("message_id", String(998)),
    Column("body_text", Text, nullable=False, default=""),
    Column("size", Integer, nullable=False),
    Column("raw_sha256", String(64), nullable=False),
    Column("raw_gz", LargeBinary, nullable=False),  # zlib-compressed bytes exactly as received
    Column("verdict", String(16), nullable=False),
    Column("mode", String(16), nullable=False, default="enforce"),
    Column("findings", JSON, nullable=False),
    Column("evaluation", JSON, nullable=False),  # rules evaluated, hits and misses
    Column("dedupe_key", String(64), unique=True),
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    # Retention (migration 0003): the youngest under-18 involved, as the directory said then,
    # and when the record became a tombstone (hash-chain fields kept, content removed).
    Column("youngest_minor_born", Date()),
    Column("purged_at", DateTime()),
    # Migration 0010: the digest of what the gateway recorded about the message (findings,
    # addresses, ...; records.CHAINED_COLUMNS), in the chain; None in records archived before.
    Column("content_sha256", String(64)),
    Index("ix_archive_received_at", "received_at"),
    Index("ix_archive_message_id", "message_id"),
)

# PostgreSQL's archive also has `search_tsv` (migration 0002; the writer fills it since 0004),
# where SQLite keeps the same words in `archive_fts`. Only inserts on PostgreSQL go through this
# table: `archive` itself names the columns both databases have.
archive_search_insert = archive.to_metadata(MetaData())
archive_search_insert.append_column(Column("search_tsv", TSVECTOR))

chain_head = Table(
    "chain_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_id", Id, nullable=False, default=0),
    Column("last_hash", String(64), nullable=False),
)

queue = Table(
    "queue",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("archive_id", Id, ForeignKey("archive.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # deliver | bounce | notice | alert
    Column("mail_from", String(320), nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("prefix", LargeBinary, nullable=False),  # header lines we add (Received, ...)
    Column("content_gz", LargeBinary),  # replaces the archived body when set (a rewritten copy)
    Column(
        "status", String(16), nullable=False
    ),  # queued | sending | delivered | failed | cancelled
    Column("created_at", DateTime(), nullable=False),
    Column("not_before", DateTime(), nullable=False),
    Column("next_attempt_at", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime()),
    Column("finished_at", DateTime()),
    Index("ix_queue_due", "status", "next_attempt_at"),
    Index("ix_queue_archive_id", "archive_id"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(), nullable=False),
)

directory_entries = Table(
    "directory_entries",
    metadata,
    Column("kind", String(16), primary_key=True),  # staff | contact
    Column("key", String(320), primary_key=True),  # primary e-mail address
    Column("data", JSON, nullable=False),
    Column("updated_at", DateTime(), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(32), nullable=False),
    Column("query", Text, nullable=False, default=""),
    Column("result_count", Integer),
    Column("detail", JSON, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(), nullable=False),
)

__all__ = [
    "api_tokens",
    "archive",
    "audit_log",
    "chain_head",
    "credentials",
    "directory_entries",
    "meta",
    "metadata",
    "queue",
]

# --- Search (issue 5): side tables the archive writer fills in the same transaction. ---------
# Addresses and finding codes live in rows of their own rather than being read out of the JSON
# columns: a B-tree lookup is portable and stays fast at a million messages, where scanning
# JSON would not. The full-text indexes (FTS5 on SQLite, a tsvector column on PostgreSQL) are
# created by migration 0002 only, since they are dialect-specific.

archive_addresses = Table(
    "archive_addresses",
    metadata,
    Column("archive_id", Id, ForeignKey("archive.id", ondelete="CASCADE"), primary_key=True),
    # from | to | cc | bcc (header roles) | envelope_from | envelope_to (SMTP envelope)
    Column("role", String(16), primary_key=True),
    Column("address", String(320), primary_key=True),  # lower-case
    Column("domain", String(255), nullable=False),  # lower-case part after the '@'
    Index("ix_archive_addresses_address", "address", "role", "archive_id"),
    Index("ix_archive_addresses_domain", "domain", "role", "archive_id"),
)

archive_findings = Table(
    "archive_findings",
    metadata,
    Column("archive_id", Id, ForeignKey("archive.id", ondelete="CASCADE"), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("rule", String(128), primary_key=True),
    Column("action", String(16), nullable=False),
    # As the record says (`stored_finding_urgent`): the review queue puts these first, even
    # after a pack change has renamed the rule (migration 0011).
    Column("urgent", Boolean, nullable=False, server_default=false()),
    Index("ix_archive_findings_code", "code", "archive_id"),
)

# `verdict:` filters, newest first.
Index("ix_archive_verdict_received_at", archive.c.verdict, archive.c.received_at)

__all__ += ["archive_addresses", "archive_findings"]

# --- The web console (migration 0006). -------------------------------------------------------

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),  # of the cookie's random token
    Column("email", String(320), nullable=False),
    Column("role", String(16), nullable=False),  # dsl | auditor
    Column("csrf", String(64), nullable=False),  # every form of the session carries it
    Column("created_at", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Column("ended_at", DateTime()),  # signed out
    Column("credential_set_at", DateTime()),  # credentials.updated_at when it was opened
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("archive_id", Id, ForeignKey("archive.id"), nullable=False),
    Column("at", DateTime(), nullable=False),
    Column("reviewer", String(320), nullable=False),
    Column("outcome", String(16), nullable=False),  # no_concern | escalated
    Column("note", Text, nullable=False),
    Index("ix_reviews_archive_id", "archive_id", "id"),
)

# Failed sign-ins of one address in the last minutes (lockout), without reading the whole log.
Index("ix_audit_log_action_at", audit_log.c.action, audit_log.c.at)

__all__ += ["console_sessions", "reviews"]
