"""`safeguard serve` as a real child process, for the tests that kill, stop or multiply it."""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support import NO_RULES_PACK


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(
    path: Path, *, port: int, upstream: str, database_url: str, **sections: dict[str, Any]
) -> Path:
    """A gateway.toml for one serve process; keyword arguments add or override sections."""
    data: dict[str, dict[str, Any]] = {
        "organisation": {"domains": ["safe.example"]},
        "server": {
            "listen": f"127.0.0.1:{port}",
            "hostname": "gateway.safe.example",
            "min_free_disk": 0,
        },
        "upstream": {"url": upstream, "timeout": 5},
        "database": {"url": database_url, "state_dir": str(path.parent / "var")},
        "policy": {"pack": str(NO_RULES_PACK)},
        "notify": {"digest_at": ""},
        # Their own free ports: two gateways may run at once.
        "api": {"listen": "127.0.0.1:0"},
        "web": {"listen": "127.0.0.1:0"},
        "delivery": {"retry_min": 0.2, "retry_max": 1.0, "poll_interval": 0.1, "lease": 3},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(
        "".join(
            f"[{name}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in values.items())
            for name, values in data.items()
        )
    )
    return path


class ServeProcess:
    """One `python -m gateway serve`, its stderr appended to `log` across restarts."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> ServeProcess:
        with open(self.log, "ab") as stderr:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), "serve"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as probe:
                    probe.noop()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise AssertionError(self.tail()) from None
                time.sleep(0.05)
        self.kill()
        raise AssertionError(f"gateway did not start: {self.tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM; the exit status (the process is killed if it outlives `timeout`)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"serve did not stop in {timeout} s: {self.tail()}") from None

    def tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


def run_cli(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`safeguard --config CONFIG ARGS...` as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
