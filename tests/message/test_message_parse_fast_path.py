"""A single-part message's body is not read line by line (`_parse_mime`): the header block is
parsed alone and the rest taken as the body. Whatever the input, the result must be the one
the email package's own `BytesParser` gives for the whole message."""

from __future__ import annotations

import random
from collections.abc import Callable
from email import policy
from email.message import Message as MimePart
from email.parser import BytesParser

import pytest

from gateway.message.limits import MessageTooComplex, ParseLimits
from gateway.message.parse import _parse_mime, _PartCounter

LIMITS = ParseLimits()

FRAGMENTS = [
    b"Subject: hi", b"From: a@b", b"From nobody Mon", b"Content-Type: text/plain",
    b"Content-Type: multipart/mixed; boundary=XX", b"--XX", b"--XX--", b"not a header",
    b"Content-Type: message/rfc822", b"Content-Type: message/delivery-status", b" folded",
    b"\tfold", b"", b"body line", b"\xff\xfe8bit", b"X-A:", b":", b"\x00",
    b"Content-Transfer-Encoding: base64", b"aGVsbG8=", b"Reporting-MTA: dns; x",
]  # fmt: skip
LINE_ENDS = [b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r"]


def _shape(part: MimePart) -> list[object]:
    payload = part.get_payload()
    return [
        part.get_unixfrom(),
        list(part.raw_items()),
        [type(d).__name__ for d in part.defects],
        part.preamble,
        part.epilogue,
        [_shape(p) for p in payload] if isinstance(payload, list) else payload,
    ]


def _outcome(parse: Callable[[bytes], MimePart], raw: bytes) -> object:
    try:
        return _shape(parse(raw))
    except MessageTooComplex as exc:
        return ("too complex", str(exc))


def _whole(raw: bytes) -> MimePart:
    factory = _PartCounter(LIMITS.max_parts, LIMITS.max_boundary_length)
    return BytesParser(_class=factory, policy=policy.compat32).parsebytes(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\r\n\r\nbody\r\nline 2\r\n",
        b"Subject: a\n\nbare LF\nno final line end",
        # A CRLF is one line end: "a\r\nb" holds no blank line, and the parse must not find one.
        b"Content-Type: text/plain\r\nSubject: x\r\r\nbody\r\n",
        b"Subject: a\r\nnot a header\r\n\r\nbody\r\n",  # no separator: the parser's defect
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\r\none\r\n--XX--\r\n",
        b"Subject: only headers\r\n",
        b"",
    ],
)
def test_same_result_as_the_whole_parse(raw: bytes) -> None:
    assert _outcome(lambda r: _parse_mime(r, LIMITS), raw) == _outcome(_whole, raw)


def test_same_result_on_generated_mixes_of_headers_line_ends_and_mime() -> None:
    rng = random.Random(5)
    for _ in range(20_000):
        raw = b"".join(
            rng.choice(FRAGMENTS) + rng.choice(LINE_ENDS) for _ in range(rng.randrange(14))
        )
        assert _outcome(lambda r: _parse_mime(r, LIMITS), raw) == _outcome(_whole, raw), raw
