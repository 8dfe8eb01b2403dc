"""Who a rule is about: the message's recipients that are young people in the rule's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.directory.model import Contact, DirectoryView
from gateway.message.model import Address, Message
from gateway.policy.types import Organisation, Rule


@dataclass(frozen=True)
class InScope:
    address: Address
    contact: Contact
    age: int


def sender_of(message: Message) -> str:
    return message.sender.email or message.envelope_from


def young_recipients(
    message: Message, view: DirectoryView, now: datetime, rule: Rule
) -> list[InScope]:
    """Known contacts among the recipients who are minors on the local date (unless the rule
    says otherwise) and whose category the rule names."""
    today = now.date()
    found: list[InScope] = []
    seen: set[str] = set()
    for address in message.receiving:
        contact = view.contact(address.email)
        if contact is None or contact.email in seen:
            continue
        if rule.where.minors_only and not contact.is_minor_on(today):
            continue
        if rule.where.categories is not None and contact.category not in rule.where.categories:
            continue
        seen.add(contact.email)
        found.append(InScope(address, contact, contact.age_on(today)))
    return found


def is_staff_address(address: str, view: DirectoryView, org: Organisation) -> bool:
    return view.is_staff(address) or org.is_internal(address)


def describe(contact: Contact) -> dict[str, str]:
    return {"name": contact.name, "email": contact.email, "category": contact.category}
