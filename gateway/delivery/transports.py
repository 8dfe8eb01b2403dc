"""Where delivered mail goes: an upstream SMTP server, a local maildir, or recipients' MX hosts.

Each transport answers with a per-recipient outcome; the worker turns outcomes into queue
state (delivered, retry later, bounce).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
import idna

from gateway.config import ConfigError, UpstreamSettings


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


def wire_address(address: str) -> str | None:
    """`address` as it may go to a server without SMTPUTF8: an internationalised domain as
    its A-labels (IDNA); None when the local part itself is not ASCII (RFC 6531 needs it)."""
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        return None
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return None


# RFC 6531 §3.2: an address that needs SMTPUTF8, to a server that does not offer it.
_NEEDS_UTF8 = "5.6.7 The address needs SMTPUTF8, which the receiving server does not offer"


# RFC 5321 §4.5.3.2.6: wait 10 minutes for the answer to the final "." - upstream may be
# scanning the message; giving up sooner makes a duplicate when it then accepts it.
DATA_TIMEOUT = 600.0


class _Client(aiosmtplib.SMTP):
    """Notes when DATA begins: a connection lost before that took nothing, so the message may
    go again over a new one; after it, upstream may already have it."""

    data_started = False

    async def data(self, message: Any, /, *, timeout: Any = None) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(message, timeout=max(DATA_TIMEOUT, self.timeout or 0.0))


class SmtpTransport:
    """aiosmtplib to one upstream, keeping the connection open between messages."""

    def __init__(self, settings: UpstreamSettings, *, local_hostname: str | None = None) -> None:
        self.settings = settings
        self.local_hostname = local_hostname
        self._client: _Client | None = None
        self._busy = False  # a send is under way (or was stopped, cancelled, mid-way)

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
        try:
            if client.is_ehlo_or_helo_needed:  # its extensions (SMTPUTF8) decide the envelope
                await client.ehlo()
            if s.username is not None and s.password is not None:
                await client.login(s.username, s.password)
        except BaseException:  # refused after connecting: not left open, unowned
            client.close()
            raise
        return client

    async def _session(self) -> tuple[_Client, bool]:
        """The open connection, or a new one; (client, whether it was reused)."""
        client = self._client
        if client is not None and client.is_connected:
            return client, True
        self._client = await self._connect()
        return self._client, False

    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        self._busy = True
        try:
            outcomes = await self._send(mail_from, recipients, body)
        except Exception as exc:  # e.g. an address aiosmtplib cannot encode: never stuck
            await self.close()
            return _all(recipients, Outcome(451, f"delivery failed: {exc!r}"))
        self._busy = False
        return outcomes

    async def _send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        try:
            client, reused = await self._session()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            # Refused before any message (a 5xx greeting or EHLO, a wrong upstream password):
            # the connection's fault, not the message's - try again later (as Postfix does).
            await self.close()
            return _all(recipients, Outcome(451, f"upstream unavailable: {exc!r}"))
        sender, utf8 = wire_address(mail_from), False
        envelope: dict[str, str] = {}
        refused: dict[str, Outcome] = {}
        for rcpt in recipients:
            wired = wire_address(rcpt)
            if wired is None and not client.supports_extension("smtputf8"):
                refused[rcpt] = Outcome(553, _NEEDS_UTF8)
            else:
                envelope[rcpt] = wired or rcpt
                utf8 = utf8 or wired is None
        if sender is None:
            if not client.supports_extension("smtputf8"):
                return _all(recipients, Outcome(553, _NEEDS_UTF8))
            sender, utf8 = mail_from, True
        if not envelope:
            return refused
        options = ["SMTPUTF8"] if utf8 else []
        by_wire = {wired: rcpt for rcpt, wired in envelope.items()}
        try:
            client.data_started = False
            try:
                errors, _ = await client.sendmail(
                    sender, list(envelope.values()), body, mail_options=options
                )
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
                errors, _ = await client.sendmail(
                    sender, list(envelope.values()), body, mail_options=options
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            answered = {
                by_wire.get(e.recipient, e.recipient): Outcome(e.code, e.message)
                for e in exc.recipients
            }
            await self._reset()
            return refused | {
                rcpt: answered.get(rcpt, Outcome(451, "not attempted")) for rcpt in envelope
            }
        except aiosmtplib.SMTPResponseException as exc:
            # MAIL FROM or DATA refused: the same answer for every recipient.
            await self._reset()
            return refused | _all(list(envelope), Outcome(exc.code, exc.message))
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            return refused | _all(list(envelope), Outcome(451, f"upstream unavailable: {exc!r}"))
        result = refused | _all(list(envelope), Outcome(250, "ok"))
        for wired, response in errors.items():
            result[by_wire.get(wired, wired)] = Outcome(response.code, response.message)
        return result

    async def _reset(self) -> None:
        try:
            if self._client is not None and self._client.is_connected:
                await self._client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        busy, self._busy = self._busy, False
        if client is not None and client.is_connected:
            if busy:  # a send was stopped mid-transaction: no QUIT to wait on
                client.close()
                return
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


class MaildirTransport:
    """Writes each message into a Maildir's new/ (the demo default), fsynced before success."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")
        self._made = False

    def make(self) -> None:
        """Create the Maildir's folders (OSError if they cannot be: `serve` checks this at
        start). Each send makes them too, until they exist: a Maildir removed or unmounted
        while the gateway runs defers mail (451, retried) instead of stopping the sender."""
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        self._made = True

    async def send(
        self, mail_from: str, recipients: Sequence[str], body: bytes
    ) -> dict[str, Outcome]:
        # A send stopped while its thread writes (the lease ran short, the gateway stops) is
        # recorded as not sent: the thread must then not deliver it after all, or the retry
        # delivers it twice.
        stopped = threading.Event()
        try:
            await asyncio.to_thread(self._write, mail_from, body, stopped)
        except asyncio.CancelledError:
            stopped.set()
            raise
        except OSError as exc:
            self._made = False  # removed or unmounted since: made again at the next try
            return _all(recipients, Outcome(451, f"maildir write failed: {exc}"))
        return _all(recipients, Outcome(250, "written to maildir"))

    def _write(self, mail_from: str, body: bytes, stopped: threading.Event) -> None:
        if not self._made:
            self.make()
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.{self._host}"
        tmp = self.path / "tmp" / name
        # Maildir files use the local line ending; Return-Path records the envelope sender.
        content = f"Return-Path: <{mail_from}>\n".encode() + body.replace(b"\r\n", b"\n")
        with open(tmp, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if stopped.is_set():  # only new/ is delivered: tmp/ is the writer's own
            tmp.unlink()
            return
        os.rename(tmp, self.path / "new" / name)
        directory = os.open(self.path / "new", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def close(self) -> None:
        return None


MxResolver = Callable[[str], Awaitable[list[tuple[str, int]]]]


class DnsUnavailable(Exception):
    """The resolver did not answer (a timeout, no name server): say nothing of the domain."""


async def resolve_mx(domain: str) -> list[tuple[str, int]]:
    """MX hosts of `domain` by preference (RFC 5321 §5.1: fall back to the A record); [] when
    the domain does not exist or accepts no mail; DnsUnavailable when DNS did not answer."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    try:
        answer = await dns.asyncresolver.resolve(domain, "MX")
    except dns.resolver.NoAnswer:
        return [(domain, 25)]
    except dns.resolver.NXDOMAIN:
        return []
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(repr(exc)) from None
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
            try:
                hosts = await self.resolver(domain)
            except DnsUnavailable as exc:
                result.update(
                    _all(rcpts, Outcome(451, f"4.4.3 DNS did not answer for {domain}: {exc}"))
                )
                continue
            if not hosts:
                result.update(_all(rcpts, Outcome(550, f"5.1.2 no mail exchanger for {domain}")))
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


def check_upstream(settings: UpstreamSettings) -> None:
    """What can be known before the first message: a Maildir's folders can be made."""
    if settings.scheme == "maildir":
        assert settings.path is not None
        try:
            MaildirTransport(settings.path).make()
        except OSError as exc:
            raise ConfigError(
                f"[upstream] url {settings.display}: cannot make the Maildir "
                f"{exc.filename or settings.path}: {exc.strerror or exc}"
            ) from None


def make_transport(settings: UpstreamSettings, *, local_hostname: str | None = None) -> Transport:
    if settings.scheme == "maildir":
        assert settings.path is not None
        return MaildirTransport(settings.path)
    if settings.scheme == "mx":
        return MxTransport(settings, local_hostname=local_hostname)
    return SmtpTransport(settings, local_hostname=local_hostname)
