"""Listening sockets for the relay: plain with STARTTLS, and optionally implicit TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

from gateway.config import ConfigError, ServerSettings
from gateway.smtp.handler import GatewaySMTP, RelayHandler


def server_tls_context(settings: ServerSettings) -> ssl.SSLContext | None:
    if not settings.tls_enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    except (ssl.SSLError, OSError) as exc:
        # "[SSL] PEM lib (_ssl.c:3905)" names neither the key nor the file.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"[server] tls_cert {settings.tls_cert} and tls_key {settings.tls_key}: cannot be "
            f"used together ({reason}); tls_cert must be the PEM certificate (chain) and "
            "tls_key its PEM private key, readable by the gateway"
        ) from None
    return context


SHUTTING_DOWN = b"421 4.3.2 Service shutting down, try again later\r\n"
ABORT_AFTER = 1.0  # seconds a session told 421 has to close before it is cut off


class SessionCounter:
    """Sessions in flight, so a clean stop can wait for them (and close the idle ones)."""

    def __init__(self) -> None:
        self.idle = asyncio.Event()
        self.idle.set()
        self._sessions: set[GatewaySMTP] = set()
        self._closing: dict[GatewaySMTP, float] = {}  # told 421, at this loop time

    @property
    def active(self) -> int:
        return len(self._sessions)

    def opened(self, session: GatewaySMTP) -> None:
        self._sessions.add(session)
        self.idle.clear()

    def closed(self, session: GatewaySMTP) -> None:
        self._sessions.discard(session)
        self._closing.pop(session, None)
        if not self._sessions:
            self.idle.set()

    def close_idle(self) -> None:
        """At a stop, tell sessions between transactions (connected, greeted, or done with a
        message) `421` and close them: only a transaction under way (MAIL given, DATA, the
        archive's commit) is waited for, not a client that keeps its connection open. A
        reply already written goes first (a transport's close flushes it)."""
        now = asyncio.get_running_loop().time()
        for session in list(self._sessions):
            transport = session.transport
            told = self._closing.get(session)
            if told is not None:
                # A TLS session's close waits for the client's own close_notify, which an idle
                # client may never send: after a second it is cut off.
                if now - told > ABORT_AFTER:
                    for each in (transport, session._original_transport):
                        if each is not None:
                            each.abort()
                continue
            if transport is None or transport.is_closing():
                continue
            if session.envelope is not None and session.envelope.mail_from is not None:
                continue
            transport.write(SHUTTING_DOWN)  # type: ignore[attr-defined]
            transport.close()
            self._closing[session] = now


def _factory(
    handler: RelayHandler,
    settings: ServerSettings,
    counter: SessionCounter,
    *,
    implicit_tls: bool,
    tls: ssl.SSLContext | None,
) -> Any:
    class CountedSMTP(GatewaySMTP):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if self._original_transport is None:  # not the STARTTLS re-entry
                counter.opened(self)
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            super().connection_lost(error)
            counter.closed(self)

    def make() -> GatewaySMTP:
        return CountedSMTP(
            handler,
            hostname=settings.hostname,
            ident="Safeguard Gateway",
            data_size_limit=settings.max_message_size,
            timeout=settings.timeout,
            data_timeout=settings.data_timeout,
            # STARTTLS on the plain port; on an implicit-TLS port the socket is already encrypted,
            # which aiosmtpd cannot see, so AUTH may be offered there without STARTTLS.
            tls_context=None if implicit_tls else tls,
            require_starttls=False,
            auth_require_tls=not implicit_tls,
            enable_SMTPUTF8=True,
            command_call_limit=_call_limits(settings.max_recipients),
            # Without it aiosmtpd looks the loop up with warnings filters set and restored, once
            # per connection (~1 % of py-spy's samples of the relay; a few us alone).
            loop=asyncio.get_running_loop(),
        )

    return make


# aiosmtpd counts each command over the whole connection, not per message: a relay's client
# (Postfix's relayhost or content_filter, which keeps its connections for reuse) sends many
# messages down one, and with {"RCPT": max_recipients + 10, "*": 200} it was cut off with
# `421 RCPT sent too many times` after about a hundred (found by an admin's review). The
# mail commands get room for thousands of messages; the rest (NOOP, HELP, VRFY...) stay few,
# and AUTH is tried at most 5 times. A message's own recipients are capped by handle_RCPT.
MESSAGES_PER_CONNECTION = 10_000


def _call_limits(max_recipients: int) -> dict[str, int]:
    mail = MESSAGES_PER_CONNECTION
    return {
        "AUTH": 5,
        "MAIL": mail,
        "RCPT": mail * max(max_recipients // 10, 1) + max_recipients,
        "DATA": mail,
        "RSET": mail,
        "*": 200,
    }


async def start_listeners(
    handler: RelayHandler, settings: ServerSettings, counter: SessionCounter
) -> list[asyncio.Server]:
    loop = asyncio.get_running_loop()
    tls = server_tls_context(settings)
    with listening("[server] listen", settings.host, settings.port):
        servers = [
            await loop.create_server(
                _factory(handler, settings, counter, implicit_tls=False, tls=tls),
                host=settings.host,
                port=settings.port,
                reuse_address=True,
                # `[server] processes`: each process binds its own socket on the port; the
                # kernel spreads new connections across them.
                reuse_port=settings.processes > 1,
            )
        ]
    if settings.tls_listen and tls is not None:
        host, port = settings.tls_listen
        try:
            with listening("[server] tls_listen", host, port):
                servers.append(
                    await loop.create_server(
                        _factory(handler, settings, counter, implicit_tls=True, tls=tls),
                        host=host,
                        port=port,
                        ssl=tls,
                        reuse_address=True,
                        reuse_port=settings.processes > 1,
                    )
                )
        except OSError:
            servers[0].close()
            raise
    return servers


@contextlib.contextmanager
def listening(key: str, host: str, port: int) -> Iterator[None]:
    """A port that cannot be had is named with the key that asked for it: "[Errno 98] Address
    already in use" alone does not say which of the gateway's three ports it was."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OSError(exc.errno, f"{key} {host}:{port}: {reason}") from None
