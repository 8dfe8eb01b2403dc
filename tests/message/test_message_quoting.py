"""Separating what the sender wrote now from quoted replies, forwards and signatures."""

from __future__ import annotations

from datetime import UTC, datetime
from textwrap import dedent

import pytest

from gateway.message import parse_chat
from gateway.message.quoting import split_reply
from tests.message.support import parse


def split(text: str) -> tuple[str, str, str]:
    result = split_reply(dedent(text).strip("\n"))
    return result.new, result.signature, result.quoted


def test_gmail_top_post_with_wrapped_attribution() -> None:
    new, signature, quoted = split(
        """
        Yes, 4pm is fine.

        On Mon, 4 Mar 2024 at 08:12, Bob Jones <bob.jones@example.org>
        wrote:
        > Can we meet at 4pm?
        >
        > Bob
        """
    )
    assert new == "Yes, 4pm is fine."
    assert signature == ""
    assert quoted.startswith("On Mon, 4 Mar 2024 at 08:12, Bob Jones")
    assert quoted.endswith("> Bob")


def test_apple_mail_reply() -> None:
    new, _, quoted = split(
        """
        Sounds good!

        Sent from my iPhone

        > On 4 Mar 2024, at 08:12, Bob Jones <bob@example.org> wrote:
        >
        > Can we meet at 4pm?
        """
    )
    assert new == "Sounds good!\n\nSent from my iPhone"
    assert "Can we meet at 4pm?" in quoted


def test_apple_mail_unquoted_attribution() -> None:
    new, _, quoted = split(
        """
        Sounds good!

        On 4 Mar 2024, at 08:12, Bob Jones <bob@example.org> wrote:

        > Can we meet at 4pm?
        """
    )
    assert new == "Sounds good!"
    assert (
        quoted
        == "On 4 Mar 2024, at 08:12, Bob Jones <bob@example.org> wrote:\n> Can we meet at 4pm?"
    )


def test_outlook_original_message() -> None:
    new, _, quoted = split(
        """
        Thanks, will do.

        -----Original Message-----
        From: Bob Jones <bob@example.org>
        Sent: Monday, March 4, 2024 8:12 AM
        To: Alice <alice@example.org>
        Subject: Homework

        Please send it by Friday.
        """
    )
    assert new == "Thanks, will do."
    assert quoted.startswith("-----Original Message-----")
    assert quoted.endswith("Please send it by Friday.")


def test_outlook_header_block_with_rule() -> None:
    new, _, quoted = split(
        """
        Thanks, will do.

        ________________________________
        From: Bob Jones <bob@example.org>
        Sent: 04 March 2024 08:12
        To: Alice <alice@example.org>
        Subject: Homework

        Please send it by Friday.
        """
    )
    assert new == "Thanks, will do."
    assert quoted.startswith("________________________________")


def test_outlook_header_block_without_rule_and_bold_labels() -> None:
    new, _, quoted = split(
        """
        Thanks.

        *From:* Bob Jones <bob@example.org>
        *Sent:* Monday, March 4, 2024 8:12 AM
        *To:* Alice
        *Subject:* Homework

        Please send it by Friday.
        """
    )
    assert new == "Thanks."
    assert quoted.startswith("*From:* Bob Jones")


def test_a_from_line_alone_is_not_a_quote() -> None:
    new, _, quoted = split(
        """
        From: the school office
        Please bring a packed lunch.
        ______________________________
        Notes
        """
    )
    assert quoted == ""
    assert new.startswith("From: the school office")


def test_inline_reply_keeps_the_answers() -> None:
    new, _, quoted = split(
        """
        Hi Bob,

        On Mon, 4 Mar 2024 at 08:12, Bob <bob@example.org> wrote:
        > Are you coming on Tuesday?
        Yes.
        > And can you bring the kit?
        I will bring the kit.

        Alice
        """
    )
    assert new == "Hi Bob,\n\nYes.\nI will bring the kit.\n\nAlice"
    assert quoted == (
        "On Mon, 4 Mar 2024 at 08:12, Bob <bob@example.org> wrote:\n"
        "> Are you coming on Tuesday?\n"
        "> And can you bring the kit?"
    )


def test_unquoted_history_under_a_dated_attribution_is_quoted() -> None:
    new, _, quoted = split(
        """
        Fine by me.

        On Mon, 4 Mar 2024 at 08:12, Bob <bob@example.org> wrote:
        Can we move it to Wednesday?
        """
    )
    assert new == "Fine by me."
    assert quoted.endswith("Can we move it to Wednesday?")


def test_prose_that_looks_like_an_attribution_stays_new() -> None:
    new, _, quoted = split(
        """
        On reflection here is what I wrote:
        the meeting is off.
        """
    )
    assert quoted == ""
    assert new.endswith("the meeting is off.")


@pytest.mark.parametrize(
    "attribution",
    [
        "Am 04.03.2024 um 08:12 schrieb Bob <bob@example.org>:",
        "Le lun. 4 mars 2024 à 08:12, Bob <bob@example.org> a écrit :",
        "El lun, 4 mar 2024 a las 08:12, Bob (<bob@example.org>) escribió:",
        "Ar Llun, 4 Maw 2024 am 08:12, Bob <bob@example.org> ysgrifennodd:",
        "Bob Jones <bob@example.org> wrote:",
    ],
)
def test_other_attribution_styles(attribution: str) -> None:
    result = split_reply(f"Ja.\n\n{attribution}\n> Kommst du?")
    assert result.new == "Ja."
    assert result.quoted == f"{attribution}\n> Kommst du?"


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "-------- Forwarded Message --------",
        "Begin forwarded message:",
        "-----Ursprüngliche Nachricht-----",
    ],
)
def test_forwarded_text_is_quoted(marker: str) -> None:
    new, _, quoted = split(
        f"""
        FYI, see below.

        {marker}
        From: Bob <bob@example.org>
        Date: Mon, 4 Mar 2024 at 08:12
        Subject: Kit list
        To: Alice <alice@example.org>

        Boots, gloves, water.
        """
    )
    assert new == "FYI, see below."
    assert quoted.startswith(marker)
    assert quoted.endswith("Boots, gloves, water.")


def test_signature_split() -> None:
    new, signature, quoted = split(
        """
        See you at 4.

        --\x20
        Alice Example
        Youth Leader

        On Mon, 4 Mar 2024 at 08:12, Bob <bob@example.org> wrote:
        > Can we meet?
        """
    )
    assert new == "See you at 4."
    assert signature == "Alice Example\nYouth Leader"
    assert quoted.startswith("On Mon")


def test_bare_double_dash_signature_and_no_signature() -> None:
    assert split_reply("Hi\n--\nAlice").signature == "Alice"
    assert split_reply("Hi\n---\nAlice").signature == ""
    assert split_reply("Hi -- there").new == "Hi -- there"


def test_signature_inside_quotes_is_not_ours() -> None:
    result = split_reply("Thanks\n\n> Hello\n> -- \n> Bob")
    assert result.signature == ""
    assert result.new == "Thanks"


def test_quoting_through_parse_message() -> None:
    message = parse(
        """
        From: Alice <alice@example.org>
        To: bob@example.org
        Subject: Re: Tuesday

        Yes, 4pm is fine.

        --\x20
        Alice

        On Mon, 4 Mar 2024 at 08:12, Bob <bob@example.org> wrote:
        > Can we meet at 4pm?
        """
    )
    assert message.new_text == "Yes, 4pm is fine."
    assert message.signature == "Alice"
    assert message.quoted_text == (
        "On Mon, 4 Mar 2024 at 08:12, Bob <bob@example.org> wrote:\n> Can we meet at 4pm?"
    )
    assert "Can we meet at 4pm?" in message.all_text


def test_chat_text_is_all_new_text_blockquotes_included() -> None:
    """The reviewer: in chat tools (Teams, Slack, Discord) "a '> ' line is a blockquote the
    staff member wrote and the child sees", and checks that read only new text skipped it.
    For chat, the whole text is new text and `quoted_text` is empty."""
    message = parse_chat(
        channel="teams",
        sender="alex.teacher@safe.example",
        participants=["sam.minor@home.example"],
        text="Hi Sam\r\n> my number is 07700 900123\n\nOn Mon, Bob wrote:\n> see you\n-- \nAlex\n",
        sent_at=datetime(2026, 11, 23, 10, 15, tzinfo=UTC),
    )
    assert message.new_text == (
        "Hi Sam\n> my number is 07700 900123\n\nOn Mon, Bob wrote:\n> see you\n-- \nAlex"
    )
    assert (message.quoted_text, message.signature) == ("", "")
