"""The retention rule every pack ships: "keep each message 6 years, or until the youngest minor
involved is 25, whichever is later" (rules/README.md, "Retention")."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.directory.model import Contact, DirectoryView
from gateway.policy.pack import PackError, load_pack
from gateway.policy.retention import describe, keep_until, youngest_minor_born
from gateway.policy.types import Retention
from tests.policy.test_pack_loader import GOOD, write

BASELINE = Retention(years=6, until_age=25)


def test_six_years_when_no_young_person_is_involved():
    assert keep_until(date(2020, 9, 1), BASELINE, ()) == date(2026, 9, 1)


def test_until_the_youngest_is_25_when_that_is_later():
    born = [date(2008, 1, 1), date(2011, 5, 14)]
    assert keep_until(date(2020, 9, 1), BASELINE, born) == date(2036, 5, 14)


def test_six_years_still_wins_for_a_nearly_25_year_old():
    assert keep_until(date(2020, 9, 1), BASELINE, [date(1996, 1, 1)]) == date(2026, 9, 1)


def test_leap_days_fall_on_1_march_in_common_years():
    assert keep_until(date(2016, 2, 29), Retention(years=6), ()) == date(2022, 3, 1)
    assert keep_until(date(2020, 1, 1), Retention(until_age=25), [date(2012, 2, 29)]) == date(
        2037, 3, 1
    )


def test_a_pack_without_retention_purges_nothing():
    assert keep_until(date(2000, 1, 1), Retention(), [date(1990, 1, 1)]) is None
    assert describe(Retention()) == "no retention period: nothing is purged"


def test_the_youngest_minor_on_the_messages_date_counts_not_adults_or_strangers():
    view = DirectoryView(
        [
            Contact(("kid@home.example",), "Kid", date(2011, 5, 14), "participant"),
            Contact(("older@home.example",), "Older", date(2008, 6, 1), "participant"),
            Contact(("adult@home.example",), "Adult", date(2000, 1, 1), "volunteer"),
        ],
        [],
    )
    addresses = ["older@home.example", "adult@home.example", "nobody@else.example"]
    assert youngest_minor_born(addresses, view, date(2020, 1, 1)) == date(2008, 6, 1)
    assert youngest_minor_born([*addresses, "kid@home.example"], view, date(2020, 1, 1)) == (
        date(2011, 5, 14)
    )
    # On their 18th birthday the older one is an adult (contact.is_minor_on).
    assert youngest_minor_born(addresses, view, date(2026, 6, 1)) is None


@pytest.mark.parametrize(
    ("retention", "expected"),
    [
        ('years = "six"', "[retention] years must be a whole number from 1 to 100, not 'six'"),
        ("until_age = 12", "[retention] until_age must be a whole number from 18 to 120, not 12"),
        ("keep = 3", "[retention] unknown key 'keep'"),
    ],
)
def test_a_bad_retention_setting_is_refused_with_its_line(tmp_path, retention, expected):
    text = GOOD.replace("[[rule]]", f"[retention]\n{retention}\n\n[[rule]]", 1)
    path = write(tmp_path, text)
    with pytest.raises(PackError) as error:
        load_pack(str(path))
    assert f"{path}:11: {expected}" in str(error.value)
