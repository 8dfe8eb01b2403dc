"""Mail to a young person outside office hours (weekends and bank holidays included)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.checks._scope import describe, young_recipients
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "out_of_hours"


def parse_settings(raw: Mapping[str, Any]) -> None:
    if raw:
        raise ValueError("out_of_hours takes its hours from [organisation] office_hours")


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    hours = org.office_hours
    if hours.is_open(now):
        return []
    young = young_recipients(message, view, now, rule)
    if not young:
        return []
    local = now.astimezone(org.timezone)
    opening = hours.next_opening(local)
    return [
        Finding(
            code=CODE,
            rule=rule.id,
            action=rule.action,
            recipient=None,
            evidence=local.strftime("%A %d %B %Y %H:%M"),
            params={
                "sent_local": local.isoformat(),
                "next_opening": opening.isoformat(),
                "holiday": hours.holiday_name(local.date()),
                "office_hours": hours.text,
                "young_people": [describe(y.contact) for y in young],
            },
        )
    ]
