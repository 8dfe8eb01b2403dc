"""The relay end to end: smtplib as the client, an aiosmtpd sink as upstream, a real database."""

from __future__ import annotations

import hashlib
import smtplib
import time
import zlib
from email import message_from_bytes, policy

from sqlalchemy import select

from gateway.store.schema import archive, queue
from tests.support import Sink

MESSAGE = (
    b"From: Alex Teacher <alex.teacher@safe.example>\r\n"
    b"To: Sam Taylor <sam.minor@home.example>\r\n"
    b"Cc: Priya Shah <priya.shah@parents.example>\r\n"
    b"Subject: Thursday's session\r\n"
    b"Message-ID: <thursday-1@safe.example>\r\n"
    b"Date: Mon, 23 Nov 2026 10:15:00 +0000\r\n"
    b"\r\n"
    b"Hi Sam,\r\n\r\nThe session moves to room 4 on Thursday.\r\n"
    b".A line that starts with a dot survives.\r\n\r\nKind regards,\r\nAlex\r\n"
)
RCPTS = ["sam.minor@home.example", "priya.shah@parents.example"]


def send(
    port: int,
    message: bytes = MESSAGE,
    *,
    sender: str = "alex.teacher@safe.example",
    rcpts: list[str] | None = None,
) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.safe.example")
        client.mail(sender)
        for rcpt in rcpts or RCPTS:
            code, reply = client.rcpt(rcpt)
            assert code == 250, reply
        code, reply = client.data(message)
        assert code == 250, reply
        return reply.decode()


def test_delivered_bytes_are_the_submitted_message_plus_our_received_line(
    start_gateway, sink: Sink
):
    gateway = start_gateway()
    reply = send(gateway.port)
    assert reply.startswith("2.0.0 Ok: queued as ")
    queue_id = reply.rsplit(" ", 1)[1]

    [got] = sink.handler.wait_for(1)
    assert got.mail_from == "alex.teacher@safe.example"
    assert sorted(got.rcpt_tos) == sorted(RCPTS)
    head, _, rest = got.data.partition(
        b"\r\n\tby gateway.safe.example (Safeguard Gateway) with ESMTP id "
    )
    assert head.startswith(b"Received: from client.safe.example ([127.0.0.1])")
    received_tail, _, body = rest.partition(b"\r\n")
    while body.startswith(b"\t"):  # folded continuation of the Received line
        body = body.partition(b"\r\n")[2]
    assert received_tail.startswith(queue_id.encode())
    assert body == MESSAGE

    # The sink has the message a moment before the worker's "delivered" commit lands.
    deadline = time.monotonic() + 10
    while True:
        with gateway.gateway.engine.connect() as conn:
            row = conn.execute(select(archive).where(archive.c.queue_id == queue_id)).one()
            entries = conn.execute(select(queue).where(queue.c.archive_id == row.id)).all()
        if [e.status for e in entries] == ["delivered"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert row.raw_sha256 == hashlib.sha256(MESSAGE).hexdigest()
    assert zlib.decompress(row.raw_gz) == MESSAGE
    assert row.from_addr == "alex.teacher@safe.example"
    assert row.to_addrs == ["sam.minor@home.example"]
    assert row.cc_addrs == ["priya.shah@parents.example"]
    assert row.subject == "Thursday's session"
    assert row.message_id == "thursday-1@safe.example"
    assert row.verdict == "deliver"
    assert [e.status for e in entries] == ["delivered"]


def test_a_resend_after_a_lost_reply_is_recognised_not_archived_twice(start_gateway, sink: Sink):
    gateway = start_gateway()
    first = send(gateway.port)
    second = send(gateway.port)
    assert second.startswith("2.0.0 Ok: already queued as " + first.rsplit(" ", 1)[1])
    sink.handler.wait_for(1)
    with gateway.gateway.engine.connect() as conn:
        assert len(conn.execute(select(archive.c.id)).all()) == 1


def test_a_message_without_message_id_or_date_gets_both(start_gateway, sink: Sink):
    gateway = start_gateway()
    bare = (
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Subject: hi\r\n\r\nHello\r\n"
    )
    reply = send(gateway.port, bare, rcpts=["sam.minor@home.example"])
    queue_id = reply.rsplit(" ", 1)[1]
    [got] = sink.handler.wait_for(1)
    parsed = message_from_bytes(got.data, policy=policy.default)
    assert parsed["Message-ID"] == f"<{queue_id}@gateway.safe.example>"
    assert parsed["Date"]
    assert got.data.endswith(bare)


def test_maildir_upstream_is_the_demo_default(start_gateway, tmp_path):
    maildir = tmp_path / "maildir"
    gateway = start_gateway(upstream=f"maildir://{maildir}")
    send(gateway.port)
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not list((maildir / "new").glob("*")):
        time.sleep(0.05)
    [path] = list((maildir / "new").glob("*"))
    content = path.read_bytes()
    assert content.startswith(b"Return-Path: <alex.teacher@safe.example>\nReceived: from ")
    assert content.endswith(MESSAGE.replace(b"\r\n", b"\n"))


def test_a_client_that_keeps_its_connection_sends_hundreds_of_messages_down_it(
    start_gateway, sink: Sink
):
    """Postfix as relayhost or content_filter reuses its connections. An admin's review found
    every one cut off with `421 4.7.0 RCPT sent too many times` after about a hundred
    messages: aiosmtpd counts commands per connection, not per message."""
    gateway = start_gateway()
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as client:
        client.ehlo("relay.safe.example")
        for n in range(250):
            message = MESSAGE.replace(b"Message-ID: <", f"Message-ID: <n{n}.".encode())
            refused = client.sendmail("alex.teacher@safe.example", RCPTS, message)
            assert refused == {}
            client.rset()
    assert len(sink.handler.wait_for(250)) == 250
