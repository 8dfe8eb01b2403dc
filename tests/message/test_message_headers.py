"""Envelope and header fields: who sent it, who receives it and in which role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.message import Address, normalise_email, parse_message
from tests.message.support import SENT_AT, parse

BASIC = """
    From: Alice Example <alice@example.org>
    To: Bob <bob@example.org>, carol@example.org
    Cc: Dan <dan@example.org>
    Subject: Trip
    Date: Mon, 4 Mar 2024 09:00:00 +0100
    Message-ID: <trip-1@example.org>

    See you there.
"""


def test_recipients_by_role_and_envelope_only_recipients_are_bcc() -> None:
    message = parse(
        BASIC,
        envelope_from="alice@example.org",
        envelope_to=["bob@example.org", "dan@example.org", "eve@example.org"],
    )
    assert message.to == (
        Address("bob@example.org", "Bob"),
        Address("carol@example.org", ""),
    )
    assert message.cc == (Address("dan@example.org", "Dan"),)
    assert message.bcc == (Address("eve@example.org", ""),)
    assert message.role_of("bob@example.org") == "to"
    assert message.role_of("DAN@example.org") == "cc"
    assert message.role_of("<eve@example.org>") == "bcc"
    assert message.role_of("mallory@example.org") is None
    assert message.role_of("") is None
    assert [a.email for a in message.recipients] == [
        "bob@example.org",
        "carol@example.org",
        "dan@example.org",
        "eve@example.org",
    ]


def test_bcc_header_comes_before_envelope_only_recipients() -> None:
    message = parse(
        """
        From: alice@example.org
        To: bob@example.org
        Bcc: Frank <frank@example.org>

        hi
        """,
        envelope_to=["eve@example.org", "frank@example.org", "bob@example.org"],
    )
    assert message.bcc == (Address("frank@example.org", "Frank"), Address("eve@example.org"))


def test_recipients_dedupe_by_email_first_role_wins() -> None:
    message = parse(
        """
        From: alice@example.org
        To: Bob <BOB@example.org>, bob@example.org
        Cc: bob@example.org, carol@example.org
        Bcc: carol@example.org

        hi
        """,
        envelope_to=["bob@example.org"],
    )
    assert message.to == (Address("bob@example.org", "Bob"),)
    assert message.cc == (Address("bob@example.org"), Address("carol@example.org"))
    assert [a.email for a in message.recipients] == ["bob@example.org", "carol@example.org"]
    assert message.role_of("carol@example.org") == "cc"


def test_envelope_is_normalised_and_deduplicated() -> None:
    message = parse(
        BASIC,
        envelope_from=" <Alice@Example.ORG> ",
        envelope_to=["<Bob@Example.org>", "bob@example.org", " EVE@example.org\r\n", ""],
    )
    assert message.envelope_from == "alice@example.org"
    assert message.envelope_to == ("bob@example.org", "eve@example.org")


def test_header_fields() -> None:
    message = parse(BASIC)
    assert message.channel == "email"
    assert message.sender == Address("alice@example.org", "Alice Example")
    assert message.subject == "Trip"
    assert message.message_id == "trip-1@example.org"
    assert message.date == datetime(2024, 3, 4, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    assert message.sent_at == SENT_AT
    assert message.defects == ()
    assert not message.auto_submitted
    assert not message.degraded


def test_normalise_email() -> None:
    assert normalise_email(" <Bob@Example.ORG> ") == "bob@example.org"
    assert normalise_email("<>") == ""
    assert normalise_email("bob@exa\r\nmple.org") == "bob@example.org"
    assert normalise_email("Ze\u0301lie@example.org") == "z\u00e9lie@example.org"  # NFC


def test_encoded_display_names_and_subject_are_decoded() -> None:
    message = parse(
        """
        From: =?utf-8?q?Zo=C3=AB_Adams?= <zoe@example.org>
        To: =?iso-8859-1?q?Ren=E9?= <rene@example.org>
        Subject: =?utf-8?b?Q2Fmw6k=?= =?utf-8?b?IHRvbW9ycm93?=

        hi
        """
    )
    assert message.sender == Address("zoe@example.org", "Zoë Adams")
    assert message.to == (Address("rene@example.org", "René"),)
    assert message.subject == "Café tomorrow"


def test_crlf_smuggled_into_names_and_subject_is_removed() -> None:
    # An encoded word can carry CR/LF that a naive decoder would put back into a header.
    message = parse(
        """
        From: =?utf-8?q?Bob=0D=0ABcc=3A_victim=40example.org?= <bob@example.org>
        To: bob@example.org
        Subject: =?utf-8?q?hello=0D=0AX-Injected:_yes?=

        hi
        """
    )
    assert message.sender == Address("bob@example.org", "Bob Bcc: victim@example.org")
    assert message.subject == "helloX-Injected: yes"
    assert all("\r" not in a.name and "\n" not in a.name for a in message.recipients)


def test_folded_headers_are_unfolded() -> None:
    message = parse(
        """
        From: alice@example.org
        To: Bob <bob@example.org>,
         Carol <carol@example.org>
        Subject: a long
         subject

        hi
        """
    )
    assert [a.email for a in message.to] == ["bob@example.org", "carol@example.org"]
    assert message.subject == "a long subject"


def test_groups_are_flattened_and_empty_groups_ignored() -> None:
    message = parse(
        """
        From: alice@example.org
        To: Team: bob@example.org, Carol <carol@example.org>;
        Cc: undisclosed-recipients:;

        hi
        """
    )
    assert [a.email for a in message.to] == ["bob@example.org", "carol@example.org"]
    assert message.cc == ()
    assert message.defects == ()


def test_malformed_addresses_are_dropped_with_a_defect() -> None:
    message = parse(
        """
        From: alice@example.org
        To: bob@example.org, just-a-name, <broken@>, carol@example.org

        hi
        """
    )
    assert [a.email for a in message.to] == ["bob@example.org", "carol@example.org"]
    assert "malformed address in To header: 'just-a-name'" in message.defects
    assert "malformed address in To header: '<broken@>'" in message.defects


def test_pathological_address_header_does_not_crash() -> None:
    # getaddresses recurses on nested comments; the parse falls back to bare addresses.
    message = parse(
        b"From: alice@example.org\r\nTo: bob@example.org " + b"(" * 5000 + b"\r\n\r\nhi\r\n"
    )
    assert message.to == (Address("bob@example.org"),)
    assert "unparseable To header; bare addresses taken from it" in message.defects


def test_sender_falls_back_to_envelope_when_from_is_missing() -> None:
    message = parse("To: bob@example.org\n\nhi\n", envelope_from="<Alice@Example.org>")
    assert message.sender == Address("alice@example.org")
    assert "missing From header" in message.defects


def test_from_without_address_and_multiple_froms_are_defects() -> None:
    no_address = parse("From: Just A Name\nTo: bob@example.org\n\nhi\n")
    assert no_address.sender == Address("sender@example.org")
    assert "no valid address in From header" in no_address.defects
    two = parse("From: a@example.org\nFrom: b@example.org\nTo: bob@example.org\n\nhi\n")
    assert two.sender == Address("a@example.org")
    assert "more than one From header" in two.defects


@pytest.mark.parametrize(
    ("headers", "envelope_from", "expected"),
    [
        ("", "alice@example.org", False),
        ("", "", True),  # null sender
        ("", "<>", True),
        ("Auto-Submitted: auto-replied\n", "alice@example.org", True),
        ("Auto-Submitted: auto-generated; owner-email=x@example.org\n", "a@example.org", True),
        ("Auto-Submitted: no\n", "alice@example.org", False),
        ("Auto-Submitted: No (comment)\n", "alice@example.org", True),
        ("Precedence: bulk\n", "alice@example.org", True),
        ("Precedence: List\n", "alice@example.org", True),
        ("Precedence: junk\n", "alice@example.org", True),
        ("Precedence: first-class\n", "alice@example.org", False),
    ],
)
def test_auto_submitted(headers: str, envelope_from: str, expected: bool) -> None:
    message = parse(
        f"From: alice@example.org\nTo: bob@example.org\n{headers}\nhi\n",
        envelope_from=envelope_from,
    )
    assert message.auto_submitted is expected


def test_dates() -> None:
    minus_zero = parse("From: a@example.org\nDate: Mon, 4 Mar 2024 09:00:00 -0000\n\nhi\n")
    assert minus_zero.date == datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    bad = parse("From: a@example.org\nDate: the day after tomorrow\n\nhi\n")
    assert bad.date is None
    assert "unparseable Date header" in bad.defects
    missing = parse("From: a@example.org\n\nhi\n")
    assert missing.date is None
    assert missing.defects == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@example.org>", "abc@example.org"),
        ("  <abc@example.org> (comment)", "abc@example.org"),
        ("abc@example.org", "abc@example.org"),
        ("", None),
    ],
)
def test_message_id(value: str, expected: str | None) -> None:
    assert parse(f"From: a@example.org\nMessage-ID: {value}\n\nhi\n").message_id == expected


def test_eight_bit_headers_are_decoded_as_utf8_or_windows_1252() -> None:
    raw = (
        "From: Zoë <zoe@example.org>\r\nTo: bob@example.org\r\nSubject: café\r\n".encode()
        + b"Cc: Ren\xe9 <rene@example.org>\r\n\r\nhi\r\n"
    )
    message = parse(raw)
    assert message.sender == Address("zoe@example.org", "Zoë")
    assert message.subject == "café"
    assert message.cc == (Address("rene@example.org", "René"),)
    assert "8-bit characters in From header" in message.defects
    assert "8-bit characters in Cc header" in message.defects


def test_caller_errors_are_not_swallowed() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_message(b"", envelope_from="", envelope_to=[], sent_at=datetime(2024, 1, 1))
    with pytest.raises(TypeError, match="envelope_to"):
        parse_message(b"", envelope_from="", envelope_to="bob@example.org", sent_at=SENT_AT)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", False),
        ("In-Reply-To: <q-1@example.org>\n    ", True),
        ("References: <q-0@example.org> <q-1@example.org>\n    ", True),
    ],
)
def test_a_reply_is_known_by_in_reply_to_or_references(header: str, expected: bool) -> None:
    message = parse(BASIC.replace("Subject: Trip\n    ", f"Subject: Trip\n    {header}"))
    assert message.is_reply is expected
