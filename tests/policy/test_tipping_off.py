"""The sender is not told of an urgent finding: "Flag (not block) so the DSO sees it
immediately; the sender is not told of an urgent alert" (bmt.toml's reading of "Do not say
anything in a DM you would not say in the open"). A notice that quoted the watched-for words
would teach the sender which words to avoid; the safeguarding lead's alert quotes them."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from gateway.pipeline import Prepared, Submission
from gateway.policy.pack import PackError, load_pack
from tests.policy.harness import Draft, domain, pipeline

SECRET = "Keep this our little secret, don't tell your parents."


def _prepare(pack: str, draft: Draft) -> Prepared:
    p = pipeline(pack)
    dom = domain(pack)
    at = datetime.fromisoformat(draft.at).replace(tzinfo=p.organisation.timezone)
    return p.prepare(
        Submission(
            queue_id="Q1",
            raw=draft.raw(dom),
            envelope_from=draft.sender.format(domain=dom),
            envelope_to=(*draft.to, *draft.cc),
            received_at=at,
        )
    )


def _content(prepared: Prepared, kind: str) -> str:
    """The notice's text as its reader sees it (not the original it may attach)."""
    [item] = [i for i in prepared.items if i.kind == kind]
    assert item.content is not None
    texts: list[str] = []

    def read(part: EmailMessage) -> None:
        if part.get_content_maintype() == "message":
            return  # the original, or a corrected draft, attached: the sender's own words
        if part.is_multipart():
            for inner in part.iter_parts():
                read(inner)
        elif part.get_content_type() in ("text/plain", "text/html"):
            texts.append(part.get_content())

    read(message_from_bytes(item.content, policy=policy.default))
    return "\n".join(texts)


def test_a_held_message_s_notice_to_its_sender_leaves_out_the_watch_list_match():
    """Out of hours (held) and a secrecy request: the sender hears when it goes; the lead
    hears what matched."""
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example", f"lee.mentor@{domain('thread-and-press')}"),
        body=f"Hi Sam,\n\n{SECRET}\n\nKind regards,\nAlex",
        at="2026-11-23T22:30:00",
    )
    prepared = _prepare("thread-and-press", draft)
    assert prepared.record.verdict == "defer"
    notice = _content(prepared, "notice")
    assert "delivered when the office opens" in notice
    assert "watch list" not in notice and "little secret" not in notice
    alert = _content(prepared, "alert")
    assert "little secret" in alert


def test_a_bounce_names_every_correction_but_not_the_watch_list_match():
    draft = Draft(
        to=("sam.minor@home.example",), body=f"Hi Sam,\n\n{SECRET}\n\nKind regards,\nAlex"
    )
    prepared = _prepare("teens-in-ai", draft)
    assert prepared.record.verdict == "reject"
    bounce = _content(prepared, "bounce")
    assert "priya.shah@parents.example" in bounce  # the correction the sender needs
    assert "watch list" not in bounce and "little secret" not in bounce
    assert "little secret" in _content(prepared, "alert")
    # The archive keeps every finding for the lead's review.
    assert "risk_language" in {f["code"] for f in prepared.record.findings}


def test_a_pack_may_not_make_an_urgent_rule_reject(tmp_path):
    pack = tmp_path / "urgent-reject.toml"
    pack.write_text(
        '[pack]\nname = "t"\n\n[organisation]\ndomains = ["t.example"]\n\n'
        '[[rule]]\nid = "secrets"\ncheck = "risk_language"\naction = "reject"\nurgent = true\n'
        'policy = "Never ask a child to keep a secret."\n'
    )
    with pytest.raises(PackError, match=r":11: rule 'secrets': an urgent rule must flag, not"):
        load_pack(str(pack))


def test_the_lead_s_alert_says_a_held_message_can_still_be_stopped_and_whom_it_is_to():
    """An alert for a message held out of hours says when it goes and how to stop it, and
    names every recipient (whether a parent was copied matters to the lead), not only the
    young person."""
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example", f"lee.mentor@{domain('thread-and-press')}"),
        body=f"Hi Sam,\n\n{SECRET}\n\nKind regards,\nAlex",
        at="2026-11-23T22:30:00",
    )
    alert = _content(_prepare("thread-and-press", draft), "alert")
    lines = dict(line.split(": ", 1) for line in alert.splitlines() if ": " in line)
    assert lines["To"] == (
        f"sam.minor@home.example, priya.shah@parents.example, "
        f"lee.mentor@{domain('thread-and-press')}"
    )
    assert lines["Young people among them"] == "sam.minor@home.example"
    assert lines["What happened to it"] == (
        "held, not sent yet: it goes on Tuesday 24 November 2026, 09:00 unless a safeguarding "
        "lead cancels it first (Held mail, in the console)"
    )


def test_the_lead_s_alert_for_flagged_mail_says_it_was_sent_on():
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example",),
        body=f"Hi Sam,\n\n{SECRET}\n\nKind regards,\nAlex",
    )
    alert = _content(_prepare("teens-in-ai", draft), "alert")
    assert "What happened to it: sent on to its recipients; flagged for your review" in alert


def test_the_lead_s_alert_names_who_was_sent_it_not_who_a_header_names():
    """A Cc header naming the parent, with the parent not among the envelope's recipients: the
    parent never got it, and the alert must not tell the lead they were copied."""
    p = pipeline("teens-in-ai")
    dom = domain("teens-in-ai")
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example",),
        body=f"Hi Sam,\n\n{SECRET}\n\nKind regards,\nAlex",
    )
    prepared = p.prepare(
        Submission(
            queue_id="Q2",
            raw=draft.raw(dom),
            envelope_from=draft.sender.format(domain=dom),
            envelope_to=("sam.minor@home.example",),
            received_at=datetime.fromisoformat(draft.at).replace(tzinfo=p.organisation.timezone),
        )
    )
    alert = _content(prepared, "alert")
    assert "\nTo: sam.minor@home.example\n" in alert.replace("\r\n", "\n")
    assert "priya" not in alert.split("Young people among them")[0]
