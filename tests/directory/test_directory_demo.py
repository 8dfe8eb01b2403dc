"""The demo directory shipped with the package loads and has the people the docs talk about."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.directory.csvfile import (
    DEMO_CONTACTS_CSV,
    DEMO_STAFF_CSV,
    read_contacts_csv,
    read_staff_csv,
)
from gateway.directory.model import DirectoryView

DAY = date(2026, 11, 23)  # the date used in the interface examples


@pytest.fixture(scope="module")
def view() -> DirectoryView:
    return DirectoryView(
        read_contacts_csv(DEMO_CONTACTS_CSV, today=DAY), read_staff_csv(DEMO_STAFF_CSV)
    )


def test_both_demo_files_load(view: DirectoryView) -> None:
    assert len(view.staff) == 8
    assert len(view.contacts) == 12


def test_the_demo_has_one_dsl_and_level_2_colleagues(view: DirectoryView) -> None:
    assert [(m.email, m.name) for m in view.dsls()] == [("dsl@safe.example", "Dana Lee")]
    level_2 = {m.email for m in view.staff_with_level(2, DAY)}
    assert "alex.teacher@safe.example" in level_2
    assert "chris.patel@safe.example" not in level_2  # training lapsed
    chris = view.staff_member("chris.patel@safe.example")
    assert chris is not None and chris.safeguarding_level == 2 and chris.level_on(DAY) == 0
    assert [m.name for m in view.staff if not m.dbs_checked] == ["Jamie Brooks"]
    assert all(m.email.endswith("@safe.example") for m in view.staff)


def test_the_demo_contacts_cover_the_cases_the_rules_need(view: DirectoryView) -> None:
    sam = view.contact("sam.minor@home.example")
    assert sam is not None and sam.name == "Sam Taylor" and sam.is_minor_on(DAY)
    assert view.guardians_of(sam) == ("priya.shah@parents.example",)
    assert view.contact("priya.shah@parents.example") is None  # guardians are just addresses
    assert len(view.children_of_guardian("priya.shah@parents.example")) == 2

    minors = [c for c in view.contacts if c.is_minor_on(DAY)]
    adults = [c for c in view.contacts if not c.is_minor_on(DAY)]
    assert len(adults) == 2
    assert {c.age_on(DAY) for c in minors} == {13, 14, 15, 16, 17}
    assert {c.category for c in minors} == {"participant", "work_experience", "volunteer"}
    assert all(c.guardian_emails for c in minors)
    assert [c.name for c in minors if not c.consent] == ["Ethan Clarke"]
    assert any(len(c.emails) > 1 for c in view.contacts)
    assert view.children_of_school("careers@school.example")

    leo = view.contact("leo.bennett@home.example")
    assert leo is not None and leo.is_minor_on(date(2027, 1, 14))
    assert not leo.is_minor_on(date(2027, 1, 15))
