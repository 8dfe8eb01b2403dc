"""Mass mail's Bcc rewrite writes the To and Cc a mail client can read: folded lines, display
names encoded where they are not ASCII, and never a header that could fail the message."""

from __future__ import annotations

from email import message_from_bytes, policy

from gateway.message.model import Address
from gateway.message.rewrite import hide_recipients

RAW = b"From: a@safe.example\r\nTo: x@out.example\r\nCc: y@out.example\r\nSubject: s\r\n\r\nhi\r\n"


def test_colleagues_kept_in_sight_are_folded_and_encoded_and_the_rest_hidden():
    staff = [Address(f"s{i}@safe.example", f"Staff Member {i}") for i in range(12)]
    quoted = Address("zoe.ellis@safe.example", 'Zoë "Z" Ellis, Jr')
    out = hide_recipients(RAW, [], [quoted, *staff])
    header = out.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    assert b"\n" not in header.replace(b"\r\n", b"")  # the message's own line ending only
    parsed = message_from_bytes(out, policy=policy.default)
    assert parsed["To"] == "undisclosed-recipients:;"
    assert [a.display_name for a in parsed["Cc"].addresses][:2] == [quoted.name, "Staff Member 0"]
    assert b"x@out.example" not in out and b"y@out.example" not in out


def test_an_address_a_plain_header_cannot_carry_is_hidden_not_an_error():
    """A non-ASCII local part (which the relay accepts with SMTPUTF8), and a display name too
    long for a header line: the first goes unseen, the second goes without its name."""
    out = hide_recipients(
        RAW,
        [Address("zoë@safe.example", "Zoë")],
        [Address("long@safe.example", "x" * 300), Address("ok@safe.example", "OK")],
    )
    parsed = message_from_bytes(out, policy=policy.default)
    assert parsed["To"] == "undisclosed-recipients:;"
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["long@safe.example", "ok@safe.example"]
    assert "x" * 300 not in out.decode()
