"""Protocol probes with a real SMTP client, swaks (issue 7): pipelining abuse, end-of-data
smuggling, over-long lines, too many recipients, commands out of order, bare LF.

Every reply is checked against README "Replies" and gateway/smtp/replies.py. Upstream is a
hand-written server (tests/relay/wire.py) that keeps the exact bytes the gateway sends, so
"nothing smuggled upstream" is judged on the wire, not by a lenient parser.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.store.schema import archive
from tests.relay.wire import WireUpstream

pytestmark = pytest.mark.skipif(
    shutil.which("swaks") is None,
    reason="swaks is not installed (Debian package `swaks`; scripts/test installs it as root)",
)

ALEX = "alex.teacher@safe.example"
SAM = "sam.minor@home.example"
PRIYA = "priya.shah@parents.example"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Protocol probes: the database is not what they test, so SQLite only."""
    return f"sqlite:///{tmp_path / 'archive.db'}"


@pytest.fixture
def wire() -> Iterator[WireUpstream]:
    upstream = WireUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def gateway(wire: WireUpstream, start_gateway):
    return start_gateway(upstream=wire.url, server={"max_recipients": 3})


@dataclass
class Transcript:
    returncode: int
    text: str

    @property
    def replies(self) -> list[str]:
        """The server's final reply lines (`<-  ` accepted, `<** ` refused), in order."""
        return [
            line[4:]
            for line in self.text.splitlines()
            if line[:4] in ("<-  ", "<** ") and line[7:8] != "-"
        ]

    def sent_before_first_reply_to(self, command: str) -> list[str]:
        """What the client had sent between its `command` and the server's next reply."""
        lines = self.text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(f" -> {command}"))
        sent = []
        for line in lines[start:]:
            if line.startswith("<"):
                break
            sent.append(line[4:])
        return sent


def swaks(port: int, *args: str, data: bytes | None = None, tmp: Path | None = None) -> Transcript:
    command = [
        "swaks",
        "--server",
        f"127.0.0.1:{port}",
        "--helo",
        "client.safe.example",
        "--from",
        ALEX,
        "--timeout",
        "10",
        *args,
    ]
    if data is not None:
        assert tmp is not None
        path = tmp / "data.eml"
        path.write_bytes(data)
        # As given: no line-ending fix-up, no dot-stuffing, no terminator added.
        command += ["--data", f"@{path}", "--no-data-fixup"]
    done = subprocess.run(command, capture_output=True, timeout=30)
    return Transcript(done.returncode, done.stdout.decode("utf-8", "replace"))


def _archived_raw(gateway) -> list[bytes]:
    with gateway.gateway.engine.connect() as conn:
        return [zlib.decompress(r) for r in conn.execute(select(archive.c.raw_gz)).scalars()]


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _assert_clean_on_the_wire(wire: WireUpstream) -> None:
    """One transaction upstream, its DATA all CRLF, ended once, at the end."""
    [got] = wire.wait_for(1)
    time.sleep(0.3)  # anything smuggled would arrive as a second MAIL right behind it
    assert len(wire.transactions) == 1
    assert sum(1 for c in wire.commands if c[:4].upper() == b"MAIL") == 1
    assert b"\r" not in got.wire.replace(b"\r\n", b"") and b"\n" not in got.wire.replace(
        b"\r\n", b""
    ), "a bare CR or LF went upstream"
    assert got.wire.count(b"\r\n.\r\n") == 1 and got.wire.endswith(b"\r\n.\r\n")


# --- pipelining ------------------------------------------------------------------------------


class PipeliningProxy:
    """Between swaks and the gateway: adds PIPELINING to the EHLO reply, so swaks pipelines
    (the gateway does not offer it: a client that pipelines anyway is the abuse probed)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with self.listener:
            client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
        buffered = b""
        with client, server:
            while data := server.recv(65536):
                buffered += data
                lines, _, buffered = buffered.rpartition(b"\n")
                if lines:
                    client.sendall(
                        (lines + b"\n").replace(b"250 HELP\r\n", b"250-HELP\r\n250 PIPELINING\r\n")
                    )

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                server.sendall(data)
        except OSError:
            return


def test_swaks_pipelining_gets_every_reply_in_order_and_one_message(gateway, wire: WireUpstream):
    """Pipelining abuse: a client that sends MAIL, RCPT, RCPT and DATA without waiting (the
    gateway does not offer PIPELINING) is answered command by command, and one message goes
    upstream."""
    proxy = PipeliningProxy(gateway.port)
    transcript = swaks(
        proxy.port,
        "--pipeline",
        "--to",
        f"{SAM},{PRIYA}",
        "--header",
        f"Cc: {PRIYA}",
        "--header",
        "Message-ID: <pipelined@safe.example>",
    )
    assert transcript.returncode == 0, transcript.text
    # swaks really did pipeline: four commands went out before the first reply came back.
    assert transcript.sent_before_first_reply_to("MAIL FROM") == [
        f"MAIL FROM:<{ALEX}>",
        f"RCPT TO:<{SAM}>",
        f"RCPT TO:<{PRIYA}>",
        "DATA",
    ]
    assert transcript.replies[:2] == [
        "220 gateway.safe.example Safeguard Gateway",
        "250 PIPELINING",
    ]
    assert [r[:9] for r in transcript.replies[2:]] == [
        "250 2.1.0",
        "250 2.1.5",
        "250 2.1.5",
        "354 End d",
        "250 2.0.0",
        "221 Bye",
    ]
    _assert_clean_on_the_wire(wire)
    assert sorted(wire.transactions[0].rcpt_tos) == sorted([SAM, PRIYA])


def _raw_session(port: int, payload: bytes, *, wait_for_banner: bool) -> list[bytes]:
    """Write `payload` in one go (before the banner if asked), then read replies to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        if wait_for_banner:
            raw.recv(1024)
        raw.sendall(payload)
        received = b""
        while data := raw.recv(65536):
            received += data
    return [line for line in received.split(b"\r\n") if line and line[3:4] != b"-"]


SMUGGLED_COMMANDS = (
    b"MAIL FROM:<evil@safe.example>\r\nRCPT TO:<victim@elsewhere.example>\r\nDATA\r\n"
    b"Subject: smuggled\r\n\r\nsmuggled body\r\n"
)


def test_a_whole_session_in_one_write_is_one_message_and_carries_nothing_extra(
    gateway, wire: WireUpstream
):
    """Pipelining abuse on a raw socket: EHLO, MAIL, RCPT, DATA, the message and QUIT in one
    write, without waiting for any reply. Command-like lines inside the message stay message
    text; nothing else is relayed."""
    payload = (
        b"EHLO client.safe.example\r\n"
        + f"MAIL FROM:<{ALEX}>\r\nRCPT TO:<{SAM}>\r\nDATA\r\n".encode()
        + b"From: alex.teacher@safe.example\r\nSubject: one write\r\n"
        + b"Message-ID: <one-write@safe.example>\r\n\r\n"
        + SMUGGLED_COMMANDS
        + b".\r\nQUIT\r\n"
    )
    replies = _raw_session(gateway.port, payload, wait_for_banner=True)
    assert [r[:9] for r in replies] == [
        b"250 HELP",
        b"250 2.1.0",
        b"250 2.1.5",
        b"354 End d",
        b"250 2.0.0",
        b"221 Bye",
    ]
    _assert_clean_on_the_wire(wire)
    got = wire.transactions[0]
    assert got.rcpt_tos == [SAM]
    assert SMUGGLED_COMMANDS in got.content


def test_commands_before_the_banner_and_before_ehlo_are_refused_503_and_nothing_is_relayed(
    gateway, wire: WireUpstream
):
    """'MAIL before HELO → 503 5.5.1'. Everything is written at once, before the banner: the
    MAIL, RCPT and DATA are each refused, the message lines are not commands, and nothing is
    archived or relayed."""
    payload = (
        f"MAIL FROM:<{ALEX}>\r\nRCPT TO:<{SAM}>\r\nDATA\r\n".encode()
        + b"Subject: too early\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    )
    replies = _raw_session(gateway.port, payload, wait_for_banner=False)
    assert replies[0].startswith(b"220 ")
    assert replies[1:4] == [b"503 5.5.1 Error: send HELO first"] * 3
    assert all(r[:1] == b"5" for r in replies[4:-1]), replies
    assert replies[-1].startswith(b"221")
    time.sleep(0.3)
    assert wire.transactions == [] and _archived_raw(gateway) == []


# --- smuggling -------------------------------------------------------------------------------

SEQUENCES = {
    "lflf": b"\n.\n",
    "crcr": b"\r.\r",
    "lfcr": b"\n.\r",
    "lfcrlf": b"\n.\r\n",
    "crlflf": b"\r\n.\n",
    "crcrlf": b"\r.\r\n",
    "crlfcr": b"\r\n.\r",
    "nul-dot": b"\r\n\x00.\r\n",
}


@pytest.mark.parametrize("sequence", list(SEQUENCES.values()), ids=list(SEQUENCES))
def test_no_fake_end_of_data_smuggles_a_second_message_upstream(
    gateway, wire: WireUpstream, tmp_path: Path, sequence: bytes
):
    """Smuggling: a fake end-of-data followed by a second transaction. 'Nothing smuggled
    upstream — the sink must receive exactly one message, and the smuggled second message
    text stays inside the first message's body.' The archive keeps the bytes as received;
    upstream gets them with CRLF line ends and dot-stuffing."""
    data = (
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Subject: smuggle\r\nMessage-ID: <smuggle@safe.example>\r\n\r\n"
        b"before" + sequence + SMUGGLED_COMMANDS + b"smuggled end" + sequence + b"after\r\n.\r\n"
    )
    transcript = swaks(gateway.port, "--to", SAM, data=data, tmp=tmp_path)
    assert transcript.replies[-2].startswith("250 2.0.0 Ok: queued as "), transcript.text
    _assert_clean_on_the_wire(wire)
    got = wire.transactions[0]
    assert got.rcpt_tos == [SAM] and got.mail_from == ALEX
    # Received as sent (less the terminator, and a dot at a line start removed, RFC 5321
    # 4.5.2), then relayed as the same lines with CRLF.
    [raw] = _archived_raw(gateway)
    received = re.sub(rb"(?m)(?<=\r\n)\.", b"", data[: -len(b".\r\n")])
    assert raw == received
    assert got.content.endswith(_crlf(raw))
    assert b"MAIL FROM:<evil@safe.example>\r\n" in got.content


def test_bare_lf_is_kept_in_the_archive_and_sent_upstream_as_crlf(
    gateway, wire: WireUpstream, tmp_path: Path
):
    """'Bare LF and CR in message content are kept in the archive as received and normalised
    to CRLF (with dot-stuffing) on the way upstream.'"""
    data = (
        b"From: alex.teacher@safe.example\nTo: sam.minor@home.example\nSubject: bare\n"
        b"Message-ID: <bare-lf@safe.example>\n\nHi Sam,\n.\nroom 4\n\r\n.\r\n"
    )
    transcript = swaks(gateway.port, "--to", SAM, data=data, tmp=tmp_path)
    assert transcript.replies[-2].startswith("250 2.0.0 Ok: queued as "), transcript.text
    _assert_clean_on_the_wire(wire)
    [raw] = _archived_raw(gateway)
    assert raw == data[: -len(b".\r\n")]
    got = wire.transactions[0]
    assert got.content.endswith(_crlf(raw))
    assert b"Hi Sam,\r\n..\r\nroom 4\r\n" in got.wire  # the lone dot was stuffed on the wire


# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"y" * 998, "250 2.0.0"),  # RFC 5321 4.5.3.1.6: 1000 octets with the CRLF
        (b"." + b"y" * 997, "250 2.0.0"),  # 1001 octets once dot-stuffed: still in bounds
        (b"y" * 1000, "500 5.5.2"),
        (b"y" * 5000, "500 5.5.2"),
    ],
    ids=["998", "998-dot-stuffed", "1000", "5000"],
)
def test_a_message_line_over_the_limit_is_refused_500_5_5_2(
    gateway, wire: WireUpstream, tmp_path: Path, line: bytes, reply: str
):
    """'line over 1000 bytes → 500 5.5.2'; a line of exactly the RFC's length passes."""
    stuffed = b"." + line if line.startswith(b".") else line
    data = b"Subject: long line\r\n\r\nbefore\r\n" + stuffed + b"\r\nafter\r\n.\r\n"
    transcript = swaks(gateway.port, "--to", SAM, data=data, tmp=tmp_path)
    assert transcript.replies[-2][:9] == reply, transcript.text
    if reply.startswith("250"):
        [got] = wire.wait_for(1)
        assert b"\r\n" + line + b"\r\n" in got.content
    else:
        time.sleep(0.3)
        assert wire.transactions == [] and _archived_raw(gateway) == []


def test_a_command_line_over_1000_bytes_is_refused_500_5_5_2(gateway):
    """'line over 1000 bytes → 500 5.5.2' - for a command line too (a 1,200-byte RCPT TO)."""
    transcript = swaks(gateway.port, "--to", "x" * 1200 + "@home.example")
    refused = [r for r in transcript.replies if r.startswith("500")]
    assert refused and refused[0].startswith("500 5.5.2"), transcript.text


def test_swaks_with_too_many_recipients_gets_452_4_5_3_and_the_rest_are_delivered(
    gateway, wire: WireUpstream
):
    """'too many recipients → 452 4.5.3': the fourth and fifth of five (max_recipients = 3)
    are refused for now; the first three get the message."""
    rcpts = [f"pupil{i}@home.example" for i in range(5)]
    transcript = swaks(gateway.port, "--to", ",".join(rcpts))
    assert [r[:9] for r in transcript.replies[2:]] == [
        "250 2.1.0",
        *["250 2.1.5"] * 3,
        *["452 4.5.3"] * 2,
        "354 End d",
        "250 2.0.0",
        "221 Bye",
    ], transcript.text
    [got] = wire.wait_for(1)
    assert got.rcpt_tos == rcpts[:3]


def test_a_client_dripping_its_message_is_cut_off_at_data_timeout(
    start_gateway, wire: WireUpstream
):
    """`[server] data_timeout`: a client that sends a line now and then, never silent for
    `timeout`, gets `421 4.4.2` when DATA has taken that long, and the connection is closed.
    Nothing was acknowledged, so nothing is kept."""
    running = start_gateway(upstream=wire.url, server={"data_timeout": 0.6})
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as raw:
        replies = raw.makefile("rb")
        assert replies.readline().startswith(b"220")
        for command in (b"HELO slow.example", b"MAIL FROM:<alex.teacher@safe.example>"):
            raw.sendall(command + b"\r\n")
            assert replies.readline()[:3] in (b"250",)
        raw.sendall(b"RCPT TO:<volunteer@elsewhere.example>\r\nDATA\r\n")
        assert replies.readline().startswith(b"250")
        assert replies.readline().startswith(b"354")
        started = time.monotonic()
        for n in range(6):  # 1.2 s in all, a line every 0.2 s
            try:
                raw.sendall(f"line {n}\r\n".encode())
            except OSError:
                break
            time.sleep(0.2)
        assert replies.readline().startswith(b"421 4.4.2")
        assert replies.readline() == b""  # closed
        assert time.monotonic() - started < 5
    assert _archived_raw(running) == []
    assert wire.transactions == []


def test_timeout_is_silence_while_data_arrives_and_never_cuts_off_the_answer(
    start_gateway, wire: WireUpstream
):
    """`[server] timeout` is how long a client may stay silent: a message that keeps arriving
    for longer than that is taken, and a policy stage slower than it still gets its answer
    to the client (aiosmtpd's own timer ran from the DATA command on, and cut both off)."""
    running = start_gateway(upstream=wire.url, server={"timeout": 0.6, "data_timeout": 30})
    pipeline = running.gateway.pipeline
    prepare = pipeline.prepare

    def slow(submission):  # runs on the relay's loop: nothing else happens meanwhile
        time.sleep(0.9)
        return prepare(submission)

    pipeline.prepare = slow
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as raw:
        replies = raw.makefile("rb")
        assert replies.readline().startswith(b"220")
        raw.sendall(b"HELO slow.example\r\nMAIL FROM:<alex.teacher@safe.example>\r\n")
        assert replies.readline().startswith(b"250")
        assert replies.readline().startswith(b"250")
        raw.sendall(b"RCPT TO:<volunteer@elsewhere.example>\r\nDATA\r\n")
        assert replies.readline().startswith(b"250")
        assert replies.readline().startswith(b"354")
        raw.sendall(b"From: alex.teacher@safe.example\r\nSubject: Slowly\r\n\r\n")
        for _ in range(8):  # 1.6 s in all: a piece of ~1 kB every 0.2 s
            raw.sendall(b"Rehearsal notes. " * 50 + b"\r\n")
            time.sleep(0.2)
        raw.sendall(b".\r\n")
        assert replies.readline().startswith(b"250")
        raw.sendall(b"QUIT\r\n")
        assert replies.readline().startswith(b"221")
    assert len(wire.wait_for(1)) == 1
