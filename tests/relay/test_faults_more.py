"""More of issue 7's faults: an upstream that drops the connection during DATA, a disk that
fills up under the SQLite archive, and SIGTERM with a session in flight."""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import random
import signal
import smtplib
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from gateway.service import Gateway
from gateway.store.schema import archive, queue
from tests.relay.serving import ServeProcess, write_config
from tests.relay.test_relay import MESSAGE, RCPTS, send
from tests.relay.wire import CLOSE_AFTER_DOT, CLOSE_MID_BODY, OK, WireUpstream
from tests.support import RunningGateway, Sink, free_port, make_settings


def _queue_rows(engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [
            (r.status, r.attempts)
            for r in conn.execute(select(queue.c.status, queue.c.attempts).order_by(queue.c.id))
        ]


# --- 2. upstream closing mid-DATA ------------------------------------------------------------


def _big(message_id: str, kilobytes: int = 300) -> bytes:
    """MESSAGE with a body big enough that the gateway is still writing when upstream hangs up."""
    line = b"The session moves to room 4 on Thursday; bring the consent form and your kit.\r\n"
    body = line * (kilobytes * 1024 // len(line))
    return MESSAGE.replace(b"thursday-1@", message_id.encode() + b"@") + body


@pytest.fixture
def wire() -> Iterator[WireUpstream]:
    upstream = WireUpstream().start()
    yield upstream
    upstream.stop()


@pytest.mark.parametrize("fault", [CLOSE_MID_BODY, CLOSE_AFTER_DOT])
def test_an_upstream_that_hangs_up_during_data_gets_the_message_again_later(
    wire: WireUpstream, start_gateway, fault: str
):
    """'The gateway must keep the message queued, retry, and deliver once upstream is sane
    again; nothing lost.' Upstream takes EHLO/MAIL/RCPT/DATA, then twice closes the connection
    - partway through the body, or after the final dot without replying - and then behaves."""
    wire.faults = [fault, fault]
    gateway = start_gateway(upstream=wire.url)
    message = _big(f"hangup-{fault}")
    send(gateway.port, message)
    [got] = wire.wait_for(1)
    assert [t.fault for t in wire.transactions] == [fault, fault, OK]
    assert sorted(got.rcpt_tos) == sorted(RCPTS)
    assert got.mail_from == "alex.teacher@safe.example"
    assert got.content.endswith(message), "the delivered copy is not the whole message"
    assert got.content.startswith(b"Received: from client.safe.example")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _queue_rows(gateway.gateway.engine)[0][0] != "delivered":
        time.sleep(0.05)
    # Two failed attempts recorded, then delivered - and delivered once.
    assert _queue_rows(gateway.gateway.engine) == [("delivered", 2)]
    time.sleep(0.5)
    assert len(wire.accepted()) == 1
    assert wire.connections >= 3  # each failure cost the connection; a new one was opened


# --- 4. the disk fills up under the SQLite archive -------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MB filesystem (tmpfs), for the archive to fill; skipped where we may not mount."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
            check=True,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here: {exc}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(path: Path) -> None:
    """Write `path` until the filesystem says ENOSPC."""
    with open(path, "ab", buffering=0) as ballast:
        for chunk in (1 << 20, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    ballast.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        with contextlib.suppress(OSError):
            os.fsync(ballast.fileno())


def _noise_message(n: int, rng: random.Random) -> bytes:
    """~64 kB that compresses badly, as photos and attachments do."""
    noise = base64.encodebytes(rng.randbytes(48 * 1024)).replace(b"\n", b"\r\n")
    return (
        f"From: alex.teacher@safe.example\r\nTo: pupil{n}@home.example\r\nSubject: full {n}\r\n"
        f"Message-ID: <full-{n}@safe.example>\r\n\r\n"
    ).encode() + noise


def _try_send(port: int, n: int, rng: random.Random) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.safe.example")
        code, reply = client.mail("alex.teacher@safe.example")
        if code != 250:
            return code, reply
        client.rcpt(f"pupil{n}@home.example")
        return client.data(_noise_message(n, rng))


def _archived(engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(archive.c.message_id)).scalars())


def test_a_full_disk_is_answered_4xx_never_250_and_mail_flows_again_after(
    tmp_path: Path, small_disk: Path, sink: Sink
):
    """'The client gets a 4xx (452 4.3.1 or 451 4.3.0), never a 250 for a message not stored;
    after space returns, mail flows again; nothing previously acknowledged lost.' The SQLite
    archive lives on an 8 MB filesystem that a ballast file fills to the last byte; the
    free-disk check at MAIL FROM is off, so it is the write itself that fails."""
    rng = random.Random(4)
    settings = make_settings(
        tmp_path, f"sqlite:///{small_disk / 'archive.db'}", upstream=sink.url, delivery={"lease": 2}
    )
    acked: set[str] = set()
    with RunningGateway(Gateway(settings)) as gateway:
        engine = gateway.gateway.engine
        for n in range(3):
            code, reply = _try_send(gateway.port, n, rng)
            assert code == 250, reply
            acked.add(f"full-{n}@safe.example")

        _fill(small_disk / "ballast")
        refused: list[tuple[int, bytes]] = []
        for n in range(3, 40):
            code, reply = _try_send(gateway.port, n, rng)
            if code == 250:
                acked.add(f"full-{n}@safe.example")
                # A 250 while the disk is full is fine only for what really was stored.
                assert f"full-{n}@safe.example" in _archived(engine), f"250 but not stored: {n}"
            else:
                refused.append((code, reply))
                if len(refused) >= 3:
                    break
        assert refused, "the full disk never refused a message"
        assert all(
            (code, reply[:5]) in {(451, b"4.3.0"), (452, b"4.3.1")} for code, reply in refused
        ), refused

        (small_disk / "ballast").unlink()
        for n in range(100, 103):
            code, reply = _try_send(gateway.port, n, rng)
            assert code == 250, reply
            acked.add(f"full-{n}@safe.example")

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if acked <= {r.message_id for r in list(sink.handler.received)} and {
                status for status, _ in _queue_rows(engine)
            } == {"delivered"}:
                break
            time.sleep(0.1)
        archived = _archived(engine)
    delivered = {r.message_id for r in list(sink.handler.received)}
    assert not acked - delivered, f"acknowledged, never delivered: {sorted(acked - delivered)}"
    assert set(archived) == acked, "the archive holds exactly what was acknowledged"
    assert set(archived.values()) == {1}


# --- 5. SIGTERM with a session in flight -----------------------------------------------------


def _command(raw: socket.socket, reader, line: bytes) -> bytes:
    raw.sendall(line + b"\r\n")
    while (reply := reader.readline())[3:4] == b"-":
        pass
    return reply


def test_sigterm_lets_the_session_in_flight_finish_and_then_exits_0(tmp_path: Path, sink: Sink):
    """'safeguard serve: relay + delivery worker until SIGTERM/SIGINT (sessions in flight
    finish).' A client has sent DATA and half its message when the process gets SIGTERM: no
    new connection is accepted, the client sends the rest and gets its 250, the message is
    archived and delivered, and the process exits 0."""
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    config = write_config(
        tmp_path / "gateway.toml", port=port, upstream=sink.url, database_url=database_url
    )
    gateway = ServeProcess(config, port, tmp_path / "gateway.log").start()
    try:
        message = MESSAGE.replace(b"thursday-1@", b"in-flight@")
        half = len(message) // 2
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            raw.makefile("rb") as reader,
        ):
            assert reader.readline().startswith(b"220")
            assert _command(raw, reader, b"EHLO client.safe.example").startswith(b"250")
            assert _command(raw, reader, b"MAIL FROM:<alex.teacher@safe.example>")[:3] == b"250"
            assert _command(raw, reader, b"RCPT TO:<sam.minor@home.example>")[:3] == b"250"
            assert _command(raw, reader, b"DATA")[:3] == b"354"
            raw.sendall(message[:half])

            gateway.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            assert gateway.process.poll() is None, "serve exited with a session in flight"

            raw.sendall(message[half:] + b".\r\n")
            reply = reader.readline()
            assert reply.startswith(b"250 2.0.0 Ok: queued as "), reply
            assert _command(raw, reader, b"QUIT").startswith(b"221")
        assert gateway.process.wait(15) == 0, gateway.tail()
    finally:
        gateway.kill()
    assert "sessions_still_open_at_stop" not in gateway.tail(20000)

    engine = create_engine(database_url)
    with engine.connect() as conn:
        [row] = conn.execute(
            select(archive.c.message_id, queue.c.status).join(
                queue, queue.c.archive_id == archive.c.id
            )
        ).all()
    engine.dispose()
    assert row.message_id == "in-flight@safe.example"
    assert row.status == "delivered"
    [got] = sink.handler.wait_for(1)
    assert got.message_id == "in-flight@safe.example"
