"""Real parts for tests: an aiosmtpd sink as upstream, a gateway on a real port, databases."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from gateway.config import Settings, settings_from_dict
from gateway.eventloop import loop_factory

DATA = Path(__file__).parent / "data"
NO_RULES_PACK = DATA / "packs" / "no-rules.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message_id(self) -> str:
        return str(message_from_bytes(self.data, policy=policy.default)["Message-ID"] or "").strip(
            "<>"
        )


@dataclass
class SinkHandler:
    """Upstream that records what it is given; `answer` may refuse per recipient or at DATA."""

    received: list[Received] = field(default_factory=list)
    rcpt_answer: Callable[[str], str | None] = lambda _rcpt: None
    data_answer: Callable[[], str | None] = lambda: None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        answer = self.rcpt_answer(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = self.data_answer()
        if answer:
            return answer
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 Ok: stored"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"sink got {len(self.received)} messages, expected {count}")


class _SinkController(Controller):
    """Closes the sessions still open when it stops, and lets the loop finish closing them: a
    client that hung up a moment before must not leave its socket for the garbage collector
    (a ResourceWarning, an error here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_transports: set[Any] = set()

    def factory(self) -> SMTP:
        controller = self

        class Tracked(SMTP):
            def connection_made(self, transport: Any) -> None:
                controller.open_transports.add(transport)
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                controller.open_transports.discard(self.transport)
                super().connection_lost(exc)

        return Tracked(self.handler, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        def close_all() -> None:
            for transport in list(self.open_transports):
                transport.close()

        if self.loop.is_running():
            self.loop.call_soon_threadsafe(close_all)
            # A transport closes its socket in a callback of its own; the loop must run it
            # before it stops (connection_lost then takes the transport off the set).
            deadline = time.monotonic() + 5
            while self.open_transports and time.monotonic() < deadline:
                time.sleep(0.01)
        super().stop(no_assert)


class Sink:
    def __init__(self, port: int | None = None) -> None:
        self.handler = SinkHandler()
        self.port = port or free_port()
        self.controller: _SinkController | None = None

    def start(self) -> Sink:
        self.controller = _SinkController(
            self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=None
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def make_settings(
    tmp_path: Path, database_url: str, *, upstream: str, **sections: dict[str, Any]
) -> Settings:
    data: dict[str, Any] = {
        "organisation": {"domains": ["safe.example"], "timezone": "Europe/London"},
        "server": {"listen": "127.0.0.1:0", "hostname": "gateway.safe.example", "min_free_disk": 0},
        "auth": {"trusted_networks": ["127.0.0.0/8"]},
        "upstream": {"url": upstream, "timeout": 5},
        "database": {"url": database_url, "state_dir": str(tmp_path / "var")},
        "delivery": {"retry_min": 0.2, "retry_max": 1.0, "poll_interval": 0.1, "lease": 30},
        "policy": {"pack": str(NO_RULES_PACK)},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return settings_from_dict(data, tmp_path / "gateway.toml")


class RunningGateway:
    """A Gateway on its own event loop thread, on a real port: the loop `serve` would use."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        factory = loop_factory(gateway.settings.server.event_loop) or asyncio.new_event_loop
        self.loop = factory()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> RunningGateway:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.gateway.start(), self.loop).result(30)
        return self

    @property
    def port(self) -> int:
        return int(self.gateway.ports[0])

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        self.call(self.gateway.stop(), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def serve_refused(config: Path) -> str:
    """`safeguard serve` with `config`, which must refuse to start: exit 2, one line on stderr
    and no traceback. Returns that stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def tls_files(folder: Path, *names: str) -> tuple[Path, Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (and `names`) signed by a throwaway CA, its key, and a
    client context that trusts that CA: STARTTLS over real sockets, as staff's clients do."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", *names)
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return cert_path, key_path, client
