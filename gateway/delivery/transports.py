"""Where delivered mail goes: an upstream SMTP server, a local maildir, or recipients' MX hosts.

Each transport answers with a per-recipient outcome; the worker turns outcomes into queue
state (delivered, retry later, bounce).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib

from gateway.config import UpstreamSettings


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient: 2xx delivered, 4xx retry, 5xx permanent."""

    code: int
    text: str

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


class Transport(Protocol):
    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]: ...

    async def close(self) -> None: ...


def _all(recipients: Sequence[str], outcome: Outcome) -> dict[str, Outcome]:
    return {rcpt: outcome for rcpt in recipients}


class _Client(aiosmtplib.SMTP):
    """Notes when DATA begins: a connection lost before that took nothing, so the message may
    go again over a new one; after it, upstream may already have it."""

    data_started = False

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(*args, **kwargs)


class SmtpTransport:
    """aiosmtplib to one upstream, keeping the connection open between messages."""

    def __init__(self, settings: UpstreamSettings, *, local_hostname: str | None = None) -> None:
        self.settings = settings
        self.local_hostname = local_hostname
        self._client: _Client | None = None

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _connect(self) -> _Client:
        s = self.settings
        client = _Client(
            hostname=s.host,
            port=s.port,
            local_hostname=self.local_hostname,
            timeout=s.timeout,
            use_tls=s.scheme == "smtps",
            # Never opportunistic: a stripped STARTTLS must fail, not silently send in clear.
            start_tls=s.scheme == "smtp+starttls",
            tls_context=self._tls_context() if s.scheme != "smtp" else None,
            validate_certs=s.validate_certs,
        )
        await client.connect()
        if s.username is not None and s.password is not None:
            await client.login(s.username, s.password)
        return client

    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        try:
            client = self._client
            reused = client is not None and client.is_connected
            if client is None or not reused:
                client = self._client = await self._connect()
            client.data_started = False
            try:
                errors, _ = await client.sendmail(mail_from, list(recipients), body)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPSenderRefused) as exc:
                # No NOOP before each reuse (a round trip per message): a connection the server
                # closed while idle shows up here instead - lost before DATA, or a 421 to MAIL
                # FROM - and the message goes once more over a new one. Among refusals only 421
                # (the others are the server's answer to this sender); and nothing lost once
                # DATA began, when upstream may have the message (that waits for a retry).
                if not reused or client.data_started:
                    raise
                if isinstance(exc, aiosmtplib.SMTPSenderRefused) and exc.code != 421:
                    raise
                await self.close()
                client = self._client = await self._connect()
                errors, _ = await client.sendmail(mail_from, list(recipients), body)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = {e.recipient: Outcome(e.code, e.message) for e in exc.recipients}
            await self._reset()
            return {rcpt: refused.get(rcpt, Outcome(451, "not attempted")) for rcpt in recipients}
        except aiosmtplib.SMTPResponseException as exc:
            # MAIL FROM or DATA refused: the same answer for every recipient.
            await self._reset()
            return _all(recipients, Outcome(exc.code, exc.message))
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            return _all(recipients, Outcome(451, f"upstream unavailable: {exc!r}"))
        result = _all(recipients, Outcome(250, "ok"))
        for rcpt, response in errors.items():
            result[rcpt] = Outcome(response.code, response.message)
        return result

    async def _reset(self) -> None:
        try:
            if self._client is not None and self._client.is_connected:
                await self._client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


class MaildirTransport:
    """Writes each message into a Maildir's new/ (the demo default), fsynced before success."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")

    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        try:
            await asyncio.to_thread(self._write, mail_from, body)
        except OSError as exc:
            return _all(recipients, Outcome(451, f"maildir write failed: {exc}"))
        return _all(recipients, Outcome(250, "written to maildir"))

    def _write(self, mail_from: str, body: bytes) -> None:
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.{self._host}"
        tmp = self.path / "tmp" / name
        # Maildir files use the local line ending; Return-Path records the envelope sender.
        content = f"Return-Path: <{mail_from}>\n".encode() + body.replace(b"\r\n", b"\n")
        with open(tmp, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, self.path / "new" / name)
        directory = os.open(self.path / "new", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def close(self) -> None:
        return None


MxResolver = Callable[[str], Awaitable[list[tuple[str, int]]]]


async def resolve_mx(domain: str) -> list[tuple[str, int]]:
    """MX hosts of `domain` by preference (RFC 5321 §5.1: fall back to the A record)."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    try:
        answer = await dns.asyncresolver.resolve(domain, "MX")
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        return [(domain, 25)]
    except dns.exception.DNSException:
        return []
    records = sorted(answer, key=lambda r: r.preference)  # type: ignore[attr-defined]
    hosts = [str(r.exchange).rstrip(".") for r in records]  # type: ignore[attr-defined]
    if hosts == [""]:  # a null MX (RFC 7505): the domain accepts no mail
        return []
    return [(host, 25) for host in hosts]


class MxTransport:
    """Direct delivery to each recipient domain's MX hosts, in preference order."""

    def __init__(
        self,
        settings: UpstreamSettings,
        resolver: MxResolver = resolve_mx,
        *,
        local_hostname: str | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.local_hostname = local_hostname

    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        by_domain: dict[str, list[str]] = {}
        for rcpt in recipients:
            by_domain.setdefault(rcpt.rpartition("@")[2].lower(), []).append(rcpt)
        result: dict[str, Outcome] = {}
        for domain, rcpts in by_domain.items():
            hosts = await self.resolver(domain)
            if not hosts:
                result.update(_all(rcpts, Outcome(550, f"no mail exchanger for {domain}")))
                continue
            outcome = _all(rcpts, Outcome(451, f"no MX host of {domain} answered"))
            for host, port in hosts:
                hop = SmtpTransport(
                    UpstreamSettings(
                        scheme="smtp", host=host, port=port, timeout=self.settings.timeout
                    ),
                    local_hostname=self.local_hostname,
                )
                try:
                    outcome = await hop.send(mail_from, rcpts, body)
                finally:
                    await hop.close()
                # Try the next MX only while nothing was decided (RFC 5321 §5.1).
                if any(o.delivered or o.permanent for o in outcome.values()):
                    break
            result.update(outcome)
        return result

    async def close(self) -> None:
        return None


def make_transport(settings: UpstreamSettings, *, local_hostname: str | None = None) -> Transport:
    if settings.scheme == "maildir":
        assert settings.path is not None
        return MaildirTransport(settings.path)
    if settings.scheme == "mx":
        return MxTransport(settings, local_hostname=local_hostname)
    return SmtpTransport(settings, local_hostname=local_hostname)
