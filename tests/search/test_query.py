"""The search language (interface.md, "Search query language") parsed into its AST, and every
way a query can be wrong named with its column."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.search.query import (
    FIELDS,
    Address,
    After,
    And,
    Before,
    Flag,
    Not,
    Or,
    QueryError,
    Text,
    Verdict,
    parse,
    text_tokens,
)


def words(*tokens: str, subject: bool = False) -> Text:
    return Text(tuple(tokens), subject_only=subject)


@pytest.mark.parametrize(
    ("query", "ast"),
    [
        ("room", words("room")),
        ("Room", words("room")),
        ('"room 4"', words("room", "4")),
        ('"Room  4"', words("room", "4")),
        # A word with punctuation inside is several tokens, matched adjacent like a phrase.
        ("room-4", words("room", "4")),
        ("well-being", words("well", "being")),
        ("Sam's", words("sam", "s")),
        ("Sam’s", words("sam", "s")),
        ("09:30", words("09", "30")),
        ("café", words("café")),
        ("room 4", And((words("room"), words("4")))),
        ("subject:room", words("room", subject=True)),
        ('subject:"Room change"', words("room", "change", subject=True)),
        ("from:alex.teacher@safe.example", Address("from", "alex.teacher@safe.example", False)),
        ("From:Alex.Teacher@Safe.Example", Address("from", "alex.teacher@safe.example", False)),
        ("to:home.example", Address("to", "home.example", True)),
        ("to:@home.example", Address("to", "home.example", True)),
        ('cc:"priya.shah@parents.example"', Address("cc", "priya.shah@parents.example", False)),
        ("bcc:ms.patel@school.example", Address("bcc", "ms.patel@school.example", False)),
        ("contact:sam.minor@home.example", Address("contact", "sam.minor@home.example", False)),
        ("flag:no_consent", Flag("no_consent")),
        ("flag:Risk_Language", Flag("risk_language")),
        ("verdict:reject", Verdict("reject")),
        ("VERDICT:Deliver", Verdict("deliver")),
        ("after:2026-11-01", After(date(2026, 11, 1))),
        ("before:2026-12-01", Before(date(2026, 12, 1))),
        ("-room", Not(words("room"))),
        ('-"room 4"', Not(words("room", "4"))),
        ("NOT room", Not(words("room"))),
        ("--room", Not(words("room"))),
        ("NOT -room", words("room")),
        ("a OR b", Or((words("a"), words("b")))),
        ("a OR b OR c", Or((words("a"), words("b"), words("c")))),
        ("a AND b", And((words("a"), words("b")))),
        ("or and not", And((words("or"), words("and"), words("not")))),
        ('"OR"', words("or")),
        # OR binds tighter than the implied AND.
        (
            "from:a@x.example OR from:b@x.example flag:no_consent",
            And(
                (
                    Or(
                        (
                            Address("from", "a@x.example", False),
                            Address("from", "b@x.example", False),
                        )
                    ),
                    Flag("no_consent"),
                )
            ),
        ),
        ("a b OR c", And((words("a"), Or((words("b"), words("c")))))),
        ("(a b) OR c", Or((And((words("a"), words("b"))), words("c")))),
        ("-(a OR b) c", And((Not(Or((words("a"), words("b")))), words("c")))),
        ("((a))", words("a")),
        ("a (b c) d", And((words("a"), words("b"), words("c"), words("d")))),
        ("(a OR b) OR c", Or((words("a"), words("b"), words("c")))),
        # A '-' inside a word is text, not negation.
        ("x-ray", words("x", "ray")),
        ('"a"-b', And((words("a"), words("b")))),
        (
            "contact:sam.minor@home.example after:2026-09-01 before:2026-12-20 -verdict:deliver",
            And(
                (
                    Address("contact", "sam.minor@home.example", False),
                    After(date(2026, 9, 1)),
                    Before(date(2026, 12, 20)),
                    Not(Verdict("deliver")),
                )
            ),
        ),
    ],
)
def test_a_query_parses_to_its_ast(query: str, ast: object) -> None:
    assert parse(query) == ast


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("", "the query is empty; give words, phrases or fields to search", 1),
        ("   ", "the query is empty; give words, phrases or fields to search", 1),
        (
            "form:alex@safe.example",
            "unknown field `form:` — did you mean `from:`? To search for the text itself, "
            'quote it: "form:alex@safe.example"',
            1,
        ),
        ("room subjet:trip", "unknown field `subjet:` — did you mean `subject:`?", 6),
        ("flags:no_consent", "unknown field `flags:` — did you mean `flag:`?", 1),
        ("date:2026-11-01", "unknown field `date:` — did you mean `after:` or `before:`?", 1),
        ("sender:x@y.example", "unknown field `sender:` — did you mean `from:`?", 1),
        ("zzz:1", "unknown field `zzz:` (fields: from: to: cc: bcc: contact: subject: flag:", 1),
        ("re: hello", "unknown field `re:`", 1),
        ('say "hello', 'this quote is never closed; add a closing "', 5),
        ("(a OR b", "this '(' is never closed; add a ')'", 1),
        ("a OR b)", "this ')' closes no '('", 7),
        (")", "this ')' closes no '('", 1),
        ("()", "empty brackets: put terms between ( and )", 1),
        ("OR a", "OR needs a term on each side", 1),
        ("a OR", "OR needs a term on each side", 3),
        ("a OR OR b", "OR needs a term on each side", 3),
        ("a AND", "AND needs a term on each side", 3),
        ("(a OR) b", "OR needs a term on each side", 4),
        ("a - b", "'-' must be followed by the term it excludes (no space)", 3),
        ("a NOT", "NOT must be followed by the term it excludes", 3),
        ("from:", "from: needs a value right after the colon (no space)", 1),
        ("from: alex@safe.example", "from: needs a value right after the colon (no space)", 1),
        ('from:"Alex Teacher"', "from: takes an e-mail address or a domain", 6),
        ("to:sam@", "to: takes an e-mail address or a domain", 4),
        ("cc:a@b@c.example", "cc: takes an e-mail address or a domain", 4),
        ("flag:no_consnt", "unknown finding code `no_consnt` — did you mean `no_consent`?", 6),
        ("flag:grooming", "unknown finding code `grooming` (one of: missing_required_cc", 6),
        ("verdict:rejected", "unknown verdict `rejected` — did you mean `reject`?", 9),
        # The console says "Held for office hours": a lead types what the page says.
        ("verdict:held", "unknown verdict `held` — for that, write `verdict:defer`", 9),
        ("verdict:Refused", "unknown verdict `Refused` — for that, write `verdict:reject`", 9),
        ('verdict:"reject"', "verdict: takes a single value, not a quoted phrase", 9),
        ("after:yesterday", "after: takes a date as YYYY-MM-DD, e.g. after:2026-11-23", 7),
        ("before:2026-02-30", "before: takes a date as YYYY-MM-DD", 8),
        ("after:2026-1-5", "after: takes a date as YYYY-MM-DD", 7),
        ("a 😀", "word `😀` has no letters or digits to search for", 3),
        ('"--"', "phrase `--` has no letters or digits to search for", 1),
        ("subject:!!", "subject: `!!` has no letters or digits to search for", 9),
    ],
)
def test_a_bad_query_names_the_reason_and_column(query: str, message: str, column: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.message.startswith(message)
    assert caught.value.column == column
    assert str(caught.value) == f"{caught.value.message} (at column {column})"


def test_every_field_is_documented_in_the_unknown_field_message() -> None:
    with pytest.raises(QueryError) as caught:
        parse("zzz:1")
    assert all(f"{name}:" in caught.value.message for name in FIELDS)


def test_flag_accepts_the_codes_it_is_given() -> None:
    assert parse("flag:site_rule", finding_codes=("site_rule",)) == Flag("site_rule")
    with pytest.raises(QueryError):
        parse("flag:no_consent", finding_codes=("site_rule",))


def test_a_message_whose_check_failed_can_be_found() -> None:
    """A check that fails on a message flags it `check_error` for review (policy/evaluate.py):
    a lead must be able to find those messages too."""
    assert parse("flag:check_error") == Flag("check_error")


def test_the_ast_is_made_of_frozen_values() -> None:
    ast = parse("a OR b")
    assert ast == parse("a OR b") and hash(ast) == hash(parse("a OR b"))
    with pytest.raises(AttributeError):
        ast.items = ()  # type: ignore[misc, union-attr]


def test_tokens_are_letters_and_digits_lower_cased() -> None:
    assert text_tokens("Hauptstraße ΣΟΦΟΣ") == ("hauptstraße", "σοφος")  # as the indexes fold
    assert text_tokens("Re: Sam’s well-being — 09:30, café_bar ÉTÉ") == (
        "re",
        "sam",
        "s",
        "well",
        "being",
        "09",
        "30",
        "café",
        "bar",
        "été",
    )
