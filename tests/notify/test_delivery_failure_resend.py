"""A delivery failure lists only the recipients upstream refused (or never took): the sender is
told to send it again to those only. A review: "Check the address ..., then send the message
again" had a sender whose mail reached the parent but not a mistyped colleague send it to
everyone again, and the parent got it twice."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from gateway.notify.delivery import delivery_failure
from gateway.notify.dsn import RecipientStatus
from gateway.notify.render import make_environment


def _texts(refused: list[str], *, expired: bool) -> tuple[str, str]:
    raw = delivery_failure(
        make_environment(),
        reporting_mta="gateway.safe.example",
        sender="alex.teacher@safe.example",
        original=b"Subject: Trip\r\n\r\nHi\r\n",
        arrival=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        statuses=[RecipientStatus(r, "5.1.1", "550 5.1.1 no such user") for r in refused],
        expired=expired,
        lifetime=5 * 86400,
    )
    notice = message_from_bytes(raw, policy=policy.default)
    plain = notice.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = notice.get_body(("html",)).get_content()
    return " ".join(plain.split()), html


def test_one_refused_recipient_is_the_only_one_to_send_it_to_again():
    plain, html = _texts(["jordn.ellis@safe.example"], expired=False)
    said = (
        "Check the address for typing mistakes, then send the message again to that address "
        "only. Anyone else you sent it to and not listed here has had it from the gateway, "
        "or will, unless an earlier notice named them: sending it to everyone again would "
        "give them a second copy. If it keeps happening, forward this notice to your IT team."
    )
    assert said in plain
    assert said in html
    assert "then send the message again." not in plain + html


@pytest.mark.parametrize("expired", [False, True])
def test_several_refused_recipients_are_those_to_send_it_to_again(expired: bool):
    plain, html = _texts(["a@home.example", "b@home.example"], expired=expired)
    for text in (plain, html):
        assert (
            "Check each address for typing mistakes, then send the message again to those "
            "addresses only." in text
        )


def test_at_expiry_the_others_have_had_it_and_nothing_is_still_being_tried():
    """At the end of the lifetime every recipient not yet delivered to is in this notice, or
    in an earlier one (refused for good before)."""
    plain, _ = _texts(["a@home.example"], expired=True)
    assert "has had it from the gateway, unless an earlier notice named them" in plain
    assert "or will" not in plain
