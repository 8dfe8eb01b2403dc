"""The directory as stored: one row per person, replaced whole by each import."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text

from gateway.directory.model import Contact, DirectoryView, StaffMember
from gateway.store.audit import AuditNote, add_audit
from gateway.store.db import is_postgres, transaction
from gateway.store.records import utc_naive
from gateway.store.schema import directory_entries, meta

_VERSION_KEY = "directory_version"
_IMPORT_LOCK = 0x5347_4449  # "SGDI": PostgreSQL's advisory lock for directory imports


def _to_json(item: Contact | StaffMember) -> dict[str, Any]:
    data = dataclasses.asdict(item)
    for key, value in data.items():
        if isinstance(value, date):
            data[key] = value.isoformat()
        elif isinstance(value, tuple):
            data[key] = list(value)
    return data


def _contact(data: dict[str, Any]) -> Contact:
    return Contact(
        emails=tuple(data["emails"]),
        name=data["name"],
        date_of_birth=date.fromisoformat(data["date_of_birth"]),
        category=data["category"],
        guardian_emails=tuple(data.get("guardian_emails", ())),
        school_emails=tuple(data.get("school_emails", ())),
        consent=bool(data.get("consent", False)),
    )


def _staff(data: dict[str, Any]) -> StaffMember:
    expires = data.get("training_expires")
    return StaffMember(
        email=data["email"],
        name=data["name"],
        safeguarding_level=int(data.get("safeguarding_level", 0)),
        training_expires=date.fromisoformat(expires) if expires else None,
        dbs_checked=bool(data.get("dbs_checked", False)),
        dsl=bool(data.get("dsl", False)),
    )


_ITEM: dict[str, Callable[[dict[str, Any]], Contact | StaffMember]] = {
    "contact": _contact,
    "staff": _staff,
}


class DirectoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def staff(self) -> tuple[StaffMember, ...]:
        return tuple(_staff(d) for d in self._rows("staff"))

    def contacts(self) -> tuple[Contact, ...]:
        return tuple(_contact(d) for d in self._rows("contact"))

    def _rows(self, kind: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return self._read(conn, kind)

    @staticmethod
    def _read(conn: Connection, kind: str) -> list[dict[str, Any]]:
        return [
            row.data
            for row in conn.execute(
                select(directory_entries.c.data)
                .where(directory_entries.c.kind == kind)
                .order_by(directory_entries.c.key)
            )
        ]

    def view(self) -> DirectoryView:
        return DirectoryView(self.contacts(), self.staff())

    def version(self) -> str:
        with self.engine.connect() as conn:
            value = conn.execute(select(meta.c.value).where(meta.c.key == _VERSION_KEY)).scalar()
        return value or "0"

    def replace(
        self,
        kind: str,
        items: Sequence[Contact | StaffMember],
        now: datetime,
        *,
        audit: Callable[[Sequence[Contact | StaffMember]], AuditNote] | None = None,
    ) -> None:
        """Make `items` the whole list of `kind` ('staff' or 'contact'), in one transaction,
        with the audit note `audit` makes of the list it replaces, read in that transaction
        (two imports at once each describe what they replaced, not what was there before
        either began)."""
        rows = [
            {"kind": kind, "key": item.email, "data": _to_json(item), "updated_at": utc_naive(now)}
            for item in items
        ]
        with transaction(self.engine) as conn:
            if is_postgres(self.engine):
                # Imports one at a time, as SQLite's write lock makes them: at READ COMMITTED
                # a second import would read the list the first is replacing, and its DELETE
                # miss the rows the first inserts.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IMPORT_LOCK})
            before: Sequence[Contact | StaffMember] = ()
            if audit is not None:
                before = [_ITEM[kind](data) for data in self._read(conn, kind)]
            conn.execute(delete(directory_entries).where(directory_entries.c.kind == kind))
            if rows:
                conn.execute(insert(directory_entries), rows)
            version = conn.execute(select(meta.c.value).where(meta.c.key == _VERSION_KEY)).scalar()
            values = {"value": str(int(version or 0) + 1), "updated_at": utc_naive(now)}
            if version is None:
                conn.execute(insert(meta).values(key=_VERSION_KEY, **values))
            else:
                conn.execute(meta.update().where(meta.c.key == _VERSION_KEY).values(**values))
            if audit is not None:
                add_audit(conn, audit(before))
