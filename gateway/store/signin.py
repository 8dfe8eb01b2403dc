"""Sign-in attempts at the web console, and the lockout after repeated failures.

Each attempt is written to the audit log before the password is checked, in a transaction
that first counts the address's recent attempts, one address at a time (SQLite's write lock;
a PostgreSQL advisory lock on the address). So twenty guesses sent at once are counted as
twenty, not checked all at once against a count of none, whichever gateway process they
reach. A successful sign-in, or a new password, starts the count again.

The lockout is per address and client (`limit`), so that someone who knows a lead's address
cannot keep the lead out from another computer; guesses spread over many clients still meet
a lockout of the address itself at `ADDRESS_FACTOR` times `limit`, as for SMTP AUTH.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func, insert, select

from gateway.store.credentials import PASSWORD_SET
from gateway.store.db import is_postgres, transaction
from gateway.store.records import utc_naive
from gateway.store.schema import audit_log

ATTEMPT = "signin_attempt"
SUCCESS = "signin"
LOCKED = "signin_locked"
ADDRESS_FACTOR = 10


class SigninAttempts:
    def __init__(self, engine: Engine, *, limit: int, window: timedelta) -> None:
        self.engine = engine
        self.limit = limit
        self.window = window

    def begin(self, email: str, now: datetime, client: str) -> bool:
        """Record an attempt for `email` from `client`, unless `limit` attempts from that client
        (or ADDRESS_FACTOR times as many from any) since the last success or new password, within
        `window`, have not succeeded: then record the lockout and say no."""
        moment = utc_naive(now)
        with transaction(self.engine) as conn:
            if is_postgres(self.engine):
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(email))))
            # Rows, not clocks, say what came after a success or a new password: the host that
            # set the password may keep another time than this one.
            fresh_start = conn.execute(
                select(func.max(audit_log.c.id)).where(
                    audit_log.c.action.in_((SUCCESS, PASSWORD_SET)), audit_log.c.query == email
                )
            ).scalar()
            recent = (
                select(
                    func.count(),
                    func.count().filter(audit_log.c.detail["client"].as_string() == client),
                )
                .select_from(audit_log)
                .where(
                    audit_log.c.action == ATTEMPT,
                    audit_log.c.query == email,
                    audit_log.c.at >= moment - self.window,
                    audit_log.c.id > (fresh_start or 0),
                )
            )
            everywhere, here = conn.execute(recent).one()
            locked = here >= self.limit or everywhere >= self.limit * ADDRESS_FACTOR
            conn.execute(
                insert(audit_log).values(
                    at=moment,
                    actor=email,
                    action=LOCKED if locked else ATTEMPT,
                    query=email,
                    detail={"via": "web", "client": client},
                )
            )
        return not locked
