"""Sign-in sessions of the web console: the browser holds a random token, the database its
SHA-256 (as for API tokens), so a session can be ended at once, on every gateway."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, select, update

from gateway.store.db import transaction
from gateway.store.records import as_aware, utc_naive
from gateway.store.schema import console_sessions, credentials


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class ConsoleSession:
    email: str
    role: str  # dsl | auditor
    csrf: str  # the token each of this session's forms carries
    expires_at: datetime  # aware UTC


class SessionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open(
        self, email: str, role: str, now: datetime, lifetime: timedelta
    ) -> tuple[str, ConsoleSession]:
        """A new session; the token is returned once, for the cookie."""
        token = secrets.token_urlsafe(32)
        session = ConsoleSession(email, role, secrets.token_urlsafe(32), as_aware(now + lifetime))
        with transaction(self.engine) as conn:
            # Ended and expired sessions are of no further use; the audit log keeps sign-ins.
            conn.execute(
                delete(console_sessions).where(console_sessions.c.expires_at < utc_naive(now))
            )
            password_set = conn.execute(
                select(credentials.c.updated_at).where(credentials.c.email == email)
            ).scalar()
            conn.execute(
                insert(console_sessions).values(
                    credential_set_at=password_set,
                    token_sha256=_digest(token),
                    email=email,
                    role=role,
                    csrf=session.csrf,
                    created_at=utc_naive(now),
                    expires_at=utc_naive(session.expires_at),
                )
            )
        return token, session

    def find(self, token: str, now: datetime) -> ConsoleSession | None:
        """The live session a cookie's token belongs to, or None (unknown, ended, expired, or
        opened before the password was last set: a new password shuts out whoever had the
        old one)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(console_sessions)
                .outerjoin(credentials, credentials.c.email == console_sessions.c.email)
                .where(
                    console_sessions.c.token_sha256 == _digest(token),
                    console_sessions.c.ended_at.is_(None),
                    console_sessions.c.expires_at > utc_naive(now),
                    # Copied at sign-in, compared as is: no two hosts' clocks meet here.
                    or_(
                        credentials.c.updated_at.is_(None),
                        credentials.c.updated_at == console_sessions.c.credential_set_at,
                    ),
                )
            ).first()
        if row is None:
            return None
        return ConsoleSession(row.email, row.role, row.csrf, as_aware(row.expires_at))

    def end(self, token: str, now: datetime) -> None:
        with transaction(self.engine) as conn:
            conn.execute(
                update(console_sessions)
                .where(console_sessions.c.token_sha256 == _digest(token))
                .values(ended_at=utc_naive(now))
            )
