"""No parental consent or manager approval is on record for direct contact with a young person."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.checks._scope import describe, young_recipients
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "no_consent"


def parse_settings(raw: Mapping[str, Any]) -> None:
    if raw:
        raise ValueError(f"no_consent takes no settings (got {', '.join(sorted(raw))})")


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    return [
        Finding(
            code=CODE,
            rule=rule.id,
            action=rule.action,
            recipient=young.address.email,
            params={
                "young_person": describe(young.contact),
                "age": young.age,
                "guardians": list(view.guardians_of(young.contact)),
            },
        )
        for young in young_recipients(message, view, now, rule)
        if not young.contact.consent
    ]
