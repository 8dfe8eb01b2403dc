"""What goes wrong upstream or on the wire loses nothing that got a 250."""

from __future__ import annotations

import socket
import time
from email import message_from_bytes, policy

from sqlalchemy import func, select

from gateway.store.schema import archive, queue
from tests.relay.test_relay import MESSAGE, send
from tests.support import Sink


def _statuses(gateway) -> list[str]:
    with gateway.gateway.engine.connect() as conn:
        return [r.status for r in conn.execute(select(queue.c.status).order_by(queue.c.id))]


def test_mail_queued_while_upstream_is_down_is_delivered_when_it_returns(start_gateway, sink: Sink):
    port = sink.port
    sink.stop()
    gateway = start_gateway()
    for i in range(5):
        send(gateway.port, MESSAGE.replace(b"thursday-1@", f"down-{i}@".encode()))
    time.sleep(1.0)  # several failed attempts against the closed port
    assert set(_statuses(gateway)) <= {"queued", "sending"}
    revived = Sink(port).start()
    try:
        got = revived.handler.wait_for(5)
        assert sorted(r.message_id for r in got) == sorted(
            f"down-{i}@safe.example" for i in range(5)
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and set(_statuses(gateway)) != {"delivered"}:
            time.sleep(0.05)
        assert set(_statuses(gateway)) == {"delivered"}
    finally:
        revived.stop()


def test_a_temporary_refusal_is_retried_and_then_delivered(start_gateway, sink: Sink):
    answers = iter(["451 4.3.2 try later", "451 4.3.2 try later"])
    sink.handler.data_answer = lambda: next(answers, None)
    gateway = start_gateway()
    send(gateway.port)
    [got] = sink.handler.wait_for(1)
    assert got.message_id == "thursday-1@safe.example"
    with gateway.gateway.engine.connect() as conn:
        assert conn.execute(select(queue.c.attempts)).scalar_one() == 2


def test_a_permanent_refusal_becomes_a_bounce_to_the_sender(start_gateway, sink: Sink):
    sink.handler.rcpt_answer = lambda rcpt: (
        "550 5.1.1 <sam.minor@home.example>: no such user" if rcpt.startswith("sam") else None
    )
    gateway = start_gateway()
    send(gateway.port)
    delivered, bounce = sink.handler.wait_for(2)
    assert delivered.rcpt_tos == ["priya.shah@parents.example"]
    assert bounce.mail_from in ("", "<>") and bounce.rcpt_tos == ["alex.teacher@safe.example"]
    report = message_from_bytes(bounce.data, policy=policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["Auto-Submitted"] == "auto-replied"
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    fields = status.get_payload()[1]
    assert fields["Final-Recipient"] == "rfc822; sam.minor@home.example"
    assert fields["Status"] == "5.1.1"
    assert fields["Action"] == "failed"
    text = next(p for p in report.walk() if p.get_content_type() == "text/plain").get_content()
    assert "sam.minor@home.example" in text and "Thursday's session" in text
    original = next(p for p in report.walk() if p.get_content_type() == "message/rfc822")
    assert original.get_payload()[0]["Message-ID"] == "<thursday-1@safe.example>"


def test_a_bounce_that_cannot_be_delivered_is_not_bounced_again(start_gateway, sink: Sink):
    sink.handler.rcpt_answer = lambda rcpt: "550 5.1.1 no such user"
    gateway = start_gateway()
    send(gateway.port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _statuses(gateway) != ["failed", "failed"]:
        time.sleep(0.05)
    assert _statuses(gateway) == ["failed", "failed"]
    time.sleep(0.3)
    assert len(_statuses(gateway)) == 2


def test_mail_that_outlives_the_retry_window_is_bounced(start_gateway, sink: Sink):
    sink.handler.rcpt_answer = lambda rcpt: (
        "450 4.2.0 mailbox busy" if rcpt.startswith("sam") else None
    )
    gateway = start_gateway(delivery={"lifetime": 1.0})
    send(gateway.port)
    delivered, bounce = sink.handler.wait_for(2, timeout=20)
    assert delivered.rcpt_tos == ["priya.shah@parents.example"]
    report = message_from_bytes(bounce.data, policy=policy.default)
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    assert status.get_payload()[1]["Status"] == "4.4.7"


def test_a_client_that_disconnects_mid_data_leaves_nothing_half_done(start_gateway, sink: Sink):
    gateway = start_gateway()
    with socket.create_connection(("127.0.0.1", gateway.port)) as raw, raw.makefile("rb") as reader:
        reader.readline()
        for line in (
            b"EHLO client.safe.example",
            b"MAIL FROM:<alex.teacher@safe.example>",
            b"RCPT TO:<sam.minor@home.example>",
            b"DATA",
        ):
            raw.sendall(line + b"\r\n")
            while reader.readline()[3:4] == b"-":
                pass
        raw.sendall(b"From: alex.teacher@safe.example\r\nSubject: half\r\n\r\nhalf a messa")
    send(gateway.port)  # the gateway is still fine
    sink.handler.wait_for(1)
    with gateway.gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(archive)).scalar_one() == 1


SMUGGLE = (
    b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\nSubject: smuggle\r\n"
    b"Message-ID: <smuggle@safe.example>\r\n\r\nbefore\n.\nMAIL FROM:<evil@safe.example>\n"
    b"RCPT TO:<victim@elsewhere.example>\nDATA\nsmuggled\n.\r\nafter\r\n"
)


def test_smuggled_end_of_data_sequences_are_never_re_emitted_upstream(start_gateway, sink: Sink):
    gateway = start_gateway()
    with socket.create_connection(("127.0.0.1", gateway.port)) as raw, raw.makefile("rb") as reader:
        reader.readline()
        for line in (
            b"EHLO client.safe.example",
            b"MAIL FROM:<alex.teacher@safe.example>",
            b"RCPT TO:<sam.minor@home.example>",
            b"DATA",
        ):
            raw.sendall(line + b"\r\n")
            while reader.readline()[3:4] == b"-":
                pass
        raw.sendall(SMUGGLE + b".\r\n")
        assert reader.readline().startswith(b"250 2.0.0")
        raw.sendall(b"QUIT\r\n")
    [got] = sink.handler.wait_for(1)
    time.sleep(0.3)
    assert len(sink.handler.received) == 1
    assert got.rcpt_tos == ["sam.minor@home.example"]
    # The would-be commands arrived as lines of the one message (the dot was stuffed on the wire).
    assert b"before\r\n.\r\nMAIL FROM:<evil@safe.example>\r\n" in got.data


MALFORMED = {
    "broken MIME": (
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\nSubject: broken\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="nope\r\n\r\n'
        b"--nope\r\nContent-Type: text/plain\r\n\r\nno closing boundary\r\n"
    ),
    "8-bit headers": (
        b"From: Ren\xe9e <alex.teacher@safe.example>\r\nTo: sam.minor@home.example\r\n"
        b"Subject: caf\xe9 \xff\xfe\r\n\r\nbody \xe9\r\n"
    ),
    "missing From": b"To: sam.minor@home.example\r\nSubject: who sent this\r\n\r\nbody\r\n",
    "no headers at all": b"just a line of text\r\n",
}


def test_malformed_messages_are_archived_and_relayed(start_gateway, sink: Sink):
    gateway = start_gateway()
    for name, raw in MALFORMED.items():
        reply = send(gateway.port, raw, rcpts=["sam.minor@home.example"])
        assert reply.startswith("2.0.0"), name
    got = sink.handler.wait_for(len(MALFORMED))
    assert len(got) == len(MALFORMED)
    with gateway.gateway.engine.connect() as conn:
        rows = conn.execute(select(archive.c.evaluation)).all()
    assert len(rows) == len(MALFORMED)


def test_a_message_nested_too_deep_is_refused_with_a_clear_reply(start_gateway, sink: Sink):
    gateway = start_gateway()
    body = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
        for i in range(150)
    )
    raw = (
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\nMIME-Version: 1.0\r\n"
        + body
    )
    import smtplib

    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.safe.example")
        client.mail("alex.teacher@safe.example")
        client.rcpt("sam.minor@home.example")
        code, reply = client.data(raw)
    assert code == 554 and reply.startswith(b"5.6.0")


def test_a_send_that_stalls_past_its_lease_is_stopped_and_sent_once(start_gateway):
    """The lease says when anyone may send an entry again: a send still under way then could
    cross that second send. Upstream stalls before DATA on the first try; the gateway stops
    that try before its lease (3 s here) ends, and the retry delivers the message once."""
    import asyncio

    from aiosmtpd.controller import Controller

    from tests.support import free_port

    class Stalling:
        def __init__(self) -> None:
            self.rcpts = 0
            self.messages: list[bytes] = []

        async def handle_RCPT(self, server, session, envelope, address, options):
            self.rcpts += 1
            if self.rcpts == 1:
                await asyncio.sleep(4.5)  # longer than the lease, shorter than a timeout
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope.original_content)
            return "250 OK"

    handler = Stalling()
    upstream = Controller(handler, hostname="127.0.0.1", port=free_port())
    upstream.start()
    try:
        gateway = start_gateway(upstream=f"smtp://127.0.0.1:{upstream.port}", delivery={"lease": 3})
        send(gateway.port, rcpts=["priya.shah@parents.example"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _statuses(gateway) != ["delivered"]:
            time.sleep(0.1)
        assert _statuses(gateway) == ["delivered"]
        time.sleep(5)  # the stalled first session has long finished its sleep
        assert len(handler.messages) == 1
    finally:
        upstream.stop()
