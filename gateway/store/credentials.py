"""Staff relay/console passwords, as argon2 hashes only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.db import transaction
from gateway.store.records import utc_naive
from gateway.store.schema import audit_log, console_sessions, credentials

PASSWORD_SET = "password_set"
PASSWORD_REMOVED = "password_removed"


class CredentialStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def hash_for(self, email: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(credentials.c.password_hash).where(credentials.c.email == email.lower())
            ).scalar_one_or_none()

    def set_hash(
        self, email: str, password_hash: str, now: datetime, *, actor: str = "(not recorded)"
    ) -> None:
        """Set the hash, and record `password_set` in the audit log in the same transaction:
        the console's lockout and its sessions start again from that row."""
        values = {
            "email": email.lower(),
            "password_hash": password_hash,
            "updated_at": utc_naive(now),
        }
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(credentials).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[credentials.c.email],
            set_={
                "password_hash": statement.excluded.password_hash,
                "updated_at": statement.excluded.updated_at,
            },
        )
        with transaction(self.engine) as conn:
            conn.execute(statement)
            _audit(conn, PASSWORD_SET, email, now, actor)

    def remove(self, email: str, now: datetime, *, actor: str = "(not recorded)") -> bool:
        """Remove the password (a leaver, a lost laptop): the relay and the console refuse the
        address until a new one is set, and its console sessions end. Audited in the same
        transaction; False if it had none."""
        with transaction(self.engine) as conn:
            removed = conn.execute(delete(credentials).where(credentials.c.email == email.lower()))
            if not removed.rowcount:
                return False
            conn.execute(
                update(console_sessions)
                .where(
                    console_sessions.c.email == email.lower(), console_sessions.c.ended_at.is_(None)
                )
                .values(ended_at=utc_naive(now))
            )
            _audit(conn, PASSWORD_REMOVED, email, now, actor)
        return True


def _audit(conn: Connection, action: str, email: str, now: datetime, actor: str) -> None:
    conn.execute(
        insert(audit_log).values(
            at=utc_naive(now), actor=actor[:320], action=action, query=email.lower(), detail={}
        )
    )
