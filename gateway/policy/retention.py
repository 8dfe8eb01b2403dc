"""How long the archive keeps a message: the pack's `[retention]`, read as "N years, or until
the youngest minor involved reaches `until_age`, whichever is later" (rules/README.md).

Pure functions of dates: the store finds the records, this says which of them may go.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from gateway.directory.model import DirectoryView, birthday_in
from gateway.policy.types import Retention


def youngest_minor_born(addresses: Iterable[str], view: DirectoryView, day: date) -> date | None:
    """The date of birth of the youngest person among `addresses` who was under 18 on `day`
    (the message's local date), or None when no known minor was involved."""
    born: date | None = None
    for address in addresses:
        contact = view.contact(address)
        if contact is None or not contact.is_minor_on(day):
            continue
        if born is None or contact.date_of_birth > born:
            born = contact.date_of_birth
    return born


def keep_until(received: date, retention: Retention, minors_born: Iterable[date]) -> date | None:
    """The first day the record may be purged; None when the pack sets no retention at all
    (then nothing is ever purged)."""
    if retention.years is None and retention.until_age is None:
        return None
    until = received
    if retention.years is not None:
        until = max(until, birthday_in(received.year + retention.years, received))
    if retention.until_age is not None:
        for born in minors_born:
            until = max(until, birthday_in(born.year + retention.until_age, born))
    return until


def describe(retention: Retention) -> str:
    """The rule in words, for `archive purge` and the README."""
    parts = []
    if retention.years is not None:
        parts.append(f"{retention.years} years")
    if retention.until_age is not None:
        parts.append(f"until the youngest young person involved is {retention.until_age}")
    if not parts:
        return "no retention period: nothing is purged"
    return (
        "keep each message "
        + ", or ".join(parts)
        + (", whichever is later" if len(parts) > 1 else "")
    )
