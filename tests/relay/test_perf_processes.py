"""`[server] processes = N`: several relay processes on one port (SO_REUSEPORT), each with its
own archive writer and delivery worker, under one `safeguard serve` that stops them together."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from gateway.config import ConfigError, settings_from_dict
from gateway.store.schema import archive
from tests.support import NO_RULES_PACK, Sink, free_port


def test_processes_defaults_to_one_and_is_checked(tmp_path: Path):
    path = tmp_path / "gateway.toml"
    assert settings_from_dict({}, path).server.processes == 1
    assert settings_from_dict({"server": {"processes": 2}}, path).server.processes == 2
    with pytest.raises(ConfigError, match=r"\[server\] processes: expected 1 to 64"):
        settings_from_dict({"server": {"processes": 0}}, path)
    with pytest.raises(ConfigError, match="fixed listen port"):
        settings_from_dict({"server": {"processes": 2, "listen": "127.0.0.1:0"}}, path)


def _config(tmp_path: Path, port: int, sink: Sink, database_url: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[organisation]
domains = ["safe.example"]
[server]
listen = "127.0.0.1:{port}"
min_free_disk = 0
processes = 2
[upstream]
url = "{sink.url}"
[database]
url = "{database_url}"
state_dir = "{tmp_path}"
[policy]
pack = "{NO_RULES_PACK}"
[notify]
digest_at = ""
[delivery]
poll_interval = 0.1
[api]
listen = ""
[web]
listen = ""
"""
    )
    return path


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # LISTEN
            inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(log.read_text())
        if len(_children(process.pid)) == 2 and len(_listening_inodes(port)) == 2:
            return process
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"two relay processes did not start: {log.read_text()[-2000:]}")


def _message(n: int) -> bytes:
    return (
        f"From: alex.teacher@safe.example\r\nTo: pupil{n}@home.example\r\nSubject: n {n}\r\n"
        f"Message-ID: <proc-{n}@safe.example>\r\n\r\nMessage number {n}.\r\n"
    ).encode()


@pytest.mark.slow
def test_two_processes_share_the_port_and_lose_nothing(
    tmp_path: Path, database_url: str, sink: Sink
):
    port = free_port()
    config = _config(tmp_path, port, sink, database_url)
    log = tmp_path / "gateway.log"
    process = _start(config, port, log)
    children = _children(process.pid)
    try:
        # Each process listens on the port with a socket of its own.
        listening = _listening_inodes(port)
        assert all(_socket_inodes(child) & listening for child in children)

        total, clients = 60, 6
        replies: list[str] = []
        lock = threading.Lock()

        def client(worker: int) -> None:
            for n in range(worker, total, clients):
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                    smtp.ehlo()
                    smtp.mail("alex.teacher@safe.example")
                    smtp.rcpt(f"pupil{n}@home.example")
                    code, text = smtp.data(_message(n))
                with lock:
                    replies.append(f"{code} {text.decode()}")

        threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(replies) == total and all(r.startswith("250 ") for r in replies), replies
        received = sink.handler.wait_for(total, timeout=60)
        assert {r.message_id for r in received} == {f"proc-{n}@safe.example" for n in range(total)}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-2000:]
    assert not any(Path(f"/proc/{child}").exists() for child in children)
    # Two writers extended one hash chain: it still verifies, one row per message.
    verify = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "archive", "verify"],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(archive)).scalar_one() == total
    engine.dispose()
    # Each log line reached the shared stderr whole.
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all(line.endswith("}") and line.count('"event"') == 1 for line in lines)


@pytest.mark.slow
def test_a_relay_process_that_dies_stops_the_service(tmp_path: Path, sink: Sink):
    port = free_port()
    config = _config(tmp_path, port, sink, f"sqlite:///{tmp_path / 'archive.db'}")
    log = tmp_path / "gateway.log"
    process = _start(config, port, log)
    first, second = _children(process.pid)
    os.kill(first, signal.SIGKILL)
    # Exit non-zero, for the service manager to restart the whole gateway; nothing left behind.
    assert process.wait(30) == 1
    deadline = time.monotonic() + 10
    while Path(f"/proc/{second}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{second}").exists()
    assert "serve_process_died" in log.read_text()
