"""The audit log: who searched, exported, reviewed or released what, and when.

Rows are only ever added. Times are naive UTC in the table (schema.py) and aware UTC here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from gateway.store.db import transaction
from gateway.store.records import as_aware, utc_naive
from gateway.store.schema import audit_log

# Every action written to the log, as the console shows it; `safeguard audit --action` and the
# console's filter take these names.
AUDIT_ACTIONS = {
    "signin": "Signed in",
    "signin_attempt": "Sign-in attempt",
    "signin_failed": "Wrong password",
    "signin_refused": "Sign-in refused (not a lead)",
    "signin_locked": "Sign-in locked out",
    "signout": "Signed out",
    "password_set": "Password set",
    "password_removed": "Password removed",
    "smtp_auth_failed": "Wrong relay password",
    "smtp_auth_unlocked": "Relay lockout cleared",
    "api_token_failed": "Wrong API token",
    "api_token_created": "API token made",
    "api_token_revoked": "API token revoked",
    "directory_import": "Directory imported",
    "search": "Searched",
    "search_refused": "Search refused",
    "view": "Opened",
    "review": "Reviewed",
    "release": "Released held mail",
    "cancel": "Cancelled held mail",
    "export": "Exported",
    "export_refused": "Export refused",
    "refused": "Lead-only action refused",
    "purge": "Retention purge",
}


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime  # aware, UTC
    actor: str
    action: str  # search | search_refused | export | ...
    query: str
    result_count: int | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "query": self.query,
            "result_count": self.result_count,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditNote:
    """A row for the audit log, to be added in the transaction of the action it records: a
    review, release or cancellation is never kept without its row, nor its row without it."""

    actor: str
    action: str
    at: datetime
    query: str = ""
    result_count: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def add_audit(conn: Connection, note: AuditNote) -> AuditEntry:
    """Add `note` within the caller's transaction."""
    values = {
        "at": utc_naive(note.at),
        "actor": note.actor[:320],
        "action": note.action[:32],
        "query": note.query,
        "result_count": note.result_count,
        "detail": dict(note.detail),
    }
    entry_id = conn.execute(insert(audit_log).returning(audit_log.c.id), values).scalar_one()
    return AuditEntry(
        id=entry_id,
        at=as_aware(values["at"]),
        actor=values["actor"],
        action=values["action"],
        query=note.query,
        result_count=note.result_count,
        detail=values["detail"],
    )


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        *,
        actor: str,
        action: str,
        at: datetime,
        query: str = "",
        result_count: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Add one row in its own transaction; it is committed when this returns."""
        return self.add(AuditNote(actor, action, at, query, result_count, dict(detail or {})))

    def add(self, note: AuditNote) -> AuditEntry:
        """`record`, of a row already made."""
        with transaction(self.engine) as conn:
            return add_audit(conn, note)

    def entries(
        self,
        *,
        since: datetime | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Newest first; `since` is inclusive."""
        stmt = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        if since is not None:
            stmt = stmt.where(audit_log.c.at >= utc_naive(since))
        if action is not None:
            stmt = stmt.where(audit_log.c.action == action)
        if actor is not None:  # any case: addresses are written as the directory spells them
            stmt = stmt.where(func.lower(audit_log.c.actor) == actor.lower())
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            AuditEntry(
                id=row.id,
                at=as_aware(row.at),
                actor=row.actor,
                action=row.action,
                query=row.query,
                result_count=row.result_count,
                detail=dict(row.detail or {}),
            )
            for row in rows
        ]
