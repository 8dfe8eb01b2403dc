"""Staff relay/console passwords, as argon2 hashes only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.db import transaction
from gateway.store.records import utc_naive
from gateway.store.schema import credentials


class CredentialStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def hash_for(self, email: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(credentials.c.password_hash).where(credentials.c.email == email.lower())
            ).scalar_one_or_none()

    def set_hash(self, email: str, password_hash: str, now: datetime) -> None:
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
