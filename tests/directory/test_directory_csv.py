"""Reading staff.csv and contacts.csv: every bad row reported by line and column."""

from __future__ import annotations

import pickle
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.directory.csvfile import (
    DirectoryFileError,
    ImportDiff,
    RowError,
    diff_contacts,
    diff_staff,
    parse_contacts_csv,
    parse_staff_csv,
    read_contacts_csv,
    read_staff_csv,
)
from gateway.directory.model import Contact, StaffMember

TODAY = date(2026, 11, 23)
STAFF_HEADER = "email,name,safeguarding_level,training_expires,dbs_checked,dsl\n"
CONTACTS_HEADER = "email,name,date_of_birth,category,guardian_emails,school_emails,consent\n"
SAM = (
    "sam.minor@home.example,Sam Taylor,2011-05-14,participant,"
    "priya.shah@parents.example,mr.okafor@school.example,yes\n"
)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def staff_errors(tmp_path: Path, text: str | bytes) -> tuple[RowError, ...]:
    with pytest.raises(DirectoryFileError) as caught:
        read_staff_csv(write(tmp_path, "staff.csv", text))
    return caught.value.errors


def contact_errors(tmp_path: Path, text: str | bytes) -> tuple[RowError, ...]:
    with pytest.raises(DirectoryFileError) as caught:
        read_contacts_csv(write(tmp_path, "contacts.csv", text), today=TODAY)
    return caught.value.errors


def where(errors: tuple[RowError, ...]) -> list[tuple[int, str | None]]:
    return [(e.line, e.column) for e in errors]


# ---------------------------------------------------------------- good files


def test_a_staff_file_gives_one_member_per_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "staff.csv",
        STAFF_HEADER
        + "dsl@safe.example,Dana Lee,4,2028-06-30,yes,yes\n"
        + "Jamie.Brooks@Safe.example,Jamie Brooks,0,,no,\n",
    )
    assert read_staff_csv(path) == (
        StaffMember("dsl@safe.example", "Dana Lee", 4, date(2028, 6, 30), True, True),
        StaffMember("jamie.brooks@safe.example", "Jamie Brooks", 0, None, False, False),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True),
        ("Y", True),
        ("TRUE", True),
        ("1", True),
        (" Yes ", True),
        ("no", False),
        ("N", False),
        ("false", False),
        ("0", False),
        ("", False),
    ],
)
def test_yes_no_accepts_the_usual_spellings(tmp_path: Path, text: str, expected: bool) -> None:
    path = write(tmp_path, "staff.csv", STAFF_HEADER + f"a@safe.example,A,1,,{text},{text}\n")
    (member,) = read_staff_csv(path)
    assert member.dbs_checked is expected and member.dsl is expected


def test_a_contacts_file_gives_one_contact_per_row(tmp_path: Path) -> None:
    (sam,) = read_contacts_csv(write(tmp_path, "c.csv", CONTACTS_HEADER + SAM), today=TODAY)
    assert sam == Contact(
        emails=("sam.minor@home.example",),
        name="Sam Taylor",
        date_of_birth=date(2011, 5, 14),
        category="participant",
        guardian_emails=("priya.shah@parents.example",),
        school_emails=("mr.okafor@school.example",),
        consent=True,
    )


def test_a_contact_may_have_several_addresses(tmp_path: Path) -> None:
    row = (
        "Mia.Jones@home.example; mia.jones@pupils.school.example ;,Mia Jones,2010-04-08,"
        "participant,dave@home.example;;Sue@Home.example;dave@home.example,,no\n"
    )
    (mia,) = read_contacts_csv(write(tmp_path, "c.csv", CONTACTS_HEADER + row), today=TODAY)
    assert mia.emails == ("mia.jones@home.example", "mia.jones@pupils.school.example")
    assert mia.email == "mia.jones@home.example"
    # Blank items are ignored and a repeated guardian is listed once.
    assert mia.guardian_emails == ("dave@home.example", "sue@home.example")
    assert mia.school_emails == ()
    assert mia.consent is False


def test_category_is_lower_cased_with_spaces_as_underscores(tmp_path: Path) -> None:
    row = "leo@home.example,Leo Bennett,2009-01-15,Work  Experience,,,yes\n"
    (leo,) = read_contacts_csv(write(tmp_path, "c.csv", CONTACTS_HEADER + row), today=TODAY)
    assert leo.category == "work_experience"


def test_a_header_with_bom_odd_case_spaces_and_extra_columns_is_read(tmp_path: Path) -> None:
    text = (
        "\ufeffNotes, EMAIL ,Name,Safeguarding Level,TRAINING_EXPIRES,dbs-checked,DSL\r\n"
        '"likes chess, plays piano",alex.teacher@safe.example,Alex Teacher,2,2027-09-01,Y,N\r\n'
    )
    (alex,) = read_staff_csv(write(tmp_path, "staff.csv", text))
    assert alex == StaffMember(
        "alex.teacher@safe.example", "Alex Teacher", 2, date(2027, 9, 1), True, False
    )


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    text = (
        STAFF_HEADER
        + "\n"
        + "a@safe.example,A,1,,no,no\n"
        + "   \n,,,,,\n"
        + "b@x.example,B,7,,,\n"
    )
    errors = staff_errors(tmp_path, text)
    assert where(errors) == [(6, "safeguarding_level")]


def test_the_file_may_be_given_as_text_or_bytes() -> None:
    text = STAFF_HEADER + "a@safe.example,A,1,,no,no\n"
    assert parse_staff_csv(text) == parse_staff_csv(("\ufeff" + text).encode())
    assert parse_contacts_csv(CONTACTS_HEADER + SAM, today=TODAY)[0].name == "Sam Taylor"


def test_an_address_at_a_test_domain_is_accepted(tmp_path: Path) -> None:
    text = STAFF_HEADER + "a@safe.example,A,1,,,\nb@lab.test,B,1,,,\n"
    assert [m.email for m in read_staff_csv(write(tmp_path, "s.csv", text))] == [
        "a@safe.example",
        "b@lab.test",
    ]


# ---------------------------------------------------------------- bad rows


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("a@safe.example,A,x,,no,no", "safeguarding_level", "'x' is not a level"),
        ("a@safe.example,A,5,,no,no", "safeguarding_level", "'5' is not a level"),
        ("a@safe.example,A,-1,,no,no", "safeguarding_level", "'-1' is not a level"),
        ("a@safe.example,A,2.0,,no,no", "safeguarding_level", "'2.0' is not a level"),
        ("a@safe.example,A,,,no,no", "safeguarding_level", "safeguarding_level is empty"),
        (
            "a@safe.example,A,2,2027-13-01,no,no",
            "training_expires",
            "training_expires '2027-13-01' is not a date (expected YYYY-MM-DD)",
        ),
        ("a@safe.example,A,2,01/09/2027,no,no", "training_expires", "is not a date"),
        ("a@safe.example,A,2,,maybe,no", "dbs_checked", "dbs_checked 'maybe' is not yes or no"),
        ("a@safe.example,A,2,,no,sure", "dsl", "dsl 'sure' is not yes or no"),
        ("not-an-address,A,2,,no,no", "email", "email 'not-an-address' is not a valid address"),
        ("a@localhost,A,2,,no,no", "email", "is not a valid address"),
        ("Dana Lee <dsl@safe.example>,A,2,,no,no", "email", "is not a valid address"),
        (",A,2,,no,no", "email", "email is empty"),
        ("a@safe.example,,2,,no,no", "name", "name is empty"),
        ("a@safe.example,   ,2,,no,no", "name", "name is empty"),
        ('a@safe.example,"Dana\nLee",2,,no,no', "name", "line break"),
    ],
)
def test_a_bad_staff_row_is_reported_by_line_and_column(
    tmp_path: Path, row: str, column: str, reason: str
) -> None:
    text = STAFF_HEADER + "ok@safe.example,Fine,1,,no,no\n" + row + "\n"
    (error,) = staff_errors(tmp_path, text)
    assert (error.line, error.column) == (3, column)
    assert reason in error.reason


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        (
            "s@home.example,S,2009-13-01,participant,,,yes",
            "date_of_birth",
            "date_of_birth '2009-13-01' is not a date (expected YYYY-MM-DD)",
        ),
        ("s@home.example,S,2009-02-29,participant,,,yes", "date_of_birth", "is not a date"),
        ("s@home.example,S,20090101,participant,,,yes", "date_of_birth", "is not a date"),
        ("s@home.example,S,,participant,,,yes", "date_of_birth", "date_of_birth is empty"),
        ("s@home.example,S,2026-11-24,participant,,,yes", "date_of_birth", "in the future"),
        ("s@home.example,S,2010-01-01,,,,yes", "category", "category is empty"),
        ("s@home.example,S,2010-01-01,year 10 (x),,,yes", "category", "letters, digits"),
        ("s@home.example,S,2010-01-01,participant,,,perhaps", "consent", "not yes or no"),
        ("s@home.example,,2010-01-01,participant,,,yes", "name", "name is empty"),
        (";,S,2010-01-01,participant,,,yes", "email", "email is empty"),
        ("s@home.example;bad,S,2010-01-01,participant,,,yes", "email", "'bad' is not a valid"),
        (
            "s@home.example,S,2010-01-01,participant,mum@@home.example,,yes",
            "guardian_emails",
            "guardian_emails 'mum@@home.example' is not a valid address",
        ),
        (
            's@home.example,S,2010-01-01,participant,"mum@home.example, dad@home.example",,yes',
            "guardian_emails",
            "separate several addresses with ';'",
        ),
        (
            "s@home.example,S,2010-01-01,participant,,head@school,yes",
            "school_emails",
            "is not a valid address",
        ),
        (
            "s@home.example;s2@home.example,S,2010-01-01,participant,S2@home.example,,yes",
            "guardian_emails",
            "lists the contact's own address 's2@home.example'",
        ),
        (
            "s@home.example,S,2010-01-01,participant,,s@home.example,yes",
            "school_emails",
            "lists the contact's own address",
        ),
    ],
)
def test_a_bad_contact_row_is_reported_by_line_and_column(
    tmp_path: Path, row: str, column: str, reason: str
) -> None:
    text = CONTACTS_HEADER + SAM + row + "\n"
    (error,) = contact_errors(tmp_path, text)
    assert (error.line, error.column) == (3, column)
    assert reason in error.reason


def test_a_date_of_birth_today_is_not_in_the_future(tmp_path: Path) -> None:
    row = "baby@home.example,Baby,2026-11-23,participant,,,no\n"
    (baby,) = read_contacts_csv(write(tmp_path, "c.csv", CONTACTS_HEADER + row), today=TODAY)
    assert baby.date_of_birth == TODAY


def test_a_duplicate_staff_address_names_the_earlier_line(tmp_path: Path) -> None:
    text = STAFF_HEADER + "a@safe.example,A,1,,,\nb@safe.example,B,1,,,\nA@Safe.example,C,1,,,\n"
    (error,) = staff_errors(tmp_path, text)
    assert (error.line, error.column) == (4, "email")
    assert error.reason == "email 'a@safe.example' is already listed on line 2"


def test_a_duplicate_contact_address_counts_second_addresses(tmp_path: Path) -> None:
    text = (
        CONTACTS_HEADER
        + "mia@home.example;mia@pupils.school.example,Mia,2010-04-08,participant,,,yes\n"
        + "other@home.example;MIA@pupils.school.example,Other,2010-04-08,participant,,,yes\n"
    )
    (error,) = contact_errors(tmp_path, text)
    assert (error.line, error.column) == (3, "email")
    assert "'mia@pupils.school.example' is already listed on line 2" in error.reason


def test_a_guardian_may_also_be_a_contact(tmp_path: Path) -> None:
    text = (
        CONTACTS_HEADER
        + "tom@mail.example,Tom Harris,1985-04-02,volunteer,,,yes\n"
        + "kid@home.example,Kid Harris,2012-01-01,participant,tom@mail.example,,yes\n"
    )
    contacts = read_contacts_csv(write(tmp_path, "c.csv", text), today=TODAY)
    assert [c.name for c in contacts] == ["Tom Harris", "Kid Harris"]


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    text = "email,name,safeguarding_level,dbs_checked\na@safe.example,A,1,yes\n"
    errors = staff_errors(tmp_path, text)
    assert where(errors) == [(1, "training_expires"), (1, "dsl")]
    assert errors[0].reason == "missing required column 'training_expires'"


def test_a_column_given_twice_is_an_error(tmp_path: Path) -> None:
    errors = staff_errors(tmp_path, STAFF_HEADER.strip() + ",Email\n")
    assert where(errors) == [(1, "email")]


def test_every_bad_row_is_reported_and_nothing_is_returned(tmp_path: Path) -> None:
    text = (
        STAFF_HEADER
        + "good@safe.example,Good,2,2027-01-01,yes,no\n"
        + "bad@safe.example,,9,tomorrow,yes,no\n"
        + "good2@safe.example,Good Two,2,,yes,no\n"
        + "worse,W,1,,x,no\n"
    )
    errors = staff_errors(tmp_path, text)
    assert where(errors) == [
        (3, "name"),
        (3, "safeguarding_level"),
        (3, "training_expires"),
        (5, "email"),
        (5, "dbs_checked"),
    ]


def test_a_multi_line_quoted_field_keeps_line_numbers_right(tmp_path: Path) -> None:
    text = (
        "email,name,safeguarding_level,training_expires,dbs_checked,dsl,notes\n"
        'a@safe.example,A,1,,no,no,"first line\nsecond line\nthird line"\n'
        "b@safe.example,B,1,,no,maybe,\n"
    )
    (error,) = staff_errors(tmp_path, text)
    assert (error.line, error.column) == (5, "dsl")


def test_a_bad_row_starting_after_a_multi_line_field_reports_its_first_line(
    tmp_path: Path,
) -> None:
    text = (
        CONTACTS_HEADER.strip()
        + ",notes\n"
        + SAM.strip()
        + ',"a\r\nb"\r\n'
        + ('"bad\naddress",S,2010-01-01,participant,,,yes,\n')
    )
    (error,) = contact_errors(tmp_path, text)
    assert (error.line, error.column) == (4, "email")
    assert "'bad\\naddress'" in error.reason


def test_an_unclosed_quote_is_reported_where_it_starts(tmp_path: Path) -> None:
    text = STAFF_HEADER + "a@safe.example,A,1,,no,no\n" + 'b@safe.example,"B,1,,no,no\nc,d\n'
    (error,) = staff_errors(tmp_path, text)
    assert (error.line, error.column) == (3, None)
    assert "never closed" in error.reason


def test_a_file_that_is_not_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    data = (STAFF_HEADER + "a@safe.example,A,1,,no,no\nb@safe.example,Ren").encode() + (
        b"\xe9e,1,,no,no\n"
    )
    (error,) = staff_errors(tmp_path, data)
    assert error.line == 3
    assert "not UTF-8" in error.reason


def test_an_empty_file_asks_for_a_header(tmp_path: Path) -> None:
    (error,) = staff_errors(tmp_path, "\n\n")
    assert error.line == 1 and "header" in error.reason


def test_a_missing_file_is_a_directory_file_error(tmp_path: Path) -> None:
    with pytest.raises(DirectoryFileError) as caught:
        read_staff_csv(tmp_path / "nope.csv")
    assert caught.value.errors[0].line == 0
    assert str(caught.value).startswith(f"{tmp_path / 'nope.csv'}: file: cannot read the file")


def test_the_error_message_is_one_line_naming_file_line_column_and_the_rest(
    tmp_path: Path,
) -> None:
    text = (
        CONTACTS_HEADER
        + 's@home.example,"Sam\nTaylor",2009-13-01,participant,,,yes\n'
        + "t@home.example,T,2010-01-01,participant,,,maybe\n"
    )
    path = write(tmp_path, "contacts.csv", text)
    with pytest.raises(DirectoryFileError) as caught:
        read_contacts_csv(path, today=TODAY)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.path == str(path)
    assert str(error) == (
        f"{path}: line 2, column name: name 'Sam\\nTaylor' contains a line break or control "
        "character (and 2 more errors)"
    )
    assert "\n" not in str(error)
    assert len(error.lines()) == 3
    assert error.lines()[1] == (
        f"{path}: line 2, column date_of_birth: "
        "date_of_birth '2009-13-01' is not a date (expected YYYY-MM-DD)"
    )


def test_a_single_error_message_has_no_count(tmp_path: Path) -> None:
    path = write(tmp_path, "staff.csv", STAFF_HEADER + "a@safe.example,A,9,,no,no\n")
    with pytest.raises(DirectoryFileError, match=r"column safeguarding_level: .*\(expected") as c:
        read_staff_csv(path)
    assert "more error" not in str(c.value)


def test_a_long_value_is_shortened_in_the_message(tmp_path: Path) -> None:
    (error,) = staff_errors(tmp_path, STAFF_HEADER + f"a@safe.example,A,{'9' * 200},,no,no\n")
    assert len(error.reason) < 150


def test_the_error_survives_pickling() -> None:
    error = DirectoryFileError("staff.csv", [RowError(3, "dsl", "dsl 'x' is not yes or no")])
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.errors, str(copy)) == (error.path, error.errors, str(error))


# ---------------------------------------------------------------- diffs


def test_a_staff_diff_reports_added_changed_and_removed() -> None:
    dana = StaffMember("dsl@safe.example", "Dana Lee", 4, date(2028, 6, 30), True, True)
    alex = StaffMember("alex@safe.example", "Alex Teacher", 2, date(2027, 9, 1), True, False)
    chris = StaffMember("chris@safe.example", "Chris Patel", 2, date(2025, 6, 30), True, False)
    robin = StaffMember("robin@safe.example", "Robin Walsh", 1, None, True, False)
    renewed = StaffMember("chris@safe.example", "Chris Patel", 2, date(2028, 1, 1), True, False)
    diff = diff_staff([dana, alex, chris], [dana, renewed, robin])
    assert diff == ImportDiff(
        added=("robin@safe.example",),
        changed=("chris@safe.example",),
        removed=("alex@safe.example",),
        unchanged=1,
    )
    assert diff.has_changes
    assert diff.summary() == "1 added, 1 changed, 1 removed, 1 unchanged"


def test_a_contact_diff_is_keyed_by_primary_address() -> None:
    sam = Contact(("sam@home.example",), "Sam", date(2011, 5, 14), "participant")
    sam_with_school = Contact(
        ("sam@home.example", "sam@pupils.school.example"), "Sam", date(2011, 5, 14), "participant"
    )
    mia = Contact(("mia@home.example",), "Mia", date(2010, 4, 8), "participant")
    assert diff_contacts([sam, mia], [sam_with_school, mia]) == ImportDiff(
        (), ("sam@home.example",), (), 1
    )
    assert diff_contacts([], [sam]) == ImportDiff(("sam@home.example",), (), (), 0)
    assert diff_contacts([sam], []) == ImportDiff((), (), ("sam@home.example",), 0)
    unchanged = diff_contacts([sam], [sam])
    assert not unchanged.has_changes and unchanged.unchanged == 1


# ---------------------------------------------------------------- never a traceback

_CSV_PIECES = st.sampled_from(
    [
        ",",
        ";",
        '"',
        "\n",
        "\r\n",
        "\r",
        " ",
        "\x00",
        "\ufeff",
        "yes",
        "2010-02-29",
        "9",
        "@",
        "a@b.example",
        "é",
        "email",
        "name",
    ]
)


@settings(max_examples=300, database=None, deadline=None)
@given(
    header=st.sampled_from([STAFF_HEADER, CONTACTS_HEADER, ""]),
    body=st.lists(st.one_of(_CSV_PIECES, st.text(max_size=5))).map("".join),
    raw=st.binary(max_size=20),
)
def test_any_input_gives_rows_or_a_directory_file_error(header: str, body: str, raw: bytes) -> None:
    for data in (header + body, (header + body).encode() + raw):
        for parse in (parse_staff_csv, lambda d: parse_contacts_csv(d, today=TODAY)):
            try:
                parse(data)
            except DirectoryFileError as error:
                assert error.errors and "\n" not in str(error)
