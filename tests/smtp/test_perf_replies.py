"""aiosmtpd writes each line of a multi-line reply on its own: EHLO's five to seven lines (by
what is offered) were a write, a segment and a wake-up of the client each. Ours sends a reply
in one write with its last line, and the lines are aiosmtpd's own."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP

from gateway.smtp.handler import GatewaySMTP
from tests.support import free_port


class _Serving(Controller):
    def __init__(self, protocol: type[SMTP]) -> None:
        super().__init__(Sink(), hostname="127.0.0.1", port=free_port(), auth_require_tls=False)
        self.protocol = protocol

    def factory(self) -> SMTP:
        return self.protocol(self.handler, **self.SMTP_kwargs)


@pytest.fixture
def serve() -> Iterator[object]:
    running: list[Controller] = []

    def start(protocol: type[SMTP]) -> tuple[str, int]:
        controller = _Serving(protocol)
        controller.start()
        running.append(controller)
        return controller.hostname, controller.port

    yield start
    for controller in running:
        controller.stop()


def _ehlo_reads(address: tuple[str, int]) -> list[bytes]:
    """What each read returned until EHLO's reply was complete (its last line, `250 `)."""
    with socket.create_connection(address, timeout=10) as sock:
        greeting = sock.recv(4096)
        assert greeting.startswith(b"220 ")
        sock.sendall(b"EHLO client.example\r\n")
        reads: list[bytes] = []
        while not any(line.startswith(b"250 ") for line in b"".join(reads).split(b"\r\n")):
            reads.append(sock.recv(65536))
        sock.sendall(b"QUIT\r\n")
        return reads


def test_the_ehlo_reply_arrives_whole_in_one_read(serve):
    """One write puts the reply in one segment: the client's first read returns all of it."""
    reads = _ehlo_reads(serve(GatewaySMTP))
    assert len(reads) == 1
    lines = reads[0].split(b"\r\n")[:-1]
    assert [line[:4] for line in lines] == [b"250-"] * (len(lines) - 1) + [b"250 "]


def test_the_ehlo_reply_says_what_aiosmtpds_own_says(serve):
    ours = b"".join(_ehlo_reads(serve(GatewaySMTP)))
    theirs = b"".join(_ehlo_reads(serve(SMTP)))
    assert ours == theirs
    assert b"250-8BITMIME\r\n" in ours and ours.endswith(b"250 HELP\r\n")
