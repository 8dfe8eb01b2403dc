"""Upstream transports: direct MX delivery, and what a smarthost session does with addresses
and refusals that are not the message's."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from gateway.config import UpstreamSettings
from gateway.delivery.transports import (
    DnsUnavailable,
    MaildirTransport,
    MxTransport,
    SmtpTransport,
)
from tests.support import Sink, SinkHandler, free_port


def test_mx_delivery_tries_hosts_in_preference_order_and_groups_by_domain(sink: Sink):
    """DNS cannot be asked here; the resolver is the one part replaced. The first MX is down,
    so the second (the sink) takes the mail; an unknown domain is a permanent failure."""
    dead = free_port()
    asked: list[str] = []

    async def resolver(domain: str) -> list[tuple[str, int]]:
        asked.append(domain)
        if domain == "nowhere.example":
            return []
        return [("127.0.0.1", dead), ("127.0.0.1", sink.port)]

    transport = MxTransport(UpstreamSettings(scheme="mx", timeout=5), resolver)
    body = b"From: a@safe.example\r\nSubject: mx\r\n\r\nhello\r\n"
    outcomes = asyncio.run(
        transport.send(
            "a@safe.example", ["x@home.example", "y@home.example", "z@nowhere.example"], body
        )
    )
    assert sorted(asked) == ["home.example", "nowhere.example"]
    assert outcomes["x@home.example"].delivered and outcomes["y@home.example"].delivered
    assert outcomes["z@nowhere.example"].permanent
    [got] = sink.handler.wait_for(1)
    assert sorted(got.rcpt_tos) == ["x@home.example", "y@home.example"]


def test_dns_that_does_not_answer_defers_and_a_domain_that_does_not_exist_bounces():
    """A resolver timeout says nothing of the domain: try again later (4.4.3). Only "no such
    domain" (or a null MX) is the domain's answer, and permanent."""

    async def resolver(domain: str) -> list[tuple[str, int]]:
        if domain == "slow-dns.example":
            raise DnsUnavailable("LifetimeTimeout")
        return []

    transport = MxTransport(UpstreamSettings(scheme="mx", timeout=5), resolver)
    outcomes = asyncio.run(
        transport.send("a@safe.example", ["x@slow-dns.example", "y@gone.example"], b"Hi\r\n")
    )
    assert (
        outcomes["x@slow-dns.example"].code == 451
        and "4.4.3" in outcomes["x@slow-dns.example"].text
    )
    assert outcomes["y@gone.example"].permanent


def test_an_international_domain_goes_as_a_labels_and_the_next_message_is_unharmed():
    """The relay accepts `x@bücher.example` (SMTPUTF8); to an upstream without SMTPUTF8 the
    domain goes as its A-labels, and a non-ASCII local part is refused for that recipient alone
    (RFC 6531: 5.6.7). The connection is left clean for the next message."""
    handler = SinkHandler()
    upstream = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    upstream.start()
    transport = SmtpTransport(
        UpstreamSettings(scheme="smtp", host="127.0.0.1", port=upstream.port, timeout=5)
    )

    async def both() -> tuple[dict, dict]:
        try:
            first = await transport.send(
                "alex.teacher@safe.example",
                ["ok@home.example", "x@bücher.example", "josé@home.example"],
                b"Subject: 1\r\n\r\nHi\r\n",
            )
            second = await transport.send(
                "dana.lee@safe.example", ["other@home.example"], b"Subject: 2\r\n\r\nHi\r\n"
            )
            return first, second
        finally:
            await transport.close()

    try:
        first, second = asyncio.run(both())
    finally:
        upstream.stop()
    assert first["ok@home.example"].delivered and first["x@bücher.example"].delivered
    assert first["josé@home.example"].permanent and "5.6.7" in first["josé@home.example"].text
    assert second["other@home.example"].delivered
    got = handler.wait_for(2)
    assert got[0].rcpt_tos == ["ok@home.example", "x@xn--bcher-kva.example"]
    assert got[1].mail_from == "dana.lee@safe.example"


def test_an_upstream_with_smtputf8_gets_the_address_as_written():
    handler = SinkHandler()
    upstream = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=True)
    upstream.start()
    try:
        transport = SmtpTransport(
            UpstreamSettings(scheme="smtp", host="127.0.0.1", port=upstream.port)
        )

        async def one() -> dict:
            try:
                return await transport.send(
                    "alex.teacher@safe.example", ["josé@home.example"], b"Subject: 1\r\n\r\nHi\r\n"
                )
            finally:
                await transport.close()

        assert asyncio.run(one())["josé@home.example"].delivered
        [got] = handler.wait_for(1)
        assert got.rcpt_tos == ["josé@home.example"]
    finally:
        upstream.stop()


# What an upstream says, command by command, that refuses the session rather than a message.
REFUSING = {
    "greeting": {"": b"554 5.3.2 Not accepting mail from you today\r\n"},
    "password": {
        "": b"220 upstream.example ESMTP\r\n",
        "EHLO": b"250-upstream.example\r\n250 AUTH PLAIN LOGIN\r\n",
        "AUTH": b"535 5.7.8 Authentication credentials invalid\r\n",
        "QUIT": b"221 Bye\r\n",
    },
}


@pytest.mark.parametrize("refusal", sorted(REFUSING))
def test_an_upstream_refusing_the_session_defers_every_message_rather_than_bouncing_it(
    refusal: str,
):
    """A 5xx greeting or a wrong upstream password is the connection's fault, not the
    message's (Postfix: smtp_skip_5xx_greeting, smtp_sasl_auth_soft_bounce): the mail waits
    while IT puts it right, instead of every sender getting a bounce."""
    script = REFUSING[refusal]
    commands: list[str] = []
    sessions: list[asyncio.Task] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sessions.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            writer.write(script[""])
            while script[""].startswith(b"2") and (line := await reader.readline()):
                verb = line.split(b" ", 1)[0].strip().decode().upper()
                commands.append(verb)
                writer.write(script.get(verb, b"502 5.5.1 Not here\r\n"))
                await writer.drain()
        finally:
            writer.close()

    async def one() -> dict:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = SmtpTransport(
            UpstreamSettings(
                scheme="smtp",
                host="127.0.0.1",
                port=port,
                timeout=5,
                username="relay@safe.example",
                password="expired",
            )
        )
        try:
            return await transport.send(
                "alex.teacher@safe.example", ["x@home.example"], b"Subject: 1\r\n\r\nHi\r\n"
            )
        finally:
            await transport.close()
            server.close()
            await asyncio.wait_for(asyncio.gather(*sessions), 5)  # they see the client go

    outcome = asyncio.run(one())["x@home.example"]
    assert outcome.code == 451 and not outcome.permanent
    if refusal == "password":
        assert "AUTH" in commands and "MAIL" not in commands


def test_a_maildir_send_stopped_mid_write_delivers_nothing(tmp_path, monkeypatch):
    """A send stopped while its thread writes is recorded as not sent (and retried): the
    thread must not put the file into new/ afterwards, or the retry delivers it twice."""
    from gateway.delivery import transports

    maildir = MaildirTransport(tmp_path / "maildir")
    fsync = os.fsync
    in_fsync = threading.Event()

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        time.sleep(0.5)  # the disk is slow: the send is stopped meanwhile
        fsync(fd)

    monkeypatch.setattr(transports.os, "fsync", slow_fsync)

    async def stop_mid_write() -> None:
        send = asyncio.create_task(maildir.send("a@safe.example", ["b@x.example"], b"Hi\r\n"))
        await asyncio.to_thread(in_fsync.wait, 5)
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send

    asyncio.run(stop_mid_write())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and list((tmp_path / "maildir" / "tmp").iterdir()):
        time.sleep(0.05)  # the thread finishes on its own
    assert list((tmp_path / "maildir" / "new").iterdir()) == []
    assert list((tmp_path / "maildir" / "tmp").iterdir()) == []
