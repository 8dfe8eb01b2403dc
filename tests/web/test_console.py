"""The safeguarding leads' web console over real HTTP: every page needs a session, every form
its CSRF token, an auditor only reads, and every view of the archive is audited. The mail in
it went through the relay's SMTP port, judged by the baseline pack (out-of-hours mail held)."""

from __future__ import annotations

import io
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.store.audit import AuditLog
from gateway.store.schema import queue, reviews
from gateway.web.app import COOKIE
from tests.support import Sink
from tests.web.conftest import (
    AUDITOR,
    DSL,
    MONDAY,
    PARENT,
    PASSWORD,
    SAM,
    SATURDAY,
    TEACHER,
    Browser,
    Console,
)

GET_PAGES = [
    "/",
    "/search?q=sam",
    "/messages/1",
    "/ref/ABC",
    "/review",
    "/held",
    "/audit",
    f"/contacts/{SAM}",
]
POST_FORMS = [
    "/signout",
    "/messages/1/review",
    "/held/1/release",
    "/held/1/cancel",
    f"/contacts/{SAM}/export",
]


def flagged(console: Console) -> int:
    """ "Email to a child or young person is signed off professionally, without kisses": the
    parent is copied (so it is delivered), and the kiss is flagged for the lead's review."""
    return console.send(
        MONDAY,
        to=[SAM],
        cc=[PARENT],
        subject="Room change",
        body="Hi Sam,\n\nThe session moves to room 4 on Thursday.\n\nSee you there x\n",
    )


def signed_in(console: Console, email: str = DSL) -> Browser:
    browser = console.browser()
    reply = browser.sign_in(email)
    assert reply.status == 200 and reply.url.endswith("/review"), reply.text
    return browser


def audit(console: Console, action: str) -> list:
    return AuditLog(console.gateway.engine).entries(action=action)


def test_every_page_and_form_needs_a_session(console: Console):
    browser = console.browser()
    for path in GET_PAGES:
        reply = browser.get(path)
        assert reply.status == 200 and "/signin" in reply.url, path
        assert "<h1>Sign in</h1>" in reply.text
    for path in POST_FORMS:
        reply = browser.post(path, {"csrf": "guess"})
        assert reply.status == 403, path
        assert "Your session has ended" in reply.text
    assert "Traceback" not in reply.text


def test_signing_in_takes_you_back_to_the_page_you_asked_for(console: Console):
    browser = console.browser()
    target = browser.get(f"/contacts/{SAM}")
    assert "next=" in target.url
    reply = browser.sign_in(DSL, next_path=f"/contacts/{SAM}")
    assert reply.url.endswith(f"/contacts/{SAM}") and "Sam Taylor" in reply.text
    # Never to another site.
    other = console.browser().sign_in(DSL, next_path="//evil.example/phish")
    assert other.url == console.base + "/review"


def test_a_member_of_staff_who_is_not_a_safeguarding_lead_is_refused(console: Console):
    reply = console.browser().sign_in(TEACHER)
    assert reply.status == 403
    assert "not a safeguarding lead" in reply.text
    assert [e.actor for e in audit(console, "signin_refused")] == [TEACHER]
    assert audit(console, "signin") == []


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_address(console: Console):
    browser = console.browser()
    for _ in range(5):
        reply = browser.sign_in(DSL, password="wrong")
        assert reply.status == 401 and "do not match" in reply.text
    locked = browser.sign_in(DSL)  # the right password, too late
    assert locked.status == 429 and "Too many failed attempts" in locked.text
    assert len(audit(console, "signin_failed")) == 5
    assert len(audit(console, "signin_attempt")) == 5
    assert len(audit(console, "signin_locked")) == 1
    # Another address is not locked by them.
    assert signed_in(console, AUDITOR)


def test_failures_from_one_computer_do_not_lock_the_lead_out_of_another(console: Console):
    """Anyone who knows a lead's address could otherwise keep the lead out during an incident:
    the lockout is per address and computer (behind the TLS proxy, the address the proxy
    appended to X-Forwarded-For)."""
    prankster = console.browser()
    prankster.headers["X-Forwarded-For"] = "198.51.100.7"
    for _ in range(5):
        assert prankster.sign_in(DSL, password="wrong").status == 401
    assert prankster.sign_in(DSL).status == 429
    # Claiming to be another computer in the header itself does not help.
    prankster.headers["X-Forwarded-For"] = "203.0.113.9, 198.51.100.7"
    assert prankster.sign_in(DSL).status == 429
    lead = console.browser()
    lead.headers["X-Forwarded-For"] = "203.0.113.9"
    reply = lead.sign_in(DSL)
    assert reply.status == 200 and reply.url.endswith("/review")
    clients = {e.detail["client"] for e in audit(console, "signin_locked")}
    assert clients == {"198.51.100.7"}


def test_the_sign_in_form_needs_its_own_token(console: Console):
    browser = console.browser()
    reply = browser.post("/signin", {"email": DSL, "password": "x", "signin_token": "forged"})
    assert reply.status == 403 and "expired" in reply.text
    assert audit(console, "signin_failed") == []


def test_a_form_without_its_session_token_changes_nothing(console: Console):
    archive_id = flagged(console)
    browser = signed_in(console)
    for token in ("", "not-the-token"):
        reply = browser.post(
            f"/messages/{archive_id}/review", {"csrf": token, "outcome": "no_concern"}
        )
        assert reply.status == 403 and "did not come from this console" in reply.text
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(reviews)).all() == []


def test_search_finds_the_flagged_message_and_is_audited(console: Console):
    archive_id = flagged(console)
    browser = signed_in(console)
    reply = browser.get("/search?flag=informal_sign_off&child=" + SAM)
    assert reply.status == 200
    assert f'href="/messages/{archive_id}"' in reply.text and "Room change" in reply.text
    assert "flag:informal_sign_off contact:" + SAM in reply.text
    [entry] = audit(console, "search")
    assert entry.actor == DSL and entry.detail["via"] == "web"
    assert entry.query == f"flag:informal_sign_off contact:{SAM}" and entry.result_count == 1


def test_a_search_that_cannot_be_read_says_why(console: Console):
    browser = signed_in(console)
    reply = browser.get("/search?q=%22unclosed&after=next+tuesday")
    assert reply.status == 200
    assert "is not a date (YYYY-MM-DD)" in reply.text
    reply = browser.get("/search?q=%22unclosed")
    assert "The search could not be read" in reply.text


def test_the_message_view_marks_the_sign_off_and_is_audited(console: Console):
    archive_id = flagged(console)
    browser = signed_in(console)
    reply = browser.get(f"/messages/{archive_id}")
    assert reply.status == 200
    assert '<mark class="finding" data-code="informal_sign_off">See you there x</mark>' in (
        reply.text
    )
    assert "(flagged: informal sign-off)" in reply.text  # what a screen reader hears
    assert "The session moves to room 4" in reply.text
    assert audit(console, "view")[0].detail["archive_id"] == archive_id


def test_the_message_view_shows_what_the_sender_was_told(console: Console, sink: Sink):
    """A message to Sam without the parent is refused; the bounce names the correction."""
    archive_id = console.send(
        MONDAY, to=[SAM], cc=[], subject="Just us", body="Hi Sam,\n\nSee you Thursday.\n"
    )
    reply = signed_in(console).get(f"/messages/{archive_id}")
    assert "Refused" in reply.text
    told = reply.text.split("What the sender was told")[1].split("<h2")[0]
    assert "Bounce to " + TEACHER in told and PARENT in told


def test_a_review_that_cannot_be_saved_says_why_on_a_message_without_findings_too(
    console: Console,
):
    """Such a page has no review form (nothing to review), but a post to it that is refused
    still says why."""
    clean = console.send(
        MONDAY,
        to=[SAM],
        cc=[PARENT],
        subject="Room",
        body="Hi Sam,\n\nRoom 4 on Thursday.\n\nKind regards,\nAlex\n",
    )
    browser = signed_in(console)
    page = browser.get(f"/messages/{clean}")
    assert "Save review" not in page.text
    reply = browser.post(f"/messages/{clean}/review", {"csrf": page.field("csrf")})
    assert reply.status == 400 and "Not saved. Choose" in reply.text


def test_a_lead_reviews_a_flagged_message_and_it_leaves_the_queue(console: Console):
    archive_id = flagged(console)
    browser = signed_in(console)
    queue_page = browser.get("/review")
    assert f'href="/messages/{archive_id}"' in queue_page.text
    page = browser.get(f"/messages/{archive_id}")
    missing_note = browser.post(
        f"/messages/{archive_id}/review", {"csrf": page.field("csrf"), "outcome": "escalated"}
    )
    # The page again, with why beside the form and "escalated" still chosen: not a dead end.
    assert missing_note.status == 400 and "Not saved. Say in the note" in missing_note.text
    assert 'value="escalated" required checked' in missing_note.text
    no_outcome = browser.post(
        f"/messages/{archive_id}/review", {"csrf": page.field("csrf"), "note": "Spoke to Alex."}
    )
    assert no_outcome.status == 400 and "Choose “No concern”" in no_outcome.text
    assert ">Spoke to Alex.</textarea>" in no_outcome.text  # what the lead wrote is kept
    assert "See you there x" in missing_note.text  # the message, to write the note against
    reply = browser.post(
        f"/messages/{archive_id}/review",
        {"csrf": page.field("csrf"), "outcome": "no_concern", "note": "Known to the family."},
    )
    assert reply.status == 200 and "Your review was saved" in reply.text
    assert "No concern</strong> — " + DSL in reply.text and "Known to the family." in reply.text
    assert "Nothing waits for review" in browser.get("/review").text
    [entry] = audit(console, "review")
    assert entry.detail["outcome"] == "no_concern" and entry.detail["archive_id"] == archive_id


def test_an_auditor_reads_but_cannot_review_release_or_export(console: Console):
    archive_id = flagged(console)
    held_id = console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    console.clock.moment = SATURDAY
    browser = signed_in(console, AUDITOR)
    page = browser.get(f"/messages/{archive_id}")
    assert page.status == 200 and "Your review" not in page.text
    held = browser.get("/held")
    assert f'href="/messages/{held_id}"' in held.text and "Release now" not in held.text
    csrf = page.field("csrf")
    entry = _entry_of(console, held_id)
    for path, fields in (
        (f"/messages/{archive_id}/review", {"outcome": "no_concern"}),
        (f"/held/{entry}/release", {}),
        (f"/held/{entry}/cancel", {}),
        (f"/contacts/{SAM}/export", {}),
    ):
        reply = browser.post(path, {"csrf": csrf, **fields})
        assert reply.status == 403 and "Only a safeguarding lead may" in reply.text, path
    refused = audit(console, "refused")
    assert {(e.actor, e.query) for e in refused} == {
        (AUDITOR, "review messages"),
        (AUDITOR, "release held mail"),
        (AUDITOR, "cancel held mail"),
        (AUDITOR, "export a person's history"),
    }
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(reviews)).all() == []
        assert conn.execute(select(queue.c.status).where(queue.c.id == entry)).scalar() == "queued"


def _entry_of(console: Console, archive_id: int) -> int:
    with console.gateway.engine.connect() as conn:
        return int(
            conn.execute(
                select(queue.c.id).where(
                    queue.c.archive_id == archive_id, queue.c.kind == "deliver"
                )
            ).scalar_one()
        )


def test_a_lead_releases_held_mail_and_it_is_delivered(console: Console, sink: Sink):
    """Out-of-hours mail is held until the office opens; a lead may send it now."""
    held_id = console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    notices = len(sink.handler.wait_for(1))  # the sender's "held until" notice
    browser = signed_in(console)
    page = browser.get("/held")
    assert "Weekend" in page.text and "Release now" in page.text
    reply = browser.post(
        f"/held/{_entry_of(console, held_id)}/release", {"csrf": page.field("csrf")}
    )
    assert reply.status == 200 and "Released" in reply.text
    received = sink.handler.wait_for(notices + 1)
    assert sorted(received[-1].rcpt_tos) == sorted([SAM, PARENT])
    again = browser.post(
        f"/held/{_entry_of(console, held_id)}/release", {"csrf": page.field("csrf")}
    )
    assert again.status == 409 and "no longer held" in again.text
    [entry] = audit(console, "release")
    assert entry.actor == DSL and entry.detail["archive_id"] == held_id


def test_a_held_message_s_own_page_says_it_is_not_sent_yet_and_can_cancel_it(
    console: Console, sink: Sink
):
    """The alert's link opens the message: a lead who escalates it there must see that it
    will still go when the office opens, and be able to stop it without looking elsewhere."""
    held_id = console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    notices = len(sink.handler.wait_for(1))
    browser = signed_in(console)
    page = browser.get(f"/messages/{held_id}")
    assert "Not sent yet" in page.text and "does not stop it" in page.text
    assert "Held for office hours" in page.text and "Now: Waiting until" in page.text
    assert "Release now" in page.text and "Cancel: do not send it" in page.text
    entry = _entry_of(console, held_id)
    reply = browser.post(
        f"/held/{entry}/cancel",
        {"csrf": page.field("csrf"), "from": "message", "note": "Escalated; please phone."},
    )
    assert reply.status == 200
    assert "Cancelled: it will not be sent" in reply.text and "Not sent yet" not in reply.text
    assert "Weekend" in reply.text  # back on the message's own page
    assert "Now: Cancelled" in reply.text and "never sent" in reply.text
    # Beside the policy's verdict, what became of it: a review found "Held for office hours"
    # alone on a message a lead had cancelled.
    assert '<span class="badge badge-reject">Cancelled, never sent</span>' in reply.text
    assert "Cancelled, never sent" not in page.text
    sink.handler.wait_for(notices + 1)  # the sender is told
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(queue.c.status).where(queue.c.id == entry)).scalar() == (
            "cancelled"
        )


def test_an_auditor_sees_a_held_message_is_not_sent_yet_but_has_no_buttons(
    console: Console, sink: Sink
):
    held_id = console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    page = signed_in(console, AUDITOR).get(f"/messages/{held_id}")
    assert "Not sent yet" in page.text and "Release now" not in page.text


def test_a_lead_cancels_held_mail_and_the_sender_is_told(console: Console, sink: Sink):
    held_id = console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    notices = len(sink.handler.wait_for(1))
    browser = signed_in(console)
    page = browser.get("/held")
    entry = _entry_of(console, held_id)
    reply = browser.post(
        f"/held/{entry}/cancel", {"csrf": page.field("csrf"), "note": "Please phone instead."}
    )
    assert reply.status == 200 and "Cancelled" in reply.text
    received = sink.handler.wait_for(notices + 1)
    notice = message_from_bytes(received[-1].data, policy=policy.default)
    assert received[-1].rcpt_tos == [TEACHER]
    assert notice["Subject"] == "Not sent: Weekend"
    text = notice.get_body(("plain",)).get_content()
    assert "cancelled it" in text and "Please phone instead." in text and DSL in text
    time.sleep(0.5)  # the worker had its chance: the held message itself is never sent
    assert all(SAM not in r.rcpt_tos for r in sink.handler.received)
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(queue.c.status).where(queue.c.id == entry)).scalar() == (
            "cancelled"
        )
    assert audit(console, "cancel")[0].detail["with_note"] is True  # the words went to the sender


SECRECY = "Hi Sam,\n\nKeep this our little secret, don't tell your parents.\n"


def _not_sent_notices(sink: Sink) -> list[str]:
    subjects = [
        message_from_bytes(r.data, policy=policy.default)["Subject"] for r in sink.handler.received
    ]
    return [s for s in subjects if s.startswith("Not sent:")]


def test_cancelling_held_mail_that_alerted_the_lead_does_not_tell_its_sender_by_default(
    console: Console, sink: Sink
):
    """ "The sender is not told of an urgent alert" (bmt.toml): a "Not sent" notice would tell
    the very person the watch list alerted about that a lead stopped their message. The box
    starts unticked, with the reason; left so, the sender hears nothing."""
    held_id = console.send(SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body=SECRECY)
    before = len(sink.handler.wait_for(2))  # the held notice to the sender, the lead's alert
    browser = signed_in(console)
    page = browser.get(f"/messages/{held_id}")
    box = re.search(r'<input type="checkbox"[^>]*name="tell_sender"[^>]*>', page.text)
    assert box and "checked" not in box.group(0)
    assert "could tip off its sender" in page.text
    entry = _entry_of(console, held_id)
    # What the browser sends with the box unticked: the hidden "no" alone.
    reply = browser.post(
        f"/held/{entry}/cancel",
        {"csrf": page.field("csrf"), "from": "message", "tell_sender": "no", "note": "x"},
    )
    assert reply.status == 200 and "Its sender has not been told" in reply.text
    assert "Now: Cancelled" in reply.text
    time.sleep(0.5)  # the worker had its chance to send a notice
    assert len(sink.handler.received) == before and _not_sent_notices(sink) == []
    [entry_row] = audit(console, "cancel")
    assert entry_row.detail["told_sender"] is False and entry_row.detail["with_note"] is False


def test_a_lead_may_still_tell_the_sender_of_held_mail_that_alerted_them(
    console: Console, sink: Sink
):
    """The lead decides: ticked, the sender is told, with the lead's note."""
    held_id = console.send(SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body=SECRECY)
    before = len(sink.handler.wait_for(2))
    browser = signed_in(console)
    page = browser.get("/held")
    reply = browser.post(
        f"/held/{_entry_of(console, held_id)}/cancel",
        {"csrf": page.field("csrf"), "tell_sender": ["no", "yes"], "note": "See me, please."},
    )
    assert "its sender has been told" in reply.text
    notice = message_from_bytes(sink.handler.wait_for(before + 1)[-1].data, policy=policy.default)
    assert notice["Subject"] == "Not sent: Weekend"
    assert "See me, please." in notice.get_body(("plain",)).get_content()
    assert audit(console, "cancel")[0].detail["told_sender"] is True


@pytest.mark.parametrize(
    ("fields", "told"),
    [({}, True), ({"tell_sender": "no"}, False), ({"tell_sender": ["no", "yes"]}, True)],
)
def test_the_tell_sender_box_decides_for_held_mail_without_an_alert_too(
    console: Console, sink: Sink, fields: dict, told: bool
):
    """Without the field (a script's post) the sender of ordinary held mail is told, as
    before; an unticked box is respected."""
    held_id = console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    before = len(sink.handler.wait_for(1))
    browser = signed_in(console)
    page = browser.get("/held")
    box = re.search(r'<input type="checkbox"[^>]*name="tell_sender"[^>]*>', page.text)
    assert box and "checked" in box.group(0)
    reply = browser.post(
        f"/held/{_entry_of(console, held_id)}/cancel", {"csrf": page.field("csrf"), **fields}
    )
    assert reply.status == 200 and "Cancelled" in reply.text
    if told:
        sink.handler.wait_for(before + 1)
    else:
        time.sleep(0.5)
    assert len(_not_sent_notices(sink)) == (1 if told else 0)
    assert audit(console, "cancel")[0].detail["told_sender"] is told


def test_a_tell_sender_answer_other_than_yes_or_no_is_refused(console: Console, sink: Sink):
    """A script's "on" or "true" is not taken for a no: refused, and the message stays held."""
    held_id = console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    browser = signed_in(console)
    page = browser.get("/held")
    entry = _entry_of(console, held_id)
    reply = browser.post(f"/held/{entry}/cancel", {"csrf": page.field("csrf"), "tell_sender": "on"})
    assert reply.status == 400 and "Say yes or no to telling the sender" in reply.text
    assert "Weekend" in browser.get("/held").text  # still held


@pytest.mark.parametrize("action", ["review", "release", "cancel"])
def test_a_review_release_or_cancellation_is_kept_only_with_its_audit_row(
    console: Console, sink: Sink, monkeypatch, action: str
):
    """Who reviewed, released and cancelled what is on record: an action whose audit row cannot
    be written is not kept either, and the lead is told that nothing was changed."""
    archive_id = flagged(console)
    held_id = console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    entry = _entry_of(console, held_id)
    browser = signed_in(console)
    csrf = browser.get("/held").field("csrf")

    def refused(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO audit_log", {}, Exception("disk I/O error"))

    monkeypatch.setattr(
        f"gateway.store.{'reviews' if action == 'review' else 'held'}.add_audit", refused
    )
    path, fields = {
        "review": (f"/messages/{archive_id}/review", {"outcome": "no_concern"}),
        "release": (f"/held/{entry}/release", {}),
        "cancel": (f"/held/{entry}/cancel", {"note": "Please phone."}),
    }[action]
    reply = browser.post(path, {"csrf": csrf, **fields})
    assert reply.status == 500 and "Nothing was changed" in reply.text
    assert audit(console, action) == []
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(reviews)).all() == []
        held = conn.execute(select(queue).where(queue.c.id == entry)).one()
        notices = conn.execute(select(queue).where(queue.c.kind == "notice")).all()
    assert held.status == "queued" and held.next_attempt_at > SATURDAY.replace(tzinfo=None)
    assert len(notices) == 1  # the sender's "held until" notice, and no "not sent" one


def test_a_search_says_when_the_newest_messages_could_not_be_searched_for_words(
    console: Console, monkeypatch
):
    """A lead is told, beside the results, that words in the newest messages were not looked
    for (the word index could not be written), and that address and flag searches are whole."""
    if console.gateway.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writes its word index with each message")
    console.gateway.writer.index = None  # the writer leaves what it archives unindexed
    time.sleep(0.6)  # its indexing run under way, if any, ends
    flagged(console)

    def refused(engine: object, **kwargs: object) -> int:
        raise OperationalError("INSERT INTO archive_fts", {}, Exception("readonly database"))

    monkeypatch.setattr("gateway.store.search.index_pending", refused)
    page = signed_in(console).get("/search?q=room")
    assert page.status == 200
    assert "could not be searched for words" in page.text
    assert "searches by address or flag are complete" in page.text


def test_a_childs_page_lists_their_messages_and_exports_their_history(console: Console):
    first = flagged(console)
    second = console.send(
        MONDAY, to=[SAM], cc=[], subject="Just us", body="Hi Sam,\n\nSee you Thursday.\n"
    )
    browser = signed_in(console)
    page = browser.get(f"/contacts/{SAM}")
    assert "Sam Taylor" in page.text and "(under 18)" in page.text and PARENT in page.text
    assert f'href="/messages/{first}"' in page.text and f'href="/messages/{second}"' in page.text
    reply = browser.post(f"/contacts/{SAM}/export", {"csrf": page.field("csrf")})
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/zip"
    assert (
        'attachment; filename="history-sam.minor@home.example-'
        in (reply.headers["Content-Disposition"])
    )
    with zipfile.ZipFile(io.BytesIO(reply.body)) as bundle:
        names = bundle.namelist()
        manifest = json.loads(bundle.read("manifest.json"))
    assert "cover.html" in names and len(manifest) == 2
    [entry] = audit(console, "export")
    assert entry.actor == DSL and entry.result_count == 2


def test_a_childs_export_carries_the_leads_reviews_only_when_the_box_is_ticked(console: Console):
    """For a referral the export carries "the lead's review notes and escalation"; the form's
    box starts unticked, so that a family's own request is answered without the notes."""
    archive_id = flagged(console)
    browser = signed_in(console)
    page = browser.get(f"/messages/{archive_id}")
    reply = browser.post(
        f"/messages/{archive_id}/review",
        {"csrf": page.field("csrf"), "outcome": "escalated", "note": "Referred to the LADO"},
    )
    assert reply.status == 200, reply.text
    page = browser.get(f"/contacts/{SAM}")
    assert 'name="reviews" value="yes">' in page.text and "checked" not in page.text
    covers = {}
    for ticked in (False, True):
        form = {"csrf": page.field("csrf")} | ({"reviews": "yes"} if ticked else {})
        reply = browser.post(f"/contacts/{SAM}/export", form)
        assert reply.status == 200
        # Notes meant for a referral are not to be mistaken for the family's copy.
        named = reply.headers["Content-Disposition"]
        assert named.endswith('-with-reviews.zip"') is ticked
        with zipfile.ZipFile(io.BytesIO(reply.body)) as bundle:
            covers[ticked] = bundle.read("cover.html").decode()
            [row] = json.loads(bundle.read("manifest.json"))
        assert ("Referred to the LADO" in row["reviews"]) is ticked
    assert "Referred to the LADO" in covers[True] and "LADO" not in covers[False]
    assert [e.detail["reviews"] for e in audit(console, "export")] == [True, False]
    log = browser.get("/audit?action=export").text
    assert log.count("(with the leads' reviews and notes)") == 1


def test_a_message_page_shows_what_only_its_html_version_says(console: Console):
    """A review found that the console showed only the plain-text part: "what only the HTML
    showed, and what its findings quote, is not shown or marked"."""
    archive_id = console.send(
        MONDAY,
        to=[SAM],
        cc=[PARENT],
        subject="Thursday",
        body="Hi Sam,\n\nSee you on Thursday.\n\nKind regards,\nAlex\n",
        html="<p>Hi Sam,</p><p>See you on Thursday. Our secret: call me on 07700 900123.</p>"
        "<p>Kind regards,<br>Alex</p>",
    )
    page = signed_in(console).get(f"/messages/{archive_id}")
    assert "The HTML version says something else" in page.text
    assert "call me on" in page.text
    assert "<mark" in page.text.split("The HTML version says something else")[1]


def test_the_review_queue_puts_what_alerted_a_lead_first(console: Console):
    """A review: a watch-list message "sat between 'Required copy missing' refusals" in a
    queue kept oldest first, unmarked."""
    from datetime import timedelta

    older = flagged(console)
    watched = console.send(
        MONDAY + timedelta(minutes=5), to=[SAM], cc=[PARENT], subject="Trip", body=SECRECY
    )
    page = signed_in(console).get("/review").text
    assert page.index(f'href="/messages/{watched}"') < page.index(f'href="/messages/{older}"')
    row = page.split(f'href="/messages/{watched}"')[0].rsplit("<tr>", 1)[1]
    assert "Urgent:" in row
    assert "Urgent:" not in page.split(f'href="/messages/{older}"')[0].rsplit("<tr>", 1)[1]


def test_signing_out_ends_the_session_everywhere(console: Console):
    browser = signed_in(console)
    cookies = list(browser.cookies)
    page = browser.get("/review")
    reply = browser.post("/signout", {"csrf": page.field("csrf")})
    assert "<h1>Sign in</h1>" in reply.text
    stolen = console.browser()
    for cookie in cookies:  # a copy of the cookie taken before signing out
        stolen.cookies.set_cookie(cookie)
    assert "/signin" in stolen.get("/review").url
    assert len(audit(console, "signout")) == 1


def test_signing_in_again_ends_the_session_the_browser_had(console: Console):
    """A console left signed in, then signed into by someone else: the first person's cookie,
    if it was copied, opens nothing any more."""
    browser = signed_in(console, AUDITOR)
    copied = [c for c in browser.cookies if c.name == COOKIE]
    assert copied
    reply = browser.sign_in(DSL)
    assert reply.status == 200 and reply.url.endswith("/review")
    stolen = console.browser()
    for cookie in copied:
        stolen.cookies.set_cookie(cookie)
    assert "/signin" in stolen.get("/review").url
    assert "<h1>Sign in</h1>" not in browser.get("/review").text  # the new one works


@pytest.mark.parametrize("path", ["/messages/999999", "/no/such/page"])
def test_an_unknown_page_is_a_plain_not_found(console: Console, path: str):
    reply = signed_in(console).get(path)
    assert reply.status == 404 and "There is no such page or message" in reply.text


def test_pages_forbid_framing_scripts_and_caching(console: Console):
    reply = signed_in(console).get("/review")
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Cache-Control"] == "no-store"


def test_group_mail_moved_to_bcc_needs_no_review(console: Console):
    """ "Group email is sent with recipients in BCC": the gateway fixed it already, so it does
    not wait in the review queue (but search finds it)."""
    people = [f"volunteer{n}@example.org" for n in range(6)]
    archive_id = console.send(
        MONDAY, to=people, cc=[], subject="Rota", body="Hello all,\n\nThe rota is attached.\n"
    )
    browser = signed_in(console)
    assert "Nothing waits for review" in browser.get("/review").text
    found = browser.get("/search?flag=mass_mail_visible_recipients")
    assert f'href="/messages/{archive_id}"' in found.text
    assert "Sent with addresses hidden" in found.text


def test_every_list_of_the_archive_opened_is_audited(console: Console):
    """Who looked at what: the review queue, held mail and a person's page, besides searches,
    messages and exports (tested above)."""
    archive_id = flagged(console)
    browser = signed_in(console, AUDITOR)  # lands on the review queue
    browser.get("/held")
    browser.get(f"/contacts/{SAM}")
    views = [(e.actor, e.query, e.detail["shown"]) for e in reversed(audit(console, "view"))]
    assert views == [(AUDITOR, "review queue", [archive_id]), (AUDITOR, "held mail", [])]
    [search] = audit(console, "search")
    assert (search.actor, search.query, search.detail["role"]) == (
        AUDITOR,
        f"contact:{SAM}",
        "auditor",
    )


def test_the_personal_number_and_the_risky_phrase_are_marked_where_they_are(console: Console):
    """ "Staff do not give children and young people their personal mobile number", and
    "language that asks a young person for secrecy ... is reported": both passages are marked
    in the text the lead reads."""
    archive_id = console.send(
        MONDAY,
        to=[SAM],
        cc=[PARENT],
        subject="Thursday",
        body="Hi Sam,\n\nText me on 07700 900123 if you are late.\n"
        "Don't tell anyone about the change of plan.\n\nKind regards,\nAlex\n",
    )
    page = signed_in(console).get(f"/messages/{archive_id}")
    assert '<mark class="finding" data-code="personal_contact_details">07700 900123</mark>' in (
        page.text
    )
    assert '<mark class="finding" data-code="risk_language">Don&#39;t tell anyone</mark>' in (
        page.text
    )


@pytest.mark.parametrize("target", ["/\t/evil.example/x", "/\n/evil.example", "/ /evil.example"])
def test_a_next_page_with_a_control_character_cannot_lead_to_another_site(
    console: Console, target: str
):
    """aiohttp drops a tab or newline from a Location, which would leave //evil.example."""
    reply = console.browser().sign_in(DSL, next_path=target)
    assert reply.url == console.base + "/review"


def test_guesses_sent_at_once_are_each_counted_towards_the_lockout(console: Console):
    """Twenty wrong passwords at the same moment: only five are checked, the rest locked out
    (the count and the attempt are one transaction per address)."""
    from concurrent.futures import ThreadPoolExecutor

    browsers = [console.browser() for _ in range(20)]
    forms = [b.get("/signin").field("signin_token") for b in browsers]

    def guess(n: int) -> int:
        return (
            browsers[n]
            .post("/signin", {"signin_token": forms[n], "email": DSL, "password": f"guess {n}"})
            .status
        )

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(guess, range(20)))
    assert statuses.count(401) == 5 and statuses.count(429) == 15
    assert len(audit(console, "signin_attempt")) == 5
    assert len(audit(console, "signin_locked")) == 15


def test_a_new_password_lifts_the_lockout_and_ends_the_sessions_of_the_old_one(
    console: Console,
):
    """What the lockout message tells the lead to do must work; and a password changed after
    a compromise shuts out whoever signed in with the old one."""
    from datetime import timedelta

    from gateway.smtp.auth import hash_password
    from gateway.store.credentials import CredentialStore

    intruder = signed_in(console)
    browser = console.browser()
    for _ in range(6):
        browser.sign_in(DSL, password="wrong")
    assert browser.sign_in(DSL).status == 429
    console.clock.moment = MONDAY + timedelta(minutes=1)
    CredentialStore(console.gateway.engine).set_hash(
        DSL, hash_password("a new passphrase"), console.clock.moment
    )
    assert "/signin" in intruder.get("/review").url
    assert browser.sign_in(DSL, password="a new passphrase").url.endswith("/review")


def test_a_purged_message_takes_its_review_notes_with_it(console: Console):
    """Retention removes the message's content; a lead's note about it (which may name the
    child) goes too, and the tombstone's page says it was removed."""
    from gateway.store.retention import tombstone

    archive_id = flagged(console)
    browser = signed_in(console)
    page = browser.get(f"/messages/{archive_id}")
    browser.post(
        f"/messages/{archive_id}/review",
        {"csrf": page.field("csrf"), "outcome": "escalated", "note": "Told Sam Taylor's mum."},
    )
    tombstone(console.gateway.engine, [archive_id], at=MONDAY, actor="test", rule="6 years")
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(reviews)).all() == []
    shown = browser.get(f"/messages/{archive_id}")
    assert "Removed under the retention policy" in shown.text and "Sam Taylor" not in shown.text


def test_a_persons_page_and_export_cover_every_address_they_have(console: Console):
    """Mia writes from home and from school: her history is both."""
    home, school = "mia.jones@home.example", "mia.jones@pupils.school.example"
    for address in (home, school):
        console.send(
            MONDAY,
            to=[address],
            cc=["dave.jones@home.example"],
            subject=f"To {address}",
            body="Hi Mia,\n\nRoom 4 on Thursday.\n\nKind regards,\nAlex\n",
        )
    browser = signed_in(console)
    page = browser.get(f"/contacts/{school}")
    assert f"To {home}" in page.text and f"To {school}" in page.text
    assert "(all searched)" in page.text
    reply = browser.post(f"/contacts/{school}/export", {"csrf": page.field("csrf")})
    with zipfile.ZipFile(io.BytesIO(reply.body)) as bundle:
        assert len(json.loads(bundle.read("manifest.json"))) == 2
    assert audit(console, "export")[0].query == f"contact:{home} OR contact:{school}"
    # The search form's "Involving (any address)" finds both too, narrowed by what else is set.
    found = browser.get(f"/search?child={school}&q=Thursday")
    assert f"To {home}" in found.text and f"To {school}" in found.text
    assert audit(console, "search")[0].query == (f"Thursday (contact:{home} OR contact:{school})")
    # A review: `contact:` with her school address found only that, and nothing said so.
    one = browser.get(f"/search?q=contact:{school}")
    assert f"To {school}" in one.text and f"To {home}" not in one.text
    assert f"{school} is Mia Jones in the directory, who also uses {home}" in one.text
    both = browser.get(f"/search?child={school}")
    assert "who also uses" not in both.text
    # A review: an address in both To and Cc was listed twice in the results.
    console.send(
        MONDAY,
        to=[home, "dave.jones@home.example"],
        cc=["dave.jones@home.example"],
        subject="Twice",
        body="Hi Mia,\n\nRoom 4.\n\nKind regards,\nAlex\n",
    )
    row = browser.get("/search?q=subject:twice").text
    assert row.count("dave.jones@home.example") == 1


def test_cookies_are_secure_when_the_console_is_reached_over_https_even_on_loopback(
    tmp_path: Path,
):
    """deploy/README.md puts the console behind a TLS proxy on loopback: `[web] url` saying
    https turns secure cookies on there, without an IT admin having to know the setting."""
    from gateway.config import settings_from_dict
    from gateway.web.app import WebServices

    def secure(web: dict) -> bool:
        settings = settings_from_dict({"web": web}, tmp_path / "gateway.toml")
        services = WebServices.of(settings, None, None, None, None, None)  # type: ignore[arg-type]
        return services.secure_cookies

    assert secure({"listen": "127.0.0.1:8025", "url": "https://safeguarding.safe.example"})
    assert not secure({"listen": "127.0.0.1:8025", "url": "http://127.0.0.1:8025"})
    assert not secure({"listen": "127.0.0.1:8025"})
    assert secure({"listen": "0.0.0.0:8025"})
    assert not secure(
        {"listen": "127.0.0.1:8025", "url": "https://x.example", "secure_cookies": False}
    )


def test_a_page_number_that_is_not_a_plain_number_is_page_one(console: Console):
    browser = signed_in(console)
    for path in ("/review?page=%C2%B2", "/search?q=room&page=%C2%B2", "/review?page=-3"):
        assert browser.get(path).status == 200, path


def test_a_console_that_needs_https_says_so_on_a_plain_http_sign_in_page(console: Console):
    """An IT admin who opens the console over plain HTTP with secure cookies on learns why
    sign-in cannot work, instead of being sent back to the sign-in page without a word."""
    page = console.browser().get("/signin")
    assert "plain HTTP" not in page.text  # loopback: secure cookies are off by default
    console.web.secure_cookies = True
    page = console.browser().get("/signin")
    assert "came over plain HTTP" in page.text
    assert "Secure" in page.headers["Set-Cookie"]


def test_secure_cookies_carry_the_host_prefix_so_no_sibling_site_can_plant_one(console: Console):
    """Behind https the cookies are `__Host-`: Secure, for the whole site, for this host alone.
    (A browser keeps Secure cookies only over https, so this client carries them by hand.)"""
    console.web.secure_cookies = True

    def call(path: str, cookie: str = "", form: dict[str, str] | None = None) -> tuple:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(console.base + path, data=data, headers={"Cookie": cookie})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            response = opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        return response.status, response.headers.get_all("Set-Cookie") or [], response.read()

    _status, cookies, page = call("/signin")
    [signin_cookie] = cookies
    assert signin_cookie.startswith("__Host-sg_signin=") and "Domain" not in signin_cookie
    assert "Secure" in signin_cookie and "Path=/" in signin_cookie
    token = re.search(rb'name="signin_token" value="([^"]+)"', page).group(1).decode()
    form = {"signin_token": token, "email": DSL, "password": PASSWORD, "next": ""}
    unprefixed = call("/signin", f"sg_signin={token}", form)
    assert unprefixed[0] == 403  # the old name is not read: the form "had expired"
    status, cookies, _ = call("/signin", f"__Host-sg_signin={token}", form)
    assert status == 303
    session = next(c for c in cookies if c.startswith("__Host-sg_session="))
    assert "Secure" in session and "Domain" not in session
    value = session.split(";")[0]
    assert call("/review", value)[0] == 200
    assert call("/review", value.removeprefix("__Host-"))[0] == 303  # to the sign-in page
    forgotten = next(c for c in cookies if c.startswith("__Host-sg_signin="))
    assert "Secure" in forgotten  # else a browser would not let it be deleted


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_a_leads_alert_links_to_the_message_in_the_console(console: Console, sink: Sink):
    """Watch-list language "is reported to the safeguarding lead at once": the alert's link
    (its archive reference under [web] url) opens the message, after signing in if need be."""
    from tests.web.conftest import CONSOLE_URL

    archive_id = console.send(
        MONDAY,
        to=[SAM],
        cc=[PARENT],
        subject="Thursday",
        body="Hi Sam,\n\nDon't tell anyone about the change of plan.\n\nKind regards,\nAlex\n",
    )
    alerts = [r for r in sink.handler.wait_for(2) if r.rcpt_tos == ["safeguarding@safe.example"]]
    text = message_from_bytes(alerts[0].data, policy=policy.default).get_body(("plain",))
    link = next(line.strip() for line in text.get_content().splitlines() if CONSOLE_URL in line)
    path = link.removeprefix(CONSOLE_URL)
    assert path.startswith("/ref/")
    browser = console.browser()
    assert "/signin?next=" in browser.get(path).url
    reply = browser.sign_in(DSL, next_path=path)
    assert reply.url == f"{console.base}/messages/{archive_id}"
    assert browser.get("/ref/NOSUCHREF").status == 404


def test_an_auditor_reads_the_audit_log_and_reading_it_is_recorded(console: Console):
    """Who looked at what, for the person who checks: the lead's sign-in, search and opened
    message are listed, a filter narrows it, and the auditor's own look is an entry too."""
    archive_id = flagged(console)
    lead = signed_in(console)
    lead.get("/search?q=room")
    lead.get(f"/messages/{archive_id}")
    auditor = signed_in(console, AUDITOR)
    page = auditor.get("/audit?actor=" + DSL)
    assert page.status == 200
    assert "Signed in" in page.text and "Searched" in page.text and "room" in page.text
    assert f'<a href="/messages/{archive_id}">message {archive_id}</a>' in page.text
    assert AUDITOR not in page.text.split("<tbody>")[1]  # only the lead's entries
    only = auditor.get("/audit?action=search")
    assert "Searched" in only.text and "Signed in</td>" not in only.text
    [look, _] = [e for e in audit(console, "view") if e.query == "audit log"]
    assert look.actor == AUDITOR and look.detail["action"] == "search"


def test_an_address_with_an_apostrophe_has_its_page_and_history(console: Console):
    """niamh.o'brien@ is a valid address (the directory import takes it): not skipped."""
    address = "niamh.o'brien@home.example"
    archive_id = console.send(
        MONDAY, to=[address], cc=[], subject="Volunteering", body="Hello Niamh,\n\nThanks.\n"
    )
    page = signed_in(console).get("/contacts/" + address.replace("'", "%27"))
    assert page.status == 200 and f'href="/messages/{archive_id}"' in page.text


def test_a_review_of_a_message_retention_has_emptied_is_refused(console: Console):
    """A stale tab must not leave a note (which may name the child) that no purge will see."""
    from gateway.store.retention import tombstone

    archive_id = flagged(console)
    browser = signed_in(console)
    page = browser.get(f"/messages/{archive_id}")
    tombstone(console.gateway.engine, [archive_id], at=MONDAY, actor="test", rule="6 years")
    reply = browser.post(
        f"/messages/{archive_id}/review",
        {"csrf": page.field("csrf"), "outcome": "escalated", "note": "About Sam Taylor."},
    )
    assert reply.status == 404
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(reviews)).all() == []


def test_a_password_set_on_a_host_whose_clock_is_ahead_still_signs_in_and_stays_in(
    console: Console,
):
    """The admin's machine may keep another time than the gateway's: a session opened after
    the new password must work, and the lockout must start again, whatever the two clocks."""
    from datetime import timedelta

    from gateway.smtp.auth import hash_password
    from gateway.store.credentials import CredentialStore

    browser = console.browser()
    for _ in range(5):
        browser.sign_in(DSL, password="wrong")
    CredentialStore(console.gateway.engine).set_hash(
        DSL, hash_password("a new passphrase"), MONDAY + timedelta(days=1), actor="it.admin"
    )
    assert browser.sign_in(DSL, password="a new passphrase").url.endswith("/review")
    assert browser.get("/held").status == 200 and "/signin" not in browser.get("/held").url
    assert [e.query for e in audit(console, "password_set") if e.actor == "it.admin"] == [DSL]


def test_search_results_say_whether_each_flagged_message_was_reviewed(console: Console):
    archive_id = flagged(console)
    browser = signed_in(console)
    row = browser.get("/search?q=room").text.split(f'href="/messages/{archive_id}"')[1]
    assert "<td>Not yet</td>" in row.split("</tr>")[0]
    page = browser.get(f"/messages/{archive_id}")
    browser.post(
        f"/messages/{archive_id}/review",
        {"csrf": page.field("csrf"), "outcome": "escalated", "note": "Passed to the DSL team."},
    )
    for path in ("/search?q=room", f"/contacts/{SAM}"):
        row = browser.get(path).text.split(f'href="/messages/{archive_id}"')[1]
        assert "<td>Concern — escalated</td>" in row.split("</tr>")[0], path


def test_a_lead_taken_out_of_the_directory_is_signed_out_on_the_next_click(console: Console):
    """ "A lead removed from the directory is signed out on their next click" (README), once
    the gateway has re-read the directory (here at once, instead of every 5 seconds)."""
    import dataclasses

    from gateway.store.directory import DirectoryStore

    browser = signed_in(console)
    store = DirectoryStore(console.gateway.engine)
    staff = [dataclasses.replace(m, dsl=False) if m.email == DSL else m for m in store.staff()]
    store.replace("staff", staff, MONDAY)
    console.gateway.directory.recheck = 0
    assert "/signin" in browser.get("/review").url
    assert browser.sign_in(DSL).status == 403  # and cannot sign in again
