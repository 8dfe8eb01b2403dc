"""A message to a young person lacks the copy its pack requires."""

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
from gateway.directory.model import Contact, DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "missing_required_cc"
ROLES = ("guardian", "school", "staff", "level2_staff")


@dataclass(frozen=True)
class Settings:
    any_of: tuple[str, ...]
    fallback: tuple[str, ...] = ()
    min_level: int = 2


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    reject_unknown(raw, {"any_of", "fallback", "min_level"})
    any_of = tuple(raw.get("any_of", ()))
    fallback = tuple(raw.get("fallback", ()))
    if not any_of:
        raise ValueError("any_of must name at least one role")
    for role in (*any_of, *fallback):
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    min_level = raw.get("min_level", 2)
    if not isinstance(min_level, int) or not 0 <= min_level <= 4:
        raise ValueError("min_level must be 0-4")
    return Settings(any_of, fallback, min_level)


def _holders(
    role: str, contact: Contact, view: DirectoryView, now: datetime, sender: str, min_level: int
) -> tuple[str, ...] | None:
    """Addresses that fill `role` for this contact; None when anyone of the organisation could."""
    if role == "guardian":
        return view.guardians_of(contact)
    if role == "school":
        return view.schools_of(contact)
    if role == "level2_staff":
        return tuple(
            s.email for s in view.staff_with_level(min_level, now.date()) if s.email != sender
        )
    return None  # staff: any other address in the organisation


def _untagged(address: str) -> str:
    """`alex+copy@x` as `alex@x`: the sender copying themselves at a sub-address (which
    reaches their own mailbox) is not another person."""
    local, at, domain = address.partition("@")
    return f"{local.partition('+')[0]}{at}{domain}"


def _satisfied(
    role: str,
    holders: tuple[str, ...] | None,
    copied: set[str],
    view: DirectoryView,
    org: Organisation,
) -> bool:
    if holders is None:
        return any(is_staff_address(a, view, org) for a in copied)
    return bool(copied & set(holders))


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    settings: Settings = rule.settings
    sender = sender_of(message)
    findings = []
    for young in young_recipients(message, view, now, rule):
        own = _untagged(sender)
        copied = {
            a.email
            for a in message.receiving
            if a.email not in young.contact.emails and _untagged(a.email) != own
        }
        holders = {
            r: _holders(r, young.contact, view, now, sender, settings.min_level)
            for r in (*settings.any_of, *settings.fallback)
        }
        if any(_satisfied(r, holders[r], copied, view, org) for r in settings.any_of):
            continue
        # A fallback counts only when none of the first choices exists on record.
        first_choice_exists = any(holders[r] is None or holders[r] for r in settings.any_of)
        if not first_choice_exists and any(
            _satisfied(r, holders[r], copied, view, org) for r in settings.fallback
        ):
            continue
        colleagues = [
            {"name": s.name, "email": s.email}
            for s in view.staff_with_level(settings.min_level, now.date())
            if s.email != sender
        ][:3]
        findings.append(
            Finding(
                code=CODE,
                rule=rule.id,
                action=rule.action,
                recipient=young.address.email,
                params={
                    "young_person": describe(young.contact),
                    "age": young.age,
                    "required": list(settings.any_of),
                    "fallback": list(settings.fallback) if not first_choice_exists else [],
                    "guardians": list(view.guardians_of(young.contact)),
                    "schools": list(view.schools_of(young.contact)),
                    "colleagues": colleagues,
                    "min_level": settings.min_level,
                },
            )
        )
    return findings
