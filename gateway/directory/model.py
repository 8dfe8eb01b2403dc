"""The people the gateway knows, and the read-only view the policy checks query."""

from __future__ import annotations

import calendar
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

ADULT_AGE = 18
MIN_LEVEL = 0
MAX_LEVEL = 4


def normalise_email(value: str) -> str:
    """The one spelling under which an address is stored and compared.

    Strips surrounding space and lower-cases the whole address. NFC comes first so that a
    composed and a decomposed "é" (one from a CSV, one from a mail header) compare equal.
    """
    return unicodedata.normalize("NFC", value.strip()).lower()


def birthday_in(year: int, born: date) -> date:
    # A 29 February birthday falls on 1 March in common years (as English law counts age).
    if born.month == 2 and born.day == 29 and not calendar.isleap(year):
        return date(year, 3, 1)
    return born.replace(year=year)


@dataclass(frozen=True, slots=True)
class Contact:
    """A young person or other outside contact, as one contacts.csv row."""

    emails: tuple[str, ...]
    name: str
    date_of_birth: date
    category: str
    guardian_emails: tuple[str, ...] = ()
    school_emails: tuple[str, ...] = ()
    consent: bool = False

    def __post_init__(self) -> None:
        if not self.emails:
            raise ValueError("a contact needs at least one email address")

    @property
    def email(self) -> str:
        """The primary address (the first one listed)."""
        return self.emails[0]

    def age_on(self, day: date) -> int:
        """Age in whole years on ``day`` (negative before birth)."""
        age = day.year - self.date_of_birth.year
        if day < birthday_in(day.year, self.date_of_birth):
            age -= 1
        return age

    def is_minor_on(self, day: date) -> bool:
        """Under 18 on that local date; the 18th birthday itself is the first adult day."""
        return self.age_on(day) < ADULT_AGE


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A member of staff, as one staff.csv row."""

    email: str
    name: str
    safeguarding_level: int = 0
    training_expires: date | None = None
    dbs_checked: bool = False
    dsl: bool = False

    def __post_init__(self) -> None:
        if not MIN_LEVEL <= self.safeguarding_level <= MAX_LEVEL:
            raise ValueError(
                f"safeguarding_level must be {MIN_LEVEL}-{MAX_LEVEL}, not {self.safeguarding_level}"
            )

    def training_valid_on(self, day: date) -> bool:
        """Training counts only while its expiry date is strictly after ``day``."""
        return self.training_expires is not None and self.training_expires > day

    def level_on(self, day: date) -> int:
        """The level that counts on ``day``: 0 once training has lapsed or was never recorded."""
        return self.safeguarding_level if self.training_valid_on(day) else 0


def _freeze_index(index: dict[str, list[Contact]]) -> Mapping[str, tuple[Contact, ...]]:
    return MappingProxyType({key: tuple(value) for key, value in index.items()})


def _by_name(member: StaffMember) -> tuple[str, str]:
    return (member.name.casefold(), member.email)


class DirectoryView:
    """Read-only, in-memory, O(1) lookups; built once per directory version and shared by threads.

    Every index is built in ``__init__`` and never changed afterwards, so concurrent readers need
    no lock. Addresses are keyed by ``normalise_email``; lookups normalise their argument.
    An address listed by two contacts (or two staff rows) is a ``ValueError``: the CSV readers
    never produce that, and a silent "first wins" would hide a data bug.
    """

    __slots__ = (
        "_by_guardian",
        "_by_school",
        "_contact_by_email",
        "_contacts",
        "_staff",
        "_staff_by_email",
        "_staff_by_name",
    )

    def __init__(self, contacts: Iterable[Contact], staff: Iterable[StaffMember]) -> None:
        self._contacts = tuple(contacts)
        self._staff = tuple(staff)

        by_email: dict[str, Contact] = {}
        by_guardian: dict[str, list[Contact]] = {}
        by_school: dict[str, list[Contact]] = {}
        for contact in self._contacts:
            for address in dict.fromkeys(normalise_email(e) for e in contact.emails):
                if address in by_email:
                    raise ValueError(f"two contacts share the address {address!r}")
                by_email[address] = contact
            for address in dict.fromkeys(normalise_email(e) for e in contact.guardian_emails):
                by_guardian.setdefault(address, []).append(contact)
            for address in dict.fromkeys(normalise_email(e) for e in contact.school_emails):
                by_school.setdefault(address, []).append(contact)

        staff_by_email: dict[str, StaffMember] = {}
        for member in self._staff:
            address = normalise_email(member.email)
            if address in staff_by_email:
                raise ValueError(f"two staff rows share the address {address!r}")
            staff_by_email[address] = member

        self._contact_by_email: Mapping[str, Contact] = MappingProxyType(by_email)
        self._by_guardian = _freeze_index(by_guardian)
        self._by_school = _freeze_index(by_school)
        self._staff_by_email: Mapping[str, StaffMember] = MappingProxyType(staff_by_email)
        self._staff_by_name = tuple(sorted(self._staff, key=_by_name))

    @classmethod
    def empty(cls) -> DirectoryView:
        """A view that knows nobody (before the first import)."""
        return cls((), ())

    @property
    def contacts(self) -> tuple[Contact, ...]:
        """Every contact, in the order given."""
        return self._contacts

    @property
    def staff(self) -> tuple[StaffMember, ...]:
        """Every staff member, in the order given."""
        return self._staff

    def contact(self, email: str) -> Contact | None:
        """The contact with this address among their addresses, if any."""
        return self._contact_by_email.get(normalise_email(email))

    def staff_member(self, email: str) -> StaffMember | None:
        return self._staff_by_email.get(normalise_email(email))

    def is_staff(self, email: str) -> bool:
        return normalise_email(email) in self._staff_by_email

    def knows(self, email: str) -> bool:
        """Whether the directory lists this address at all: as a contact's, a member of
        staff's, or a contact's guardian's or school representative's."""
        address = normalise_email(email)
        return (
            address in self._contact_by_email
            or address in self._staff_by_email
            or address in self._by_guardian
            or address in self._by_school
        )

    def guardians_of(self, contact: Contact) -> tuple[str, ...]:
        """The contact's guardian addresses, normalised, in the order listed."""
        return tuple(dict.fromkeys(normalise_email(e) for e in contact.guardian_emails))

    def schools_of(self, contact: Contact) -> tuple[str, ...]:
        """The contact's school-representative addresses, normalised, in the order listed."""
        return tuple(dict.fromkeys(normalise_email(e) for e in contact.school_emails))

    def children_of_guardian(self, email: str) -> tuple[Contact, ...]:
        """Contacts listing this address as a guardian, in directory order."""
        return self._by_guardian.get(normalise_email(email), ())

    def children_of_school(self, email: str) -> tuple[Contact, ...]:
        """Contacts listing this address as a school representative, in directory order."""
        return self._by_school.get(normalise_email(email), ())

    def staff_with_level(self, minimum: int, day: date) -> tuple[StaffMember, ...]:
        """Staff whose level counting on ``day`` (unexpired training) is at least ``minimum``.

        Sorted by name (case-insensitive, then address). ``minimum <= 0`` returns all staff.
        """
        return tuple(m for m in self._staff_by_name if m.level_on(day) >= minimum)

    def dsls(self) -> tuple[StaffMember, ...]:
        """Designated Safeguarding Leads and deputies, sorted by name."""
        return tuple(m for m in self._staff_by_name if m.dsl)

    def __repr__(self) -> str:
        return f"DirectoryView({len(self._contacts)} contacts, {len(self._staff)} staff)"
