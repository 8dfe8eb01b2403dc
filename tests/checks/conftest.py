"""Helpers for the check tests: messages built as values, a small directory, rules by hand.

Messages are built with the `Message` dataclass directly (not parsed), so each test states
exactly which text is new, which is signature and which is quoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cache
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from gateway.directory.model import Contact, DirectoryView, StaffMember
from gateway.message import parse_message
from gateway.message.model import Address, Message
from gateway.policy.hours import OfficeHours
from gateway.policy.types import Action, Finding, Organisation, Rule, Where

DOMAIN = "youth.example"
SENDER = f"alex.teacher@{DOMAIN}"
MINOR = "sam.minor@home.example"
GUARDIAN = "priya.shah@parents.example"
SCHOOL = "head@school.example"
ADULT = "ada.adult@home.example"
# A Monday in term time, 10:00 London; Sam is 15, Ada 26.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/London"))


@cache
def view() -> DirectoryView:
    return DirectoryView(
        [
            Contact(
                (MINOR,),
                "Sam Taylor",
                date(2011, 5, 4),
                "participant",
                (GUARDIAN,),
                (SCHOOL,),
                True,
            ),
            Contact(
                ("wes.student@home.example",),
                "Wes Student",
                date(2010, 2, 1),
                "work_experience",
                ("w.parent@parents.example",),
                (),
                True,
            ),
            Contact((ADULT,), "Ada Adult", date(2000, 1, 1), "participant"),
        ],
        [
            StaffMember(SENDER, "Alex Teacher", 2, date(2027, 9, 1), True),
            StaffMember(f"love.okonkwo@{DOMAIN}", "Love Okonkwo", 2, date(2027, 9, 1), True),
            StaffMember(f"dana.lee@{DOMAIN}", "Dana Lee", 3, date(2027, 3, 31), True, True),
        ],
    )


def organisation(
    *,
    own_phone_numbers: Sequence[str] = ("0121 348 8014", "07700 900999"),
    own_addresses: Sequence[str] = (),
) -> Organisation:
    zone = ZoneInfo("Europe/London")
    return Organisation(
        name="Youth Arts Trust",
        domains=(DOMAIN,),
        timezone=zone,
        office_hours=_hours(),
        bank_holidays="GB-ENG",
        dsl=(f"safeguarding@{DOMAIN}",),
        mailboxes={},
        own_phone_numbers=tuple(own_phone_numbers),
        own_addresses=tuple(own_addresses),
    )


@cache
def _hours() -> OfficeHours:
    return OfficeHours("Mon-Fri 09:00-17:00", ZoneInfo("Europe/London"), "GB-ENG")


def make_rule(
    check: ModuleType,
    settings: Mapping[str, Any] | None = None,
    *,
    policy: str = "",
    action: Action = Action.FLAG,
    where: Where | None = None,
    rule_id: str = "rule-under-test",
) -> Rule:
    """A rule for `check` with its settings parsed the way the pack loader parses them."""
    return Rule(
        id=rule_id,
        check=check.CODE,
        action=action,
        policy=policy or "(test)",
        where=where or Where(),
        settings=check.parse_settings(dict(settings or {})),
    )


def make_message(
    text: str = "Hi Sam,\n\nSee you on Thursday.\n\nKind regards,\nAlex",
    *,
    to: Sequence[str] = (MINOR,),
    cc: Sequence[str] = (GUARDIAN,),
    bcc: Sequence[str] = (),
    sender: str = SENDER,
    sender_name: str = "Alex Teacher",
    subject: str = "Thursday's session",
    signature: str = "",
    quoted: str = "",
    channel: str = "mail",
    is_reply: bool = False,
) -> Message:
    return Message(
        channel=channel,
        sender=Address(sender, sender_name),
        envelope_from=sender,
        envelope_to=(*to, *cc, *bcc),
        to=tuple(Address(a) for a in to),
        cc=tuple(Address(a) for a in cc),
        bcc=tuple(Address(a) for a in bcc),
        subject=subject,
        message_id="<test@youth.example>",
        date=NOW.astimezone(UTC),
        sent_at=NOW.astimezone(UTC),
        new_text=text,
        signature=signature,
        quoted_text=quoted,
        attachments=(),
        auto_submitted=False,
        defects=(),
        is_reply=is_reply,
    )


def parse_alternative(plain: str, html: str, *, reply: bool = False) -> Message:
    """A client's multipart/alternative mail from SENDER to MINOR, copying GUARDIAN, parsed
    as the relay parses it."""
    head = f"From: Alex Teacher <{SENDER}>\r\nTo: {MINOR}\r\nCc: {GUARDIAN}\r\n"
    if reply:
        head += "In-Reply-To: <question@home.example>\r\n"
    raw = (
        f"{head}Subject: Thursday\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        f"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n"
        f"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--\r\n"
    )
    return parse_message(
        raw.encode(),
        envelope_from=SENDER,
        envelope_to=(MINOR, GUARDIAN),
        sent_at=NOW.astimezone(UTC),
    )


def run(
    check: ModuleType, message: Message, rule: Rule, org: Organisation | None = None
) -> list[Finding]:
    return check.check(message, view(), NOW, rule, org or organisation())
