"""A 250 is a promise: kill -9 the gateway mid-load and every acknowledged message still arrives."""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from gateway.store.schema import archive
from tests.support import NO_RULES_PACK, Sink, free_port

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, port: int, sink: Sink, database_url: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[organisation]
domains = ["safe.example"]
[server]
listen = "127.0.0.1:{port}"
hostname = "gateway.safe.example"
min_free_disk = 0
[upstream]
url = "{sink.url}"
[database]
url = "{database_url}"
[policy]
pack = "{NO_RULES_PACK}"
[delivery]
retry_min = 0.2
retry_max = 1.0
poll_interval = 0.1
lease = 3
[api]
listen = ""
[web]
listen = ""
"""
    )
    return path


def _start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as stderr:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as probe:
                probe.noop()
            return process
        except OSError:
            if process.poll() is not None:
                raise AssertionError(log.read_text()) from None
            time.sleep(0.1)
    raise AssertionError("gateway did not start")


def _message(n: int) -> bytes:
    return (
        f"From: alex.teacher@safe.example\r\nTo: pupil{n}@home.example\r\nSubject: load {n}\r\n"
        f"Message-ID: <load-{n}@safe.example>\r\n\r\nMessage number {n}.\r\n"
    ).encode()


def test_every_acknowledged_message_survives_kill_9_mid_load(
    tmp_path: Path, database_url: str, sink: Sink
):
    port = free_port()
    config = _config(tmp_path, port, sink, database_url)
    log = tmp_path / "gateway.log"
    process = _start(config, port, log)

    acked: set[int] = set()
    unanswered: set[int] = set()
    lock = threading.Lock()
    total, clients = 200, 8

    def client(worker: int) -> None:
        for n in range(worker, total, clients):
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    smtp.sendmail(
                        "alex.teacher@safe.example", [f"pupil{n}@home.example"], _message(n)
                    )
                with lock:
                    acked.add(n)
            except (OSError, smtplib.SMTPException):
                with lock:
                    unanswered.add(n)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    for thread in threads:
        thread.start()
    while True:
        with lock:
            if len(acked) >= 60:
                break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    for thread in threads:
        thread.join()
    assert len(acked) >= 60 and unanswered, "the kill should land mid-load"

    process = _start(config, port, log)
    try:
        # A real client resends what got no reply; the archive recognises what it already has.
        for n in sorted(unanswered):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.sendmail("alex.teacher@safe.example", [f"pupil{n}@home.example"], _message(n))
        expected = {f"load-{n}@safe.example" for n in acked | unanswered}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ids = {r.message_id for r in list(sink.handler.received)}
            if expected <= ids:
                break
            time.sleep(0.1)
        delivered = Counter(r.message_id for r in list(sink.handler.received))
        missing = {f"load-{n}@safe.example" for n in acked} - set(delivered)
        assert not missing, f"acknowledged but never delivered: {sorted(missing)[:10]}"
        assert expected <= set(delivered)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-2000:]

    engine = create_engine(database_url)
    with engine.connect() as conn:
        per_id = conn.execute(
            select(archive.c.message_id, func.count()).group_by(archive.c.message_id)
        ).all()
    engine.dispose()
    twice = [mid for mid, count in per_id if count > 1]
    assert not twice, f"archived twice: {twice[:10]}"
    assert {mid for mid, _ in per_id} == expected


class _HangingUpstream:
    """An upstream that greets and then never answers: sends stay in flight, leased."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)  # closed by close(), whatever happens next
            with contextlib.suppress(OSError):  # a client that reset at once
                conn.sendall(b"220 hanging.example ESMTP\r\n")

    def __enter__(self) -> _HangingUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Every socket closed here, now. Closing the listener alone does not wake a thread
        blocked in accept() on Linux: it woke when a later test's client happened to reach the
        same port, and the connections it held were left to the garbage collector, a
        ResourceWarning in whichever test ran then (test_faults_more's full-disk test, seen
        in about one full run in four)."""
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(5)
        assert not self.thread.is_alive(), "the hanging upstream's accept() did not wake"
        for conn in self.held:
            conn.close()


def test_mail_in_flight_when_killed_goes_out_at_restart_not_after_the_lease(
    tmp_path: Path, database_url: str, sink: Sink
):
    """kill -9 while upstream holds every send open: the entries stay leased to the dead
    process. The restarted gateway (same host) releases them at once: delivered in seconds,
    not after `[delivery] lease` (here the default 10 minutes)."""
    port = free_port()
    config = _config(tmp_path, port, sink, database_url)
    text = config.read_text().replace("lease = 3", "lease = 600")
    log = tmp_path / "gateway.log"
    with _HangingUpstream() as hanging:
        config.write_text(text.replace(sink.url, f"smtp://127.0.0.1:{hanging.port}"))
        process = _start(config, port, log)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                for n in range(3):
                    client.sendmail(
                        "alex.teacher@safe.example", [f"pupil{n}@home.example"], _message(n)
                    )
            time.sleep(1.0)  # handed to the worker, stuck in upstream's greeting
            assert not sink.handler.received
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    config.write_text(text)  # upstream is back
    restarted = _start(config, port, log)
    try:
        received = sink.handler.wait_for(3, timeout=20)
        expected = [f"pupil{n}@home.example" for n in range(3)]
        assert sorted(r.rcpt_tos[0] for r in received) == expected
        assert "leases_of_dead_processes_released" in log.read_text()
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(30)
