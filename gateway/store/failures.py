"""Failed relay logins and wrong API tokens, per client address, in the audit log.

Every relay process and every gateway on one database writes its failures here, so the limit on
them holds for the whole deployment, not for each process: with `[server] processes = N`, or
several gateways, in-memory counts alone would allow N times as many guesses. The rows also let
an IT admin see a password being guessed (`safeguard audit --action smtp_auth_failed`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select

from gateway.store.db import transaction
from gateway.store.records import as_aware, utc_naive
from gateway.store.schema import audit_log

SMTP_AUTH_FAILED = "smtp_auth_failed"
API_TOKEN_FAILED = "api_token_failed"
_VIA = {SMTP_AUTH_FAILED: "relay", API_TOKEN_FAILED: "api"}


class FailureLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, action: str, client: str, actor: str, now: datetime, window: timedelta
    ) -> list[datetime]:
        """Add one failure; return the times (aware, UTC) of the client's failures of this kind
        within `window` before `now`, this one included, from whichever process they came."""
        moment = utc_naive(now)
        with transaction(self.engine) as conn:
            conn.execute(
                insert(audit_log).values(
                    at=moment,
                    actor="".join(c for c in actor if c.isprintable())[:320],
                    action=action,
                    query=client,
                    detail={"via": _VIA.get(action, action), "client": client},
                )
            )
            times = conn.execute(
                select(audit_log.c.at)
                .where(
                    audit_log.c.action == action,
                    audit_log.c.at >= moment - window,
                    audit_log.c.query == client,
                )
                .order_by(audit_log.c.at)
            ).scalars()
            return [as_aware(t) for t in times]
