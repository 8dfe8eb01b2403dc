"""The policy through the relay: bounces people can act on, BCC rewrites, held mail, monitor
mode — over SMTP, with the demo directory and the seed packs."""

from __future__ import annotations

import smtplib
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy

from sqlalchemy import select

from gateway.clock import FixedClock
from gateway.store.schema import archive, queue
from tests.relay.test_relay import send
from tests.support import Sink

TIA = {"pack": "teens-in-ai"}
ORG = {"domains": ["safe.example"], "dsl": ["dsl@safe.example"]}

TO_SAM = (
    b"From: Alex Teacher <alex.teacher@safe.example>\r\n"
    b"To: Sam Taylor <sam.minor@home.example>\r\n"
    b"Cc: Jordan Ellis <jordan.ellis@safe.example>\r\n"
    b"Subject: Thursday's session\r\n"
    b"Message-ID: <e2e-1@safe.example>\r\n"
    b"\r\n"
    b"Hi Sam,\r\n\r\nThe session moves to room 4 on Thursday.\r\n\r\nKind regards,\r\nAlex\r\n"
)
RCPTS = ["sam.minor@home.example", "jordan.ellis@safe.example"]


def _part(report, content_type: str):
    return next(p for p in report.walk() if p.get_content_type() == content_type)


def test_a_message_to_a_child_without_a_parent_copied_comes_back_with_a_corrected_draft(
    start_gateway, sink: Sink
):
    """'When sending emails to young people under the age of 18, parents need to be copied at
    all times.' — nothing reaches Sam; Alex gets one bounce saying exactly whom to copy."""
    gateway = start_gateway(policy=TIA, organisation=ORG)
    send(gateway.port, TO_SAM, rcpts=RCPTS)
    [bounce] = sink.handler.wait_for(1)
    time.sleep(0.3)
    assert len(sink.handler.received) == 1
    assert bounce.rcpt_tos == ["alex.teacher@safe.example"]
    assert bounce.mail_from in ("", "<>")

    report = message_from_bytes(bounce.data, policy=policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["Auto-Submitted"] == "auto-replied"
    statuses = _part(report, "message/delivery-status").get_payload()[1:]
    assert {s["Final-Recipient"] for s in statuses} == {f"rfc822; {r}" for r in RCPTS}
    assert {s["Status"] for s in statuses} == {"5.7.1"}
    text = _part(report, "text/plain").get_content()
    assert "priya.shah@parents.example" in text
    assert "parents need to be copied at all times" in text
    html = _part(report, "text/html").get_content()
    assert "priya.shah@parents.example" in html

    draft_part = next(p for p in report.walk() if p.get_filename() == "corrected-draft.eml")
    draft = draft_part.get_payload()[0]
    assert "priya.shah@parents.example" in str(draft["Cc"])
    draft_bytes = draft.as_bytes(policy=policy.SMTP)
    rcpts = [a.strip() for a in f"{draft['To']},{draft['Cc']}".split(",")]
    send(gateway.port, draft_bytes, rcpts=[r.split("<")[-1].rstrip(">") for r in rcpts])
    got = sink.handler.wait_for(2)
    delivered = got[1]
    assert "sam.minor@home.example" in delivered.rcpt_tos
    assert "priya.shah@parents.example" in delivered.rcpt_tos
    with gateway.gateway.engine.connect() as conn:
        verdicts = [
            (r.verdict, r.findings)
            for r in conn.execute(
                select(archive.c.verdict, archive.c.findings)
                .where(archive.c.auth_user.is_(None))
                .where(archive.c.client_address != "gateway")
                .order_by(archive.c.id)
            )
        ]
    assert verdicts[0][0] == "reject"
    assert verdicts[-1] == ("deliver", [])


def test_monitor_mode_records_what_would_have_happened_but_delivers(start_gateway, sink: Sink):
    gateway = start_gateway(policy={**TIA, "mode": "monitor"}, organisation=ORG)
    send(gateway.port, TO_SAM, rcpts=RCPTS)
    [got] = sink.handler.wait_for(1)
    assert sorted(got.rcpt_tos) == sorted(RCPTS)
    with gateway.gateway.engine.connect() as conn:
        row = conn.execute(select(archive.c.verdict, archive.c.mode, archive.c.findings)).one()
    assert (row.verdict, row.mode) == ("reject", "monitor")
    assert [f["code"] for f in row.findings] == ["missing_required_cc"]


def test_a_pack_may_refuse_in_session_instead_of_bouncing(start_gateway, sink: Sink):
    gateway = start_gateway(policy=TIA, organisation={**ORG, "reject_in_session": True})
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.safe.example")
        client.mail("alex.teacher@safe.example")
        for rcpt in RCPTS:
            client.rcpt(rcpt)
        code, reply = client.data(TO_SAM)
    assert code == 550 and reply.startswith(b"5.7.1 ")
    assert b"priya.shah@parents.example" in reply
    with gateway.gateway.engine.connect() as conn:
        assert conn.execute(select(archive.c.verdict)).scalar_one() == "reject"
        assert conn.execute(select(queue.c.id)).all() == []


def _mail_and_notice(sink: Sink):
    """The message as delivered, and the notice to its sender (alex), in either order."""
    both = sink.handler.wait_for(2)
    [notice] = [m for m in both if m.rcpt_tos == ["alex.teacher@safe.example"]]
    [mail] = [m for m in both if m is not notice]
    return mail, notice


def test_mass_mail_is_delivered_with_recipients_hidden_and_archived_as_written(
    start_gateway, sink: Sink
):
    """'All mass emails will be sent in BCC to avoid revealing other participants' personal
    data.'"""
    gateway = start_gateway(policy=TIA, organisation=ORG)
    parents = [f"parent{i}@parents.example" for i in range(6)]
    raw = (
        f"From: alex.teacher@safe.example\r\nTo: {', '.join(parents)}\r\n"
        "Subject: Showcase evening\r\nMessage-ID: <mass@safe.example>\r\n\r\n"
        "Dear parents,\r\n\r\nThe showcase is on Friday at 6pm.\r\n\r\nKind regards,\r\nAlex\r\n"
    ).encode()
    send(gateway.port, raw, rcpts=parents)
    got, notice = _mail_and_notice(sink)
    assert sorted(got.rcpt_tos) == parents
    # The sender is told what was changed: their Sent folder shows every address in To.
    told = message_from_bytes(notice.data, policy=policy.default)
    assert told["Subject"] == "Sent with the addresses hidden: Showcase evening"
    content = told.get_body().get_content().replace("\r\n", "\n")
    assert "moved to Bcc" in content
    # A review: the To line ran into "Sent:" (a block tag at its end ate the line break).
    assert f"\nTo: {', '.join(parents)}\nSent: " in content
    delivered = message_from_bytes(got.data, policy=policy.default)
    assert delivered["To"] == "undisclosed-recipients:;"
    assert "parent0@parents.example" not in got.data.decode()
    with gateway.gateway.engine.connect() as conn:
        row = conn.execute(select(archive.c.verdict, archive.c.to_addrs)).one()
    assert row.verdict == "rewrite" and row.to_addrs == parents


def test_mass_mail_keeps_colleagues_visible_and_moves_only_outside_addresses_to_bcc(
    start_gateway, sink: Sink
):
    """bmt.toml's reading: "by moving external addresses to BCC". Participants must not see
    each other's contact details; a colleague (staff, in the directory) copied for
    accountability stays in sight. An address on the organisation's domain that is not staff
    (a pupil's school account) is hidden like the others, and so is one a plain header cannot
    carry."""
    gateway = start_gateway(policy=TIA, organisation=ORG)
    parents = [f"parent{i}@parents.example" for i in range(6)]
    colleague = "Jordan Ellis <jordan.ellis@safe.example>"
    others = ["pupil.account@safe.example", "zoë.staff@safe.example"]
    raw = (
        f"From: alex.teacher@safe.example\r\nTo: {', '.join(parents)}\r\n"
        f"Cc: {colleague}, {', '.join(others)}\r\nSubject: Showcase evening\r\n"
        "Message-ID: <mass2@safe.example>\r\n\r\n"
        "Dear parents,\r\n\r\nThe showcase is on Friday at 6pm.\r\n\r\nKind regards,\r\nAlex\r\n"
    ).encode()
    send(gateway.port, raw, rcpts=[*parents, "jordan.ellis@safe.example", others[0]])
    got, _ = _mail_and_notice(sink)
    assert sorted(got.rcpt_tos) == sorted([*parents, "jordan.ellis@safe.example", others[0]])
    delivered = message_from_bytes(got.data, policy=policy.default)
    assert delivered["To"] == "undisclosed-recipients:;"
    assert delivered["Cc"] == colleague
    text = got.data.decode("utf-8")
    assert "parents.example" not in text and "pupil.account" not in text and "zoë" not in text


def test_out_of_hours_mail_is_held_and_the_sender_told_when_it_will_go(start_gateway, sink: Sink):
    """Thread and Press: 'Staff will never contact children or young people directly outside
    of normal office hours' — held until Monday 09:00, the sender told so."""
    saturday = FixedClock(datetime(2026, 11, 28, 11, 0, tzinfo=UTC))
    gateway = start_gateway(clock=saturday, policy={"pack": "thread-and-press"}, organisation=ORG)
    send(gateway.port, TO_SAM, rcpts=RCPTS)
    [notice] = sink.handler.wait_for(1)
    assert notice.rcpt_tos == ["alex.teacher@safe.example"]
    body = message_from_bytes(notice.data, policy=policy.default).get_body().get_content()
    assert "Monday 30 November 2026, 09:00" in body
    with gateway.gateway.engine.connect() as conn:
        held = conn.execute(
            select(queue.c.not_before, queue.c.status).where(queue.c.kind == "deliver")
        ).one()
    assert held.status == "queued"
    assert held.not_before == datetime(2026, 11, 30, 9, 0)  # 09:00 GMT, stored as UTC


def test_no_bounce_goes_to_the_null_sender(start_gateway, sink: Sink):
    gateway = start_gateway(policy=TIA, organisation=ORG)
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("mta.safe.example")
        client.mail("")
        client.rcpt("sam.minor@home.example")
        code, reply = client.data(TO_SAM.replace(b"Message-ID: <e2e-1", b"Message-ID: <e2e-null"))
    assert code == 550 and reply.startswith(b"5.7.1")
    time.sleep(0.3)
    assert sink.handler.received == []


def test_a_notice_that_comes_back_through_the_relay_causes_no_loop(start_gateway, sink: Sink):
    """A forged 'gateway' header buys no exemption, and a null sender never gets a notice."""
    gateway = start_gateway(policy=TIA, organisation=ORG)
    own = b"X-Safeguard-Generated: policy-bounce\r\nAuto-Submitted: auto-replied\r\n" + TO_SAM
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("mta.safe.example")
        client.sendmail("", ["alex.teacher@safe.example"], own)  # a notice to staff: delivered
        client.mail("")
        client.rcpt("sam.minor@home.example")
        code, _ = client.data(own.replace(b"<e2e-1@", b"<e2e-2@"))
    assert code == 550
    [got] = sink.handler.wait_for(1)
    time.sleep(0.3)
    assert len(sink.handler.received) == 1
    assert got.rcpt_tos == ["alex.teacher@safe.example"]
