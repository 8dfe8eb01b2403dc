"""The console as an IT admin runs it: inside `safeguard serve` on `[web] listen`, in each of
several relay processes, and on its own as `safeguard web`; SIGTERM stops it with exit 0."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.relay.serving import ServeProcess, run_cli, write_config
from tests.support import free_port

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, port: int, web_port: int, **sections: dict) -> Path:
    return write_config(
        tmp_path / "gateway.toml",
        port=port,
        upstream=f"maildir://{tmp_path / 'maildir'}",
        database_url=f"sqlite:///{tmp_path / 'archive.db'}",
        web={"listen": f"127.0.0.1:{web_port}"},
        **sections,
    )


def _signin_page(port: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/signin", timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("processes", [1, 2])
def test_serve_runs_the_console_in_every_relay_process(tmp_path: Path, processes: int):
    port, web_port = free_port(), free_port()
    config = _config(tmp_path, port, web_port, server={"processes": processes})
    gateway = ServeProcess(config, port, tmp_path / "gateway.log").start()
    try:
        for _ in range(4):
            assert "<h1>Sign in</h1>" in _signin_page(web_port)
        # Each process binds the console's port itself (a failed bind would stop serve); the
        # second may still be starting when the first answers.
        deadline = time.monotonic() + 30
        while gateway.tail(100_000).count('"console_listening"') < processes:
            assert time.monotonic() < deadline, gateway.tail()
            time.sleep(0.1)
        assert gateway.tail(100_000).count('"console_listening"') == processes
    finally:
        assert gateway.terminate() == 0, gateway.tail()


def test_safeguard_web_runs_the_console_alone_and_stops_cleanly(tmp_path: Path):
    web_port = free_port()
    config = _config(tmp_path, free_port(), web_port)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(config), "web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert "<h1>Sign in</h1>" in _signin_page(web_port)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert f"console on http://127.0.0.1:{web_port}/" in stderr.decode()


def test_a_taken_console_port_stops_serve_with_a_clear_error(tmp_path: Path):
    web_port = free_port()
    config = _config(tmp_path, free_port(), web_port)
    with socket.create_server(("127.0.0.1", web_port)):
        served = run_cli(config, "serve")
        alone = run_cli(config, "web")
    for result in (served, alone):
        assert result.returncode != 0
        assert "cannot start" in result.stderr and str(web_port) in result.stderr
        assert f"[web] listen 127.0.0.1:{web_port}" in result.stderr  # which of the ports
        assert "Traceback" not in result.stderr
