"""Broken and hostile input: a valid Message with defects, or MessageTooComplex, nothing else."""

from __future__ import annotations

import time

import pytest

from gateway.message import MessageTooComplex, ParseLimits, parse_chat
from gateway.message import parse as parse_module
from gateway.message.limits import count_delimiters, mime_depth
from gateway.message.text import normalise_newlines
from tests.message.support import SENT_AT, parse


def nested(depth: int, body: bytes = b"x") -> bytes:
    """``depth`` multiparts, each the first part of the one around it."""
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    return b"From: a@example.org\r\n" + opening + b"\r\n" + body + b"\r\n"


def flat(parts: int) -> bytes:
    return (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * parts
        + b"--b--\r\n"
    )


def test_missing_from() -> None:
    message = parse(b"To: bob@example.org\r\n\r\nhello\r\n", envelope_from="a@example.org")
    assert message.sender.email == "a@example.org"
    assert message.defects == ("missing From header",)


def test_empty_input() -> None:
    message = parse(b"", envelope_from="", envelope_to=["bob@example.org"])
    assert message.new_text == ""
    assert message.sender.email == ""
    assert message.bcc[0].email == "bob@example.org"
    assert message.auto_submitted


def test_broken_mime_boundary_keeps_the_text_visible() -> None:
    message = parse(
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=zzz\r\n\r\n"
        b"--yyy\r\nContent-Type: text/plain\r\n\r\nsecret words\r\n--yyy--\r\n"
    )
    assert "secret words" in message.new_text
    assert "broken MIME: start boundary not found" in message.defects


def test_missing_close_boundary() -> None:
    message = parse(
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=zzz\r\n\r\n"
        b"--zzz\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    )
    assert message.new_text == "hello"
    assert message.defects == ("broken MIME: closing boundary missing",)


def test_eight_bit_raw_headers_and_body() -> None:
    message = parse(
        b"From: \xff\xfe <a@example.org>\r\nSubject: \xe9t\xe9 \xc3\r\nX-Odd: \xff\r\n"
        b"\r\nbody \xe9\r\n"
    )
    assert message.sender.email == "a@example.org"
    assert message.subject == "été Ã"  # not UTF-8, so read as Windows-1252
    assert message.new_text == "body é"
    assert "8-bit characters in Subject header" in message.defects


def test_nul_bytes() -> None:
    message = parse(b"From: a@exa\x00mple.org\r\nSubject: a\x00b\r\n\r\nhe\x00llo\r\n")
    assert message.sender.email == "a@example.org"
    assert message.subject == "ab"
    assert message.new_text == "hello"
    assert "NUL bytes in message" in message.defects


def test_bad_base64() -> None:
    message = parse(
        b"From: a@example.org\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29y!!bGQ\r\n"
    )
    assert message.new_text == "hello world"
    assert "invalid base64 (characters)" in message.defects


def test_unknown_and_non_text_charsets() -> None:
    unknown = parse(
        b"From: a@example.org\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nQapla\xe9\r\n"
    )
    assert unknown.new_text == "Qaplaé"
    assert unknown.defects == ("unknown charset 'x-klingon'",)
    # A codec that is not a character set would show checks text no reader sees.
    escape = parse(
        b"From: a@example.org\r\nContent-Type: text/plain; charset=unicode_escape\r\n\r\n"
        b"\\u0041\r\n"
    )
    assert escape.new_text == "\\u0041"
    assert escape.defects == ("unknown charset 'unicode_escape'",)


def test_endless_continuation_lines_under_the_limit() -> None:
    message = parse(b"From: a@example.org\r\nSubject: x\r\n" + b" y\r\n" * 20_000 + b"\r\nhi")
    assert message.subject.startswith("x y y")
    assert message.new_text == "hi"


def test_no_blank_line_after_headers() -> None:
    message = parse(b"From: a@example.org\r\nthis is body text\r\n")
    assert message.new_text == "this is body text"
    assert "no blank line between headers and body" in message.defects


def test_bare_cr_line_ends() -> None:
    message = parse(b"From: a@example.org\rTo: c@example.org\r\rhello\rworld\r")
    assert message.to[0].email == "c@example.org"
    assert message.new_text == "hello\nworld"


def test_thousand_deep_nesting_is_too_complex() -> None:
    with pytest.raises(MessageTooComplex, match="max_mime_depth=100"):
        parse(nested(1000))


def test_nested_forwarded_messages_count_as_depth() -> None:
    raw = b"From: a@example.org\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 1000 + b"x"
    with pytest.raises(MessageTooComplex, match="max_mime_depth"):
        parse(raw)


def test_depth_limit_is_exact() -> None:
    assert parse(nested(100)).new_text == "x"
    with pytest.raises(MessageTooComplex):
        parse(nested(101))
    assert parse(nested(5), limits=ParseLimits(max_mime_depth=5)).new_text == "x"
    with pytest.raises(MessageTooComplex):
        parse(nested(6), limits=ParseLimits(max_mime_depth=5))


def test_many_containers_side_by_side_are_not_deep() -> None:
    # A digest of 150 forwarded mails has 300 container headers but depth 3.
    parts = b"".join(
        b"--d\r\n\r\nContent-Type: multipart/alternative; boundary=a%d\r\nSubject: m%d\r\n\r\n"
        b"--a%d\r\nContent-Type: text/plain\r\n\r\nhi %d\r\n--a%d--\r\n" % (i, i, i, i, i)
        for i in range(150)
    )
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
        + parts
        + b"--d--\r\n"
    )
    message = parse(raw)
    assert message.quoted_text.count("Subject: m") == 150
    assert mime_depth(raw, 100) == 3  # digest, message/rfc822 (by default), alternative


def test_five_thousand_parts_are_too_complex() -> None:
    with pytest.raises(MessageTooComplex, match="5000 MIME parts, more than max_parts=1000"):
        parse(flat(5000))
    assert len(parse(flat(999)).new_text.split()) == 999


def test_dash_lines_that_are_not_delimiters_are_not_parts() -> None:
    patch = b"--- a/file\r\n+++ b/file\r\n-- comment\r\n" * 1200
    message = parse(b"From: a@example.org\r\nSubject: patch\r\n\r\n" + patch)
    assert message.new_text.count("-- comment") == 1200
    assert count_delimiters(patch) == 0


def test_hidden_boundaries_are_caught_while_parsing() -> None:
    # An RFC 2231-split boundary escapes the pre-scan; the parser's part counter stops it.
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary*0=ab; boundary*1=cd"
        b"\r\n\r\n" + b"--abcd\r\n\r\nx\r\n" * 1500 + b"--abcd--\r\n"
    )
    with pytest.raises(MessageTooComplex, match="more than max_parts=1000 MIME parts"):
        parse(raw)


def test_two_hundred_kilobyte_header_is_too_complex() -> None:
    folded = b"From: a@example.org\r\nSubject: x\r\n" + b" continued\r\n" * 20_000 + b"\r\nhi"
    with pytest.raises(MessageTooComplex, match="max_header_bytes=102400"):
        parse(folded)
    one_line = b"From: a@example.org\r\nX-Big: " + b"y" * 200_000 + b"\r\n\r\nhi"
    with pytest.raises(MessageTooComplex, match="max_header_bytes"):
        parse(one_line)
    # A big body is not a big header.
    assert parse(b"From: a@example.org\r\n\r\n" + b"z" * 300_000).new_text.startswith("zzz")


def test_parser_failure_degrades_to_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(raw: bytes, limits: ParseLimits) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(parse_module, "_parse_mime", explode)
    message = parse(
        b"From: Alice <a@example.org>\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody words\r\n"
    )
    assert message.degraded
    assert message.defects == (parse_module.DEGRADED_DEFECT,)
    assert message.sender.name == "Alice"
    assert message.subject == "hi"
    assert message.new_text == "body words"


def test_failure_while_walking_degrades_to_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise LookupError("boom")

    monkeypatch.setattr(parse_module, "_collect", explode)
    message = parse(b"From: a@example.org\r\n\r\nbody words\r\n")
    assert message.degraded
    assert message.new_text == "body words"


def test_any_other_failure_still_gives_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(parse_module, "_read_headers", explode)
    message = parse(b"From: a@example.org\r\n\r\nbody words\r\n", envelope_to=["B@example.org"])
    assert message.degraded
    assert message.defects == ("message could not be parsed (MemoryError); read as text",)
    assert "body words" in message.new_text
    assert message.bcc[0].email == "b@example.org"


@pytest.mark.parametrize(
    "header",
    [
        b"To: " + b"\\" * 100_000,
        b"To: " + b'"a" ' * 25_000,
        b"To: " + b"a," * 50_000,
        b"To: " + b"=?utf-8?q?a?= " * 7_000,
        b"Subject: " + b"=?utf-8?b?w7Y=?= " * 5_000,
        b"Content-Type: text/plain; " + b"a=b; " * 20_000,
    ],
)
def test_pathological_headers_parse_in_linear_time(header: bytes) -> None:
    started = time.perf_counter()
    parse(b"From: a@example.org\r\n" + header + b"\r\n\r\nhi\r\n")
    assert time.perf_counter() - started < 2.0  # policy.default needs 4-36 s for these


def test_chat_message() -> None:
    message = parse_chat(
        channel="WhatsApp",
        sender="+447700900123",
        participants=["+447700900456", "+447700900123", "+447700900456"],
        text="> are you free?\r\nyes, after school",
        sent_at=SENT_AT,
        message_id="<m-1>",
    )
    assert message.channel == "whatsapp"
    assert message.sender.email == "+447700900123"
    assert [a.email for a in message.to] == ["+447700900456"]
    assert message.envelope_to == ("+447700900456",)
    assert message.role_of("+447700900456") == "to"
    # A "> " line in chat is a blockquote the recipient sees, not quoted mail: all new text.
    assert message.new_text == "> are you free?\nyes, after school"
    assert message.quoted_text == ""
    assert message.message_id == "m-1"
    assert message.date == SENT_AT
    assert message.defects == ()


def test_chat_without_sender_or_participants() -> None:
    message = parse_chat(channel="api", sender="", participants=[], text="", sent_at=SENT_AT)
    assert message.defects == ("missing sender", "no participants")


@pytest.mark.parametrize(
    "declaration",
    [b'boundary="%s"' % (b"b" * 2000), b"boundary*0=%s; boundary*1=%s" % (b"b" * 600, b"c" * 600)],
)
def test_overlong_boundary_is_too_complex(declaration: bytes) -> None:
    # The parser compiles each boundary into a regex: 400 kB of boundary took a second.
    raw = b"From: a@example.org\r\nContent-Type: multipart/mixed; " + declaration + b"\r\n\r\nx"
    with pytest.raises(MessageTooComplex, match="max_boundary_length=998"):
        parse(raw)


def test_long_boundary_text_in_a_body_is_harmless() -> None:
    message = parse(b"From: a@example.org\r\n\r\nset boundary=" + b"x" * 5000 + b"\r\n")
    assert message.new_text.startswith("set boundary=xxx")


def test_depth_scan_sees_bare_cr_line_ends() -> None:
    with pytest.raises(MessageTooComplex, match="max_mime_depth"):
        parse(nested(1000).replace(b"\r\n", b"\r"))
    with pytest.raises(MessageTooComplex, match="max_parts"):
        parse(flat(5000).replace(b"\r\n", b"\r"))


def test_hostile_part_parameters_parse_in_linear_time() -> None:
    # compat32's parameter splitter is cubic here (2 s for 64 kB); ours is linear.
    hostile = b'Content-Type: text/plain; name="' + b";" * 200_000 + b'"'
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + (b"--b\r\n" + hostile + b"\r\nContent-Disposition: attachment\r\n\r\nx\r\n") * 3
        + b"--b--\r\n"
    )
    started = time.perf_counter()
    message = parse(raw)
    assert time.perf_counter() - started < 2.0
    assert len(message.attachments) == 3


@pytest.mark.parametrize("extra", ["", "é", "\u2028"])  # ASCII text, and the other path
def test_body_control_characters_are_dropped_but_tab_and_newline_kept(extra: str) -> None:
    controls = "".join(chr(c) for c in [*range(0x20), 0x7F])
    text = normalise_newlines(f"a{controls}b\r\nc\rd{extra}")
    assert text == f"a\t\n\nb\nc\nd{extra}"  # the CR among the controls is a line end
