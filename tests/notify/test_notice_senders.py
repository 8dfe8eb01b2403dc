"""Who each notice the gateway writes says it is from, as deploy/README.md tells an admin to
allow upstream. A review found the guide saying "From: postmaster@" for all of them, while
bounces come from MAILER-DAEMON@: an upstream allowing only the one would drop the other."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

from gateway.notify.delivery import delivery_failure
from gateway.notify.dsn import RecipientStatus
from gateway.notify.render import make_environment
from tests.policy.harness import Draft, domain
from tests.policy.test_tipping_off import _prepare

GUIDE = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
BOUNCES = "Mail Delivery System <MAILER-DAEMON@{host}>"
NOTICES = "Safeguard Gateway <postmaster@{host}>"


def _from(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=policy.default)["From"])


def test_each_notice_comes_from_the_sender_the_deployment_guide_names():
    # Out of hours and a secrecy request (urgent): held, the sender told, the lead alerted.
    held = _prepare(
        "thread-and-press",
        Draft(
            to=("sam.minor@home.example",),
            cc=("priya.shah@parents.example", f"lee.mentor@{domain('thread-and-press')}"),
            body="Hi Sam,\n\nKeep this our little secret, don't tell your parents.\n\nAlex",
            at="2026-11-23T22:30:00",
        ),
    )
    refused = _prepare(
        "thread-and-press",
        Draft(to=("sam.minor@home.example",), cc=("priya.shah@parents.example",)),
    )
    senders = {
        item.kind: _from(item.content)
        for item in (*held.items, *refused.items)
        if item.content is not None
    }
    host = "gateway.test"  # the harness's [server] hostname
    assert senders == {
        "bounce": BOUNCES.format(host=host),
        "notice": NOTICES.format(host=host),
        "alert": NOTICES.format(host=host),
    }
    failure = delivery_failure(
        make_environment(),
        reporting_mta=host,
        sender="alex.teacher@safe.example",
        original=b"Subject: Trip\r\n\r\nHi\r\n",
        arrival=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        statuses=[RecipientStatus("x@home.example", "5.1.1", "550 no such user")],
        expired=False,
        lifetime=5 * 86400,
    )
    assert _from(failure) == BOUNCES.format(host=host)
    guide = " ".join(GUIDE.read_text(encoding="utf-8").split())
    assert f"`From: {BOUNCES.format(host='HOST')}`" in guide
    assert f"`From: {NOTICES.format(host='HOST')}`" in guide
