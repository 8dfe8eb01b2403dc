"""Group mail exposes external recipients' addresses in To/Cc; the fix is to move them to Bcc."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.checks._scope import young_recipients
from gateway.checks._settings import reject_unknown
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "mass_mail_visible_recipients"


@dataclass(frozen=True)
class Settings:
    max_visible_external: int = 1


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    reject_unknown(raw, {"max_visible_external"})
    limit = raw.get("max_visible_external", 1)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError("max_visible_external must be a whole number, 0 or more")
    return Settings(limit)


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    settings: Settings = rule.settings
    visible = list(
        dict.fromkeys(
            a.email for a in (*message.to, *message.cc) if a.email and not org.is_internal(a.email)
        )
    )
    if len(visible) <= settings.max_visible_external:
        return []
    if rule.where.minors_only and not young_recipients(message, view, now, rule):
        return []
    return [
        Finding(
            code=CODE,
            rule=rule.id,
            action=rule.action,
            recipient=None,
            params={
                "visible": visible,
                "count": len(visible),
                "limit": settings.max_visible_external,
            },
        )
    ]
