"""This sender may not write to this young person (outside the organisation, no DBS check, or
not the designated mailbox)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.checks._scope import describe, sender_of, young_recipients
from gateway.checks._settings import reject_unknown
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "sender_not_permitted"


@dataclass(frozen=True)
class Settings:
    require_org_domain: bool = True
    require_dbs: bool = False
    mailbox: str | None = None


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    reject_unknown(raw, {"require_org_domain", "require_dbs", "mailbox"})
    for key in ("require_org_domain", "require_dbs"):
        if key in raw and not isinstance(raw[key], bool):
            raise ValueError(f"{key} must be true or false")
    mailbox = raw.get("mailbox")
    if mailbox is not None and not isinstance(mailbox, str):
        raise ValueError("mailbox must name one of [organisation] mailboxes")
    return Settings(
        bool(raw.get("require_org_domain", True)), bool(raw.get("require_dbs", False)), mailbox
    )


def validate(rule: Rule, org: Organisation) -> list[str]:
    settings: Settings = rule.settings
    if settings.mailbox and settings.mailbox not in org.mailboxes:
        known = ", ".join(sorted(org.mailboxes)) or "none"
        return [
            f"settings: mailbox {settings.mailbox!r} is not in [organisation] mailboxes ({known})"
        ]
    return []


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    settings: Settings = rule.settings
    young = young_recipients(message, view, now, rule)
    if not young:
        return []
    sender = sender_of(message)
    reasons: list[tuple[str, dict[str, Any]]] = []
    if settings.require_org_domain and not org.is_internal(sender):
        reasons.append(("outside_organisation", {"domains": list(org.domains)}))
    if settings.require_dbs:
        member = view.staff_member(sender)
        if member is None or not member.dbs_checked:
            reasons.append(("no_dbs", {}))
    if settings.mailbox:
        required = org.mailboxes.get(settings.mailbox, "")
        if sender != required:
            reasons.append(
                ("not_designated_mailbox", {"mailbox": required, "mailbox_name": settings.mailbox})
            )
    return [
        Finding(
            code=CODE,
            rule=rule.id,
            action=rule.action,
            recipient=y.address.email,
            params={
                "reason": reason,
                "sender": sender,
                "young_person": describe(y.contact),
                **extra,
            },
        )
        for y in young
        for reason, extra in reasons
    ]
