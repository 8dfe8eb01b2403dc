"""Failed relay logins and wrong API tokens, per client address (and login), in the audit log.

Every relay process and every gateway on one database writes its failures here, so the limit on
them holds for the whole deployment, not for each process: with `[server] processes = N`, or
several gateways, in-memory counts alone would allow N times as many guesses. The rows also let
an IT admin see a password being guessed (`safeguard audit --action smtp_auth_failed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select

from gateway.store.db import transaction
from gateway.store.records import as_aware, utc_naive
from gateway.store.schema import audit_log

SMTP_AUTH_FAILED = "smtp_auth_failed"
API_TOKEN_FAILED = "api_token_failed"
_VIA = {SMTP_AUTH_FAILED: "relay", API_TOKEN_FAILED: "api"}


@dataclass(frozen=True)
class Recent:
    """A client address's failures of one kind within the window (aware, UTC, oldest first):
    all of them, and those claiming the same actor (the login tried)."""

    address: list[datetime]
    actor: list[datetime]


class FailureLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, action: str, client: str, actor: str, now: datetime, window: timedelta
    ) -> Recent:
        """Add one failure; return the client's failures of this kind within `window` before
        `now`, this one included, from whichever process they came."""
        moment = utc_naive(now)
        written = "".join(c for c in actor if c.isprintable())[:320]
        with transaction(self.engine) as conn:
            conn.execute(
                insert(audit_log).values(
                    at=moment,
                    actor=written,
                    action=action,
                    query=client,
                    detail={"via": _VIA.get(action, action), "client": client},
                )
            )
            rows = conn.execute(
                select(audit_log.c.at, audit_log.c.actor)
                .where(
                    audit_log.c.action == action,
                    audit_log.c.at >= moment - window,
                    audit_log.c.query == client,
                )
                .order_by(audit_log.c.at)
            ).all()
        return Recent(
            address=[as_aware(at) for at, _ in rows],
            actor=[as_aware(at) for at, who in rows if who == written],
        )
