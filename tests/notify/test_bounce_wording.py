"""What a member of staff reads in a bounce says what happens to the message: a refused one
is not "held and delivered", and the closing line is plain English, not corrections run
together ("again.; Remove", "given..")."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from gateway.checks import missing_required_cc
from gateway.directory.model import Contact, DirectoryView
from gateway.message.parse import parse_message
from gateway.notify.render import environment_for
from gateway.notify.wording import explain
from gateway.policy.pack import load_pack
from tests.policy.harness import Draft, directory, domain
from tests.policy.test_tipping_off import _content, _prepare


def _refused_out_of_hours_bounce() -> str:
    """thread-and-press at 22:30 to Sam with his parent but no second member of staff: refused
    (copy-another-staff-member), and out of hours (would be held)."""
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example",),
        body="Hi Sam,\n\nThe session moves to room 4 on Thursday.\n\nKind regards,\nAlex",
        at="2026-11-23T22:30:00",
    )
    prepared = _prepare("thread-and-press", draft)
    assert prepared.record.verdict == "reject"
    return _content(prepared, "bounce")


def test_a_refused_message_is_not_promised_to_be_held_and_delivered():
    bounce = _refused_out_of_hours_bounce()
    assert "Nothing has been delivered to anyone" in bounce
    assert "will hold it and deliver it" not in bounce
    assert "Nothing more is needed" not in bounce
    assert "Sent again outside office hours, it would be held until the office opens" in bounce


def test_the_closing_line_of_a_bounce_has_no_doubled_punctuation():
    bounces = [
        _refused_out_of_hours_bounce(),
        _content(
            _prepare(
                "teens-in-ai",
                Draft(to=("nora.noconsent@home.example",), cc=("n.parent@parents.example",)),
            ),
            "bounce",
        ),
        _content(
            _prepare(
                "thread-and-press",
                Draft(
                    to=("sam.minor@home.example",),
                    cc=(f"lee.mentor@{domain('thread-and-press')}",),
                    body="Hi Sam,\n\nSee you Thursday x",
                ),
            ),
            "bounce",
        ),
    ]
    for bounce in bounces:
        assert not re.search(r"\.\.(?!\.)|\.;|;\s*\.", bounce), bounce


def test_a_held_message_s_notice_says_what_to_change_for_what_was_flagged():
    """A review found the held-mail notice naming a personal number and then "You need do
    nothing": the flag's correction is given, for next time."""
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example", f"lee.mentor@{domain('thread-and-press')}"),
        body="Hi Sam,\n\nText me on 07700 900987 if the bus is late.\n\nKind regards,\nAlex",
        at="2026-11-23T22:30:00",
    )
    prepared = _prepare("thread-and-press", draft)
    assert prepared.record.verdict == "defer"
    notice = _content(prepared, "notice")
    assert "07700 900987" in notice
    assert "Next time: " in notice


def test_a_young_person_with_no_parent_on_record_is_said_in_plain_english():
    """Teens in AI: 'parents need to be copied at all times'. A review found "There is no a
    parent or guardian on record for ..." when the directory holds none."""
    pack = load_pack("teens-in-ai")
    [rule] = [r for r in pack.rules if r.id == "copy-parents-under-18"]
    base = directory(domain("teens-in-ai"))
    alone = Contact(("nog@home.example",), "Nog Noguardian", date(2011, 1, 1), "participant")
    view = DirectoryView([*base.contacts, alone], base.staff)
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    raw = Draft(to=("nog@home.example",)).raw(domain("teens-in-ai"))
    message = parse_message(raw, envelope_from="", envelope_to=("nog@home.example",), sent_at=at)
    [finding] = missing_required_cc.check(message, view, at, rule, pack.organisation)
    told = explain(environment_for("teens-in-ai"), finding, rule, pack.organisation).correction
    assert told.startswith("Nog Noguardian has no parent or guardian on record.")
