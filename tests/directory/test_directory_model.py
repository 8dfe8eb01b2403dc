"""The directory's values and the read-only view the checks query."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.directory.model import Contact, DirectoryView, StaffMember, normalise_email


def contact(
    *emails: str,
    born: date = date(2011, 5, 14),
    guardians: tuple[str, ...] = (),
    schools: tuple[str, ...] = (),
    name: str = "Sam Taylor",
) -> Contact:
    return Contact(
        emails=emails or ("sam.minor@home.example",),
        name=name,
        date_of_birth=born,
        category="participant",
        guardian_emails=guardians,
        school_emails=schools,
        consent=True,
    )


def staff(
    email: str,
    name: str,
    level: int = 2,
    expires: date | None = date(2027, 9, 1),
    *,
    dsl: bool = False,
) -> StaffMember:
    return StaffMember(email, name, level, expires, dbs_checked=True, dsl=dsl)


def test_normalise_email_strips_and_lower_cases() -> None:
    assert normalise_email("  Sam.Minor@Home.EXAMPLE \n") == "sam.minor@home.example"


def test_normalise_email_treats_composed_and_decomposed_accents_alike() -> None:
    assert normalise_email("Ren\u00e9@x.example") == normalise_email("Rene\u0301@x.example")


def test_age_counts_whole_years() -> None:
    sam = contact(born=date(2011, 5, 14))
    assert sam.age_on(date(2026, 5, 13)) == 14
    assert sam.age_on(date(2026, 5, 14)) == 15
    assert sam.age_on(date(2026, 12, 31)) == 15


def test_a_contact_becomes_an_adult_on_their_18th_birthday() -> None:
    leo = contact(born=date(2009, 1, 15))
    assert leo.is_minor_on(date(2027, 1, 14))
    assert not leo.is_minor_on(date(2027, 1, 15))


def test_a_leap_day_birthday_falls_on_1_march_in_common_years() -> None:
    isla = contact(born=date(2012, 2, 29))
    # 2030 is a common year: the 18th birthday is 1 March.
    assert isla.is_minor_on(date(2030, 2, 28))
    assert not isla.is_minor_on(date(2030, 3, 1))
    # In a leap year the birthday is 29 February itself.
    assert isla.age_on(date(2028, 2, 28)) == 15
    assert isla.age_on(date(2028, 2, 29)) == 16


def test_a_contact_needs_an_address() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Contact((), "Nobody", date(2010, 1, 1), "participant", (), (), False)


def test_the_first_address_is_the_primary_one() -> None:
    assert contact("mia@home.example", "mia@pupils.school.example").email == "mia@home.example"


def test_training_expiring_today_counts_as_lapsed() -> None:
    alex = staff("alex.teacher@safe.example", "Alex Teacher", 2, date(2026, 11, 23))
    assert alex.level_on(date(2026, 11, 23)) == 0
    assert not alex.training_valid_on(date(2026, 11, 23))


def test_training_expiring_tomorrow_still_counts() -> None:
    alex = staff("alex.teacher@safe.example", "Alex Teacher", 2, date(2026, 11, 24))
    assert alex.level_on(date(2026, 11, 23)) == 2


def test_no_training_date_means_level_0() -> None:
    assert staff("jamie@safe.example", "Jamie Brooks", 3, None).level_on(date(2026, 1, 1)) == 0


@pytest.mark.parametrize("level", [-1, 5])
def test_a_level_outside_0_to_4_is_refused(level: int) -> None:
    with pytest.raises(ValueError, match="0-4"):
        staff("x@safe.example", "X", level)


def test_the_view_finds_a_contact_by_any_of_their_addresses() -> None:
    mia = contact("mia.jones@home.example", "mia.jones@pupils.school.example", name="Mia Jones")
    view = DirectoryView([mia], [])
    assert view.contact("mia.jones@home.example") is mia
    assert view.contact(" Mia.Jones@Pupils.School.Example ") is mia
    assert view.contact("someone@else.example") is None


def test_the_view_normalises_addresses_given_to_it() -> None:
    sam = contact("Sam.Minor@Home.example", guardians=("Priya.Shah@Parents.example",))
    view = DirectoryView([sam], [staff("Alex.Teacher@Safe.example", "Alex Teacher")])
    assert view.contact("sam.minor@home.example") is sam
    assert view.children_of_guardian("priya.shah@parents.example") == (sam,)
    assert view.staff_member("ALEX.TEACHER@safe.example") is not None
    assert view.is_staff("alex.teacher@safe.example")
    assert not view.is_staff("sam.minor@home.example")


def test_guardian_lookup_goes_both_ways() -> None:
    sam = contact("sam@home.example", guardians=("priya.shah@parents.example",))
    ruby = contact(
        "ruby@home.example",
        name="Ruby Taylor",
        guardians=("priya.shah@parents.example", "dad@home.example"),
    )
    view = DirectoryView([sam, ruby], [])
    assert view.guardians_of(ruby) == ("priya.shah@parents.example", "dad@home.example")
    assert view.children_of_guardian("priya.shah@parents.example") == (sam, ruby)
    assert view.children_of_guardian("dad@home.example") == (ruby,)
    assert view.children_of_guardian("stranger@x.example") == ()


def test_school_lookup_goes_both_ways() -> None:
    sam = contact("sam@home.example", schools=("mr.okafor@school.example",))
    view = DirectoryView([sam], [])
    assert view.schools_of(sam) == ("mr.okafor@school.example",)
    assert view.children_of_school("Mr.Okafor@school.example") == (sam,)
    assert view.children_of_school("ms.patel@school.example") == ()


def test_staff_with_level_counts_only_unexpired_training_and_sorts_by_name() -> None:
    day = date(2026, 11, 23)
    members = [
        staff("zed@safe.example", "Zed Adams", 2, date(2027, 1, 1)),
        staff("chris@safe.example", "Chris Patel", 2, date(2025, 6, 30)),  # lapsed
        staff("dana@safe.example", "dana Lee", 4, date(2028, 6, 30), dsl=True),
        staff("robin@safe.example", "Robin Walsh", 1, date(2027, 4, 30)),
        staff("alex@safe.example", "Alex Teacher", 2, day),  # expires today
    ]
    view = DirectoryView([], members)
    assert [m.name for m in view.staff_with_level(2, day)] == ["dana Lee", "Zed Adams"]
    assert [m.name for m in view.staff_with_level(0, day)] == [
        "Alex Teacher",
        "Chris Patel",
        "dana Lee",
        "Robin Walsh",
        "Zed Adams",
    ]
    assert [m.email for m in view.dsls()] == ["dana@safe.example"]
    assert view.staff == tuple(members)


def test_two_contacts_sharing_an_address_are_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        DirectoryView([contact("a@x.example"), contact("b@x.example", "A@x.example")], [])


def test_two_staff_rows_sharing_an_address_are_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        DirectoryView([], [staff("a@safe.example", "A"), staff("A@safe.example", "B")])


def test_an_empty_view_knows_nobody() -> None:
    view = DirectoryView.empty()
    assert view.contacts == () and view.staff == ()
    assert view.contact("sam@home.example") is None
    assert view.staff_member("dsl@safe.example") is None
    assert view.dsls() == ()


def test_values_are_frozen() -> None:
    sam = contact()
    with pytest.raises(AttributeError):
        sam.name = "Other"  # type: ignore[misc]
