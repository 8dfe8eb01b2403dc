"""Property: for any bytes at all, parse_message returns a Message or raises
MessageTooComplex, and what it returns is clean enough to put back into a header."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.message import Message, MessageTooComplex, ParseLimits
from tests.message.support import eml, parse

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,  # timing varies on shared machines; the linear-time tests cover speed
    database=None,  # keep the work tree clean
    suppress_health_check=[HealthCheck.too_slow],
)

CORPUS = [
    eml(
        """
        From: Alice Example <alice@example.org>
        To: Bob <bob@example.org>, carol@example.org
        Cc: =?utf-8?q?D=C3=A9_Dan?= <dan@example.org>
        Subject: =?utf-8?q?Caf=C3=A9?= plans
        Date: Mon, 4 Mar 2024 09:00:00 +0000
        Message-ID: <x1@example.org>

        Sure.

        --\x20
        Alice

        On Mon, 4 Mar 2024 at 08:12, Bob <bob@example.org> wrote:
        > Can we meet?
        """
    ),
    eml(
        f"""
        From: alice@example.org
        To: bob@example.org
        Content-Type: multipart/mixed; boundary="mix"

        --mix
        Content-Type: multipart/alternative; boundary="alt"

        --alt
        Content-Type: text/plain; charset=iso-8859-1
        Content-Transfer-Encoding: quoted-printable

        Caf=E9
        --alt
        Content-Type: text/html; charset=utf-8

        <p>Caf&eacute;</p><blockquote>old</blockquote>
        --alt--
        --mix
        Content-Type: application/pdf
        Content-Disposition: attachment; filename*=utf-8''caf%C3%A9.pdf
        Content-Transfer-Encoding: base64

        {base64.b64encode(b"%PDF" * 30).decode()}
        --mix
        Content-Type: message/rfc822

        From: carol@example.org
        Subject: inner

        Forwarded.
        --mix--
        """
    ),
    eml(
        """
        From: alice@example.org
        To: bob@example.org
        Subject: Fwd
        Content-Type: text/plain; charset=utf-8

        FYI

        -----Original Message-----
        From: Bob
        Sent: Monday
        To: Alice
        Subject: hi

        old text
        """
    ),
]

TOKENS = [
    b"\r\n", b"\n", b"\r", b"\x00", b"--", b"--mix", b"--alt--", b"=?utf-8?q?", b"=?x?b?",
    b"?=", b"Content-Type: multipart/mixed; boundary=mix\r\n\r\n",
    b"Content-Type: message/rfc822\r\n\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: x-uuencode\r\n", b"charset=", b"charset=bogus",
    b"\xff", b"\xc3", b"\xe9", b"(", b")", b"\\", b'"', b"<", b">", b"@", b",", b":",
    b";", b" ", b"\t", b"boundary*0=", b"filename*=", b"%", b"begin 644 x\r\n", b"<div>",
    b"<blockquote>", b"> ", b"On Mon, 1 Jan 2024 Bob wrote:", b"\r\n ", b"From: ", b"To: ",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "flip", "repeat", "truncate"]))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "repeat":
            chunk = bytes(data[at : at + draw(st.integers(1, 60))])
            data[at:at] = chunk * draw(st.integers(1, 30))
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


LIMITS = st.sampled_from([None, ParseLimits(max_mime_depth=2, max_parts=3, max_header_bytes=300)])


def check(raw: bytes, limits: ParseLimits | None) -> None:
    try:
        message = parse(raw, envelope_to=["bob@example.org", "Eve@Example.org"], limits=limits)
    except MessageTooComplex:
        return
    assert isinstance(message, Message)
    for address in (message.sender, *message.to, *message.cc, *message.bcc):
        assert not any(ch in address.email for ch in "\r\n\x00<> ")
        assert not any(ch in address.name for ch in "\r\n\x00")
    assert not any(ch in message.subject for ch in "\r\n\x00")
    assert "\x00" not in message.new_text + message.signature + message.quoted_text
    assert all(isinstance(defect, str) and defect for defect in message.defects)
    assert {"bob@example.org", "eve@example.org"} <= {a.email for a in message.recipients}
    for attachment in message.attachments:
        assert attachment.size >= 0
        assert "\n" not in (attachment.filename or "")


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=3000), limits=LIMITS)
def test_arbitrary_bytes(raw: bytes, limits: ParseLimits | None) -> None:
    check(raw, limits)


@PROPERTY_SETTINGS
@given(raw=mutated(), limits=LIMITS)
def test_mutated_real_messages(raw: bytes, limits: ParseLimits | None) -> None:
    check(raw, limits)
