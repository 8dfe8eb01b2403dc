"""Tokens of the chat integrations that call the HTTP API, kept as SHA-256 digests only."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select

from gateway.store.audit import AuditNote, add_audit
from gateway.store.db import transaction
from gateway.store.records import utc_naive
from gateway.store.schema import api_tokens

PREFIX = "sgw_"  # recognisable in a leaked config file or a secret scanner's rules
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class TokenError(ValueError):
    """A name that cannot be used, or one already taken."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, now: datetime, *, audit: AuditNote | None = None) -> str:
        """A new token for `name`, returned once: only its digest is stored. `audit` is added
        in the same transaction."""
        if not NAME_RE.fullmatch(name):
            shown = repr(name) if len(name) <= 80 else f"{name[:60]!r} ({len(name)} characters)"
            raise TokenError(
                f"{shown}: a token name is 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        token = PREFIX + secrets.token_urlsafe(32)
        with transaction(self.engine) as conn:
            taken = conn.execute(select(api_tokens.c.name).where(api_tokens.c.name == name)).first()
            if taken is not None:
                raise TokenError(f"{name!r} already has a token; revoke it first")
            conn.execute(
                insert(api_tokens).values(
                    name=name, token_sha256=digest(token), created_at=utc_naive(now)
                )
            )
            if audit is not None:
                add_audit(conn, audit)
        return token

    def revoke(self, name: str, *, audit: AuditNote | None = None) -> bool:
        """False if `name` has no token; else gone, with `audit` added in the same transaction."""
        with transaction(self.engine) as conn:
            if not conn.execute(delete(api_tokens).where(api_tokens.c.name == name)).rowcount:
                return False
            if audit is not None:
                add_audit(conn, audit)
        return True

    def name_for(self, token: str) -> str | None:
        """The integration a presented token belongs to, or None."""
        if not token.startswith(PREFIX):
            return None
        with self.engine.connect() as conn:
            return conn.execute(
                select(api_tokens.c.name).where(api_tokens.c.token_sha256 == digest(token))
            ).scalar_one_or_none()

    def names(self) -> list[tuple[str, datetime]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(api_tokens.c.name, api_tokens.c.created_at).order_by(api_tokens.c.name)
            ).all()
        return [(row.name, row.created_at) for row in rows]
