"""Building messages for the message-package tests from inline RFC 822 text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from textwrap import dedent

from gateway.message import Message, ParseLimits, parse_message

SENT_AT = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)


def eml(text: str) -> bytes:
    """Inline message text (indented in the test) as CRLF bytes, as they arrive by SMTP."""
    body = dedent(text).lstrip("\n")
    return body.replace("\n", "\r\n").encode("utf-8")


def parse(
    raw: bytes | str,
    *,
    envelope_from: str = "sender@example.org",
    envelope_to: Sequence[str] = ("bob@example.org",),
    limits: ParseLimits | None = None,
) -> Message:
    data = eml(raw) if isinstance(raw, str) else raw
    if limits is None:
        return parse_message(
            data, envelope_from=envelope_from, envelope_to=envelope_to, sent_at=SENT_AT
        )
    return parse_message(
        data,
        envelope_from=envelope_from,
        envelope_to=envelope_to,
        sent_at=SENT_AT,
        limits=limits,
    )
