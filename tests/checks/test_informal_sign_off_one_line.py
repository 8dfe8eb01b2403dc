"""A one-line mail signs off at the end of its one line. A review: "Hi both, lovely to meet
you. Love Jamie xx" was flagged for "xx" only, and "... Friday. Love, Jamie" and "... Love from
Alex" passed, while the same "Love" on a line of its own was caught.

Teens in AI: “Emails should be signed off in a professional manner”; Thread and Press: “Emails
and contact will be signed off in an an appropriate and formal manner” (its reading names
'love'). The sign-off is the message's last words wherever the line breaks fall: "Love, NAME"
ending the last line is read as "Love" above a name is. "Love" in the prose is not a sign-off.
"""

from __future__ import annotations

import pytest

from gateway.checks import informal_sign_off
from tests.checks.conftest import make_message, make_rule, run


def _words(text: str, sender_name: str = "Jamie Reid") -> list[str]:
    message = make_message(text, sender="jamie.reid@youth.example", sender_name=sender_name, cc=())
    found = run(informal_sign_off, message, make_rule(informal_sign_off))
    return found[0].params["words"] if found else []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hi both, lovely to meet you. Love Jamie xx", ["Love", "xx"]),
        ("Hi Sam, see you on Friday. Love, Jamie", ["Love"]),
        ("Hi Sam, see you on Friday. Love from Alex", ["Love"]),
        ("Hi Sam, see you on Friday! Love, Jamie Reid 😊", ["Love", "😊"]),
        ("Hi Sam, see you on Friday. Lots of love Jamie", ["Lots of love"]),
        ("Hi Sam,\nSee you on Friday. Love, Jamie", ["Love"]),
    ],
)
def test_love_signing_off_the_end_of_the_last_line_is_an_informal_sign_off(text, words):
    assert _words(text) == words


@pytest.mark.parametrize(
    "text",
    [
        "Hi Sam, I'd love to see your drawings. Kind regards, Jamie",
        "Hi Sam, we love the idea. Kind regards, Jamie",
        "Hi Sam, the younger ones will love Jamie",
        "Hi Sam, great work. Love Mondays!",  # not a name the sender has, nor "Love,"
        "Hi Sam, great session. Love it, Sam? Kind regards, Jamie",
    ],
)
def test_love_in_the_prose_is_not_a_sign_off(text):
    assert _words(text) == []


def test_a_sender_called_love_signs_with_her_name():
    """As on a line of its own: "Love Okonkwo" is a name, not a closing."""
    assert _words("Hi Sam, see you on Friday. Love Okonkwo", sender_name="Love Okonkwo") == []
