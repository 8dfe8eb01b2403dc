"""When a chat message was sent is kept in its archived bytes (the Date: header `as_rfc822`
writes), where the console reads it back: the archive's own time is when the gateway received
it, which for a message a chat tool held during an outage is months later."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.chat import chat_from_json, sent_at_of


def test_the_sent_time_is_read_back_from_the_archived_message():
    """The reviewer: the console "never [shows] when it was sent (`sent_at`, e.g. 1 July 2026
    23:30)"; what the console shows is read from here."""
    chat = chat_from_json(
        {
            "channel": "whatsapp",
            "conversation": "c-9",
            "message_id": "m-1",
            "sender": "alex.teacher@safe.example",
            "participants": ["sam.minor@home.example"],
            # A body line that looks like a header is not the header.
            "text": "Date: Mon, 07 Dec 2026 17:48:00 +0000\nsee you",
            "sent_at": "2026-07-02T00:30:00.250+02:00",
        }
    )
    assert sent_at_of(chat.as_rfc822()) == datetime(2026, 7, 1, 22, 30, tzinfo=UTC)


def test_a_message_without_a_readable_date_has_no_sent_time():
    assert sent_at_of(b"From: a@b.example\r\n\r\nDate: Mon, 07 Dec 2026 17:48:00 +0000\r\n") is None
    assert sent_at_of(b"Date: not a date\r\n\r\nhi\r\n") is None
    assert sent_at_of(b"") is None
