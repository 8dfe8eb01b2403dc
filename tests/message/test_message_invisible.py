"""Characters that show nothing are left out of the text the checks read and the archive
indexes: "se<zero-width space>cret" looks like "secret" to a child, so it must read as one
word to a check and to the safeguarding lead's search. The bytes as received are archived
unchanged."""

from __future__ import annotations

from gateway.message import parse_chat
from tests.message.support import SENT_AT, parse

HIDDEN = "se\u200bcret, do\u00adnt t\u200cell, fri\u2060day, sat\ufeffurday, sun\u200e\u200fday"


def test_invisible_characters_are_left_out_of_the_text_and_the_subject():
    message = parse(
        "From: alex@safe.example\nTo: bob@example.org\n"
        f"Subject: =?utf-8?q?our_se=E2=80=8Bcret?=\nContent-Type: text/plain; charset=utf-8\n\n"
        f"{HIDDEN}\n"
    )
    assert message.subject == "our secret"
    assert message.new_text == "secret, dont tell, friday, saturday, sunday"


def test_html_entities_for_invisible_characters_are_left_out_too():
    message = parse(
        "From: alex@safe.example\nTo: bob@example.org\nContent-Type: text/html\n\n"
        "<p>our se&#8203;cret, do&shy;nt te&zwj;ll</p>\n"
    )
    assert message.new_text == "our secret, dont tell"


def test_the_joiners_of_emoji_stay():
    """A family, a red heart and a keycap are one emoji each only with their joiners: the
    informal sign-off check, and a reader of the archive, see them as sent."""
    emoji = "\U0001f468\u200d\U0001f469\u200d\U0001f467 \u2764\ufe0f 1\ufe0f\u20e3"
    message = parse(
        "From: alex@safe.example\nTo: bob@example.org\nContent-Type: text/plain; charset=utf-8\n\n"
        f"Thanks {emoji}\n"
    )
    assert message.new_text == f"Thanks {emoji}"


def test_a_chat_message_loses_them_too():
    message = parse_chat(
        channel="teams",
        sender="alex@safe.example",
        participants=["sam@home.example"],
        text=HIDDEN,
        sent_at=SENT_AT,
    )
    assert message.new_text == "secret, dont tell, friday, saturday, sunday"


def test_a_joiner_after_a_space_or_an_apostrophe_is_left_out_too():
    """A review: a zero-width joiner kept after anything but a letter still split a phrase:
    "our <ZWJ>little secret", "it'<ZWJ>s our secret"."""
    message = parse(
        "From: alex@safe.example\nTo: bob@example.org\nContent-Type: text/plain; charset=utf-8\n\n"
        "our \u200dlittle \U000e0041secret, it'\u200ds \ufe0four secret\n"
    )
    assert message.new_text == "our little secret, it's our secret"
