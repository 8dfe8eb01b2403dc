"""Failed relay logins and wrong API tokens, per client address (and login), in the audit log.

Every relay process and every gateway on one database writes its failures here, so the limit on
them holds for the whole deployment, not for each process: with `[server] processes = N`, or
several gateways, in-memory counts alone would allow N times as many guesses. The rows also let
an IT admin see a password being guessed (`safeguard audit --action smtp_auth_failed`).

A relay login's failures are forgiven by a later `smtp_auth_unlocked` row for it (`safeguard
staff unlock`: from every client address, or from the one in `detail.client`) or a later
`password_set` row (a new password, from every address). Later by row id, not by time: the host
that unlocked may keep another time than the relay's. A forgiven failure stays in the log, as
every row does; it no longer counts toward the login's limit at its address, nor toward the
address's limit across logins. Other logins' failures at that address still count: see
`FailureLog.unlock`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, insert, select

from gateway.store.audit import AuditNote, add_audit
from gateway.store.credentials import PASSWORD_SET
from gateway.store.db import transaction
from gateway.store.records import as_aware, utc_naive
from gateway.store.schema import audit_log

SMTP_AUTH_FAILED = "smtp_auth_failed"
SMTP_AUTH_UNLOCKED = "smtp_auth_unlocked"
API_TOKEN_FAILED = "api_token_failed"
_VIA = {SMTP_AUTH_FAILED: "relay", API_TOKEN_FAILED: "api"}
# The rows that forgive a kind of failure before them. A wrong API token names no one whose
# password could be reset, so nothing forgives it: it lapses with its window.
_FORGIVEN_BY: dict[str, tuple[str, ...]] = {SMTP_AUTH_FAILED: (SMTP_AUTH_UNLOCKED, PASSWORD_SET)}


@dataclass(frozen=True)
class Recent:
    """A client address's failures of one kind within the window (aware, UTC, oldest first):
    all of them, and those claiming the same actor (the login tried), less those an unlock or
    a new password forgave. `forgiven_*`: how many were forgiven, so that a process drops its
    own count for them; `settled`: the id of the newest forgiving row these counts allow for."""

    address: list[datetime]
    actor: list[datetime]
    forgiven_address: int = 0
    forgiven_actor: int = 0
    settled: int = 0


@dataclass(frozen=True)
class Unlocked:
    """What `FailureLog.unlock` (or `pending`, before a new password) forgave: the login's
    failures still counting within the window, by client address; and, at each of those
    addresses, how many other logins' failures still count toward its limit across logins."""

    login: str
    by_client: dict[str, int] = field(default_factory=dict)
    others: dict[str, int] = field(default_factory=dict)

    @property
    def cleared(self) -> int:
        return sum(self.by_client.values())


def written(actor: str) -> str:
    """`actor` as a failure row holds it: printable, at most 320 characters."""
    return "".join(c for c in actor if c.isprintable())[:320]


class FailureLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, action: str, client: str, actor: str, now: datetime, window: timedelta
    ) -> Recent:
        """Add one failure; return the client's failures of this kind within `window` before
        `now`, this one included, from whichever process they came."""
        moment = utc_naive(now)
        with transaction(self.engine) as conn:
            conn.execute(
                insert(audit_log).values(
                    at=moment,
                    actor=written(actor),
                    action=action,
                    query=client,
                    detail={"via": _VIA.get(action, action), "client": client},
                )
            )
            return _recent(conn, action, client, written(actor), moment - window)

    def recent(
        self, action: str, client: str, actor: str | None, now: datetime, window: timedelta
    ) -> Recent:
        """The client's failures within `window` before `now`, as `record` returns them,
        without adding one (`actor` None: the address's only)."""
        with self.engine.connect() as conn:
            return _recent(
                conn,
                action,
                client,
                written(actor) if actor is not None else None,
                utc_naive(now) - window,
            )

    def forgivable(self, action: str) -> bool:
        """Whether anything can forgive this kind of failure before its window ends."""
        return action in _FORGIVEN_BY

    def newest_forgiving(self, action: str) -> int:
        """The id of the newest row forgiving this kind of failure, 0 if none: a process whose
        counts already allow for it need not count again. One look-up in the (action, at)
        index, so cheap enough for each refusal a running relay is about to make."""
        if action not in _FORGIVEN_BY:
            return 0
        with self.engine.connect() as conn:
            return _newest_forgiving(conn, action)

    def pending(self, login: str, now: datetime, window: timedelta) -> Unlocked:
        """The relay failures a new password for `login` would forgive (see `Unlocked`)."""
        with self.engine.connect() as conn:
            return _pending(conn, written(login), None, utc_naive(now) - window)

    def unlock(
        self, login: str, note: AuditNote, window: timedelta, *, client: str | None = None
    ) -> Unlocked:
        """Forgive `login`'s relay failures so far, from every client address or from `client`
        only, by adding `note` (`smtp_auth_unlocked`, query: the login; `detail.client` and
        `detail.cleared` are filled in here) to the audit log; return what it forgave.

        Only that login's failures are forgiven: they leave its own count and the count of
        each address across logins, and nothing else does. So an address whose other logins'
        failures alone reach its limit across logins stays locked out, for every login (the
        one unlocked too), until those failures leave the window. Decided so because that
        limit is what stops guessing across logins; the relay applies it before a login is
        even read; and exempting the unlocked login from it would hand whoever is guessing
        from that address fresh tries at that login. An admin who trusts the address waits
        out the window (`failure_window`); `Unlocked.others` lets the caller say so. `cleared`
        counts the failures within `window` before `note.at`, by this host's clock; what is
        forgiven is decided by row id, so it does not depend on that clock.
        """
        name = written(login)
        with transaction(self.engine) as conn:
            found = _pending(conn, name, client, utc_naive(note.at) - window)
            detail = {**note.detail, "cleared": found.cleared}
            if client is not None:
                detail["client"] = client
            add_audit(conn, AuditNote(note.actor, SMTP_AUTH_UNLOCKED, note.at, name, None, detail))
        return found


def _newest_forgiving(conn: Connection, action: str) -> int:
    return int(
        conn.execute(
            select(func.max(audit_log.c.id)).where(audit_log.c.action.in_(_FORGIVEN_BY[action]))
        ).scalar()
        or 0
    )


def _forgiven(
    conn: Connection, action: str, rows: Sequence[tuple[int, datetime, str, str]]
) -> set[int]:
    """The ids among `rows` (id, at, actor, client address) of failures that a later unlock
    or new password for their actor forgives."""
    forgiving = _FORGIVEN_BY.get(action)
    if not forgiving or not rows:
        return set()
    cutoffs = conn.execute(
        select(audit_log.c.id, audit_log.c.query, audit_log.c.detail).where(
            audit_log.c.action.in_(forgiving),
            audit_log.c.id > min(row[0] for row in rows),
            audit_log.c.query.in_({row[2] for row in rows}),
        )
    ).all()
    forgiven: set[int] = set()
    for row_id, _, actor, client in rows:
        for cutoff, login, detail in cutoffs:
            scope = (detail or {}).get("client")
            if cutoff > row_id and login == actor and scope in (None, client):
                forgiven.add(row_id)
                break
    return forgiven


def _recent(
    conn: Connection, action: str, client: str, actor: str | None, since: datetime
) -> Recent:
    settled = _newest_forgiving(conn, action) if action in _FORGIVEN_BY else 0
    rows = [
        (row_id, at, who, client)
        for row_id, at, who in conn.execute(
            select(audit_log.c.id, audit_log.c.at, audit_log.c.actor)
            .where(
                audit_log.c.action == action,
                audit_log.c.at >= since,
                audit_log.c.query == client,
            )
            .order_by(audit_log.c.at, audit_log.c.id)
        ).all()
    ]
    forgiven = _forgiven(conn, action, rows)
    kept = [row for row in rows if row[0] not in forgiven]
    return Recent(
        address=[as_aware(at) for _, at, _, _ in kept],
        actor=[as_aware(at) for _, at, who, _ in kept if who == actor],
        forgiven_address=len(rows) - len(kept),
        forgiven_actor=sum(1 for row_id, _, who, _ in rows if who == actor and row_id in forgiven),
        settled=settled,
    )


def _pending(conn: Connection, login: str, client: str | None, since: datetime) -> Unlocked:
    """`login`'s relay failures since `since` not yet forgiven (from `client`, if given), by
    address, and the other logins' failures still counting at those addresses."""
    mine = select(audit_log.c.query).where(
        audit_log.c.action == SMTP_AUTH_FAILED,
        audit_log.c.at >= since,
        audit_log.c.actor == login,
    )
    if client is not None:
        mine = mine.where(audit_log.c.query == client)
    # Every failure at the addresses the login failed from: the others' are reported too.
    rows: list[tuple[int, datetime, str, str]] = [
        (row_id, at, who, address)
        for row_id, at, who, address in conn.execute(
            select(audit_log.c.id, audit_log.c.at, audit_log.c.actor, audit_log.c.query).where(
                audit_log.c.action == SMTP_AUTH_FAILED,
                audit_log.c.at >= since,
                audit_log.c.query.in_(mine.distinct()),
            )
        )
    ]
    forgiven = _forgiven(conn, SMTP_AUTH_FAILED, rows)
    by_client: dict[str, int] = {}
    others: dict[str, int] = {}
    for row_id, _, who, address in rows:
        if row_id in forgiven:  # rows are at `client` alone when it is given (`mine`)
            continue
        counts = by_client if who == login else others
        counts[address] = counts.get(address, 0) + 1
    return Unlocked(login, by_client, {a: n for a, n in others.items() if a in by_client})
