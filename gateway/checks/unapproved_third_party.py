"""Mail to a young person is copied to someone who is neither their guardian or school
representative nor staff."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.checks._scope import (
    describe,
    is_staff_address,
    sender_of,
    young_recipients,
)
from gateway.checks._settings import reject_unknown
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "unapproved_third_party"
ROLES = ("guardian", "school", "staff", "level2_staff")


@dataclass(frozen=True)
class Settings:
    allowed: tuple[str, ...] = ("guardian", "school", "staff")
    min_level: int = 2


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    reject_unknown(raw, {"allowed", "min_level"})
    allowed = tuple(raw.get("allowed", Settings.allowed))
    for role in allowed:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    return Settings(allowed, int(raw.get("min_level", 2)))


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    settings: Settings = rule.settings
    young = young_recipients(message, view, now, rule)
    if not young:
        return []
    # A group mail to several young people (and their families) is not a copy to outsiders.
    approved = {sender_of(message)} | {e for y in young for e in y.contact.emails}
    for y in young:
        if "guardian" in settings.allowed:
            approved.update(view.guardians_of(y.contact))
        if "school" in settings.allowed:
            approved.update(view.schools_of(y.contact))
    level2 = {s.email for s in view.staff_with_level(settings.min_level, now.date())}
    findings = []
    for address in message.receiving:
        email = address.email
        if email in approved:
            continue
        if "staff" in settings.allowed and is_staff_address(email, view, org):
            continue
        if "level2_staff" in settings.allowed and email in level2:
            continue
        # A fellow participant of 18 in a team's mail is one of the group, not a copy to an
        # outsider: a known contact of the same category as a young recipient.
        known = view.contact(email)
        if known is not None and known.category in {y.contact.category for y in young}:
            continue
        findings.append(
            Finding(
                code=CODE,
                rule=rule.id,
                action=rule.action,
                recipient=email,
                params={
                    "third_party": {"email": email, "name": address.name},
                    "young_people": [describe(y.contact) for y in young],
                    "allowed": list(settings.allowed),
                },
            )
        )
    return findings
