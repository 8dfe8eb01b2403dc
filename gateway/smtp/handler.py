"""The aiosmtpd handler: thin. Authenticate, check the envelope, then hand the bytes to the
pipeline (on the event loop for ordinary sizes, else in a thread with a time limit) and the
archive writer, and answer only after the commit."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import ipaddress
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session, syntax
from email_validator import EmailNotValidError
from sqlalchemy.engine import make_url

from gateway.clock import Clock
from gateway.config import Settings
from gateway.ids import new_queue_id
from gateway.message.addresses import checked_address
from gateway.metrics import CPU_SECONDS, Metrics
from gateway.pipeline import Pipeline, Prepared, Submission, SubmissionRefused
from gateway.smtp import replies
from gateway.smtp.auth import Authenticator
from gateway.smtp.data import DataRead, DataState, read_data
from gateway.store.writer import ArchiveWriter
from gateway.throttle import FailureLimiter

log = structlog.get_logger("gateway.smtp")

# Messages up to this size are evaluated on the event loop (~0.6 ms for 5 kB of text): a
# thread would only add hand-offs and GIL switches, since the pipeline is pure Python. Kept
# small because the cost is not linear in every shape: table-heavy HTML of 8 kB takes ~15 ms
# to lay out, 64 kB ~130 ms, which would stall every other session. Larger messages go to
# the executor, where `[server] parse_timeout` bounds them.
INLINE_LIMIT = 8 * 1024


def _peer_ip(session: Session) -> str:
    """The client's address; an IPv4 client of a dual-stack (`::`) listener as IPv4, not
    `::ffff:a.b.c.d`: `trusted_networks`, the failure counts, `staff unlock --client` and the
    archive all name it so."""
    peer = session.peer
    return _unmapped(str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or ""))


@functools.lru_cache(maxsize=1024)  # asked about four times a message, of a few clients
def _unmapped(address: str) -> str:
    try:
        mapped = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        return str(mapped.ipv4_mapped)
    return address


def _is_tls(server: SMTP) -> bool:
    transport = server.transport
    return server._tls_protocol is not None or (
        transport is not None and transport.get_extra_info("ssl_object") is not None
    )


RECIPIENTS_REMEMBERED = 10_000  # a few MB at most, then forgotten all at once


class RelayHandler:
    def __init__(
        self,
        *,
        settings: Settings,
        pipeline: Pipeline,
        writer: ArchiveWriter,
        authenticator: Authenticator,
        limiter: FailureLimiter,
        clock: Clock,
        executor: Executor | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.pipeline = pipeline
        self.writer = writer
        self.authenticator = authenticator
        self.limiter = limiter
        self.clock = clock
        self.executor = executor
        # Where accepted mail is written: the SQLite file's disk, else the state directory.
        url = make_url(settings.database_url)
        self._spool = (
            Path(url.database).resolve().parent
            if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
            else settings.state_dir
        )
        # RCPT addresses already checked, and what they normalise to: staff write to the same
        # people again and again, and email-validator costs ~30 us an address.
        self._recipients: dict[str, str] = {}

    def __dir__(self) -> list[str]:
        """What aiosmtpd's per-connection reflection looks for (see `GatewaySMTP.__dir__`)."""
        return _reflected_names(type(self))

    # --- authentication -------------------------------------------------------------------
    async def _check_login(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        ip = _peer_ip(server.session) if server.session else ""
        try:
            user, secret = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            user, secret = "", ""
        # As the authenticator reads it: " Alice" is alice, and is counted as alice.
        name = user.strip().lower()
        # This login from this address has had its failures: the password is not even checked.
        if await self._throttled(server, name):
            return AuthResult(success=False, handled=True)
        if name and await self.authenticator.verify(name, secret):
            log.info("smtp_auth", client=ip, user=name, result="ok")
            return AuthResult(success=True, auth_data=LoginPassword(name.encode(), b""))
        await self.limiter.failed(
            ip,
            actor=name or "(no login given)",
            login=name,
            attempt=name.encode() + b"\0" + password,
        )
        log.warning("smtp_auth", client=ip, user=user[:320], result="failed")
        return AuthResult(success=False, handled=False, message=replies.AUTH_FAILED)

    async def _throttled(self, server: SMTP, login: str | None = None) -> bool:
        ip = _peer_ip(server.session) if server.session else ""
        # Asks the database only when about to refuse: an unlock may have lifted the limit.
        if await self.limiter.still_blocked(ip, login):
            await server.push(replies.AUTH_THROTTLED)
            if server.transport is not None:
                server.transport.close()
            return True
        return False

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if await self._throttled(server):
            return AuthResult(success=False, handled=True)
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._check_login(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if await self._throttled(server):
            return AuthResult(success=False, handled=True)
        if len(args) == 2:  # the username came as an initial response (RFC 4954 §4)
            try:
                login: object = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            login = await server.challenge_auth(server.AuthLoginUsernameChallenge)
        if not isinstance(login, bytes):
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check_login(server, login, password)

    # --- envelope ---------------------------------------------------------------------------
    def _auth_user(self, session: Session) -> str | None:
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            return session.auth_data.login.decode()
        return None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        ip = _peer_ip(session)
        user = self._auth_user(session)
        if address == "<>":  # aiosmtpd hands the null reverse-path over as written
            address = ""
        refused = None
        if user is None and not self.settings.auth.is_trusted(ip):
            refused = replies.AUTH_REQUIRED
        elif not self.pipeline.sender_allowed(address, user):
            owner = f"user <{user}>" if user else "this network"
            refused = f"553 5.7.1 <{address}>: Sender address rejected: not owned by {owner}"
        elif not self._disk_ok():
            refused = replies.NO_STORAGE
        if refused is not None:
            # A member of staff told "not owned by" calls IT: the log says who, from where.
            log.info(
                "smtp_refused",
                command="MAIL",
                client=ip,
                user=user,
                mail_from=address[:320],
                reply=refused,
            )
            return refused
        # aiosmtpd treats an empty mail_from as "no MAIL yet"; keep the null path spelled "<>".
        envelope.mail_from = address.strip().lower() or "<>"
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    def _disk_ok(self) -> bool:
        needed = self.settings.server.min_free_disk
        if needed is None:
            # Postfix refuses MAIL when free space is under 1.5 x the size limit.
            needed = int(self.settings.server.max_message_size * 1.5)
        path = self._spool
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            return shutil.disk_usage(path).free >= needed
        except OSError:
            return True

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings.server.max_recipients:
            return self._refused_rcpt(session, address, replies.TOO_MANY_RECIPIENTS)
        normalised = self._recipients.get(address)
        if normalised is None:
            try:
                normalised = checked_address(address)
            except EmailNotValidError:
                reply = f"{replies.BAD_ADDRESS}: <{address[:100]}>"
                return self._refused_rcpt(session, address, reply)
            if len(self._recipients) >= RECIPIENTS_REMEMBERED:
                self._recipients.clear()
            self._recipients[address] = normalised
        if normalised not in envelope.rcpt_tos:
            envelope.rcpt_tos.append(normalised)
            envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    def _refused_rcpt(self, session: Session, address: str, reply: str) -> str:
        log.info(
            "smtp_refused",
            command="RCPT",
            client=_peer_ip(session),
            rcpt=address[:320],
            reply=reply,
        )
        return reply

    # --- data -------------------------------------------------------------------------------
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        received_at: datetime = self.clock.now()
        submission = Submission(
            queue_id=new_queue_id(),
            raw=raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape"),
            envelope_from="" if envelope.mail_from in (None, "<>") else envelope.mail_from,
            envelope_to=tuple(envelope.rcpt_tos),
            received_at=received_at,
            client_address=_peer_ip(session),
            helo=session.host_name or "",
            auth_user=self._auth_user(session),
            tls=_is_tls(server),
        )
        bound = log.bind(
            queue_id=submission.queue_id,
            client=submission.client_address,
            user=submission.auth_user,
            mail_from=submission.envelope_from,
            rcpts=len(submission.envelope_to),
            size=len(submission.raw),
        )
        try:
            prepared = await self._prepare(submission)
        except SubmissionRefused as refused:
            bound.info("smtp_transaction", result="refused", reply=refused.reply)
            self.metrics.inc(_TRANSACTIONS, result="refused", verdict="")
            return refused.reply
        except TimeoutError:
            bound.error("smtp_transaction", result="tempfail", reason="evaluation timed out")
            self.metrics.inc(_TRANSACTIONS, result="tempfail", verdict="")
            return replies.TEMPFAIL
        except Exception as exc:
            # The directory's database unreachable, say: 451 (the client tries again), with
            # the message's context in the log and the count, not aiosmtpd's bare exception.
            bound.error("smtp_transaction", result="tempfail", reason=f"policy: {exc!r}")
            self.metrics.inc(_TRANSACTIONS, result="tempfail", verdict="")
            return replies.TEMPFAIL
        try:
            stored = await self.writer.submit(prepared.record, prepared.items)
        except Exception as exc:
            bound.error("smtp_transaction", result="tempfail", reason=f"archive: {exc!r}")
            self.metrics.inc(_TRANSACTIONS, result="tempfail", verdict="")
            return replies.TEMPFAIL
        result = "accepted" if prepared.reply.startswith("2") else "rejected"
        self.metrics.inc(_TRANSACTIONS, result=result, verdict=prepared.record.verdict)
        bound.info(
            "smtp_transaction",
            result="accepted",
            verdict=prepared.record.verdict,
            duplicate=stored.duplicate,
            archive_id=stored.archive_id,
        )
        if stored.duplicate:
            return f"250 2.0.0 Ok: already queued as {stored.queue_id}"
        return prepared.reply

    async def _prepare(self, submission: Submission) -> Prepared:
        if len(submission.raw) <= INLINE_LIMIT:
            return _timed(self.pipeline.prepare, submission, self._count_policy)
        loop = asyncio.get_running_loop()
        # Counted on the loop's thread when the worker thread finishes: after a timeout too,
        # when the session has answered and the thread is still at work.
        count = functools.partial(_call_soon, loop, self._count_policy)
        return await asyncio.wait_for(
            loop.run_in_executor(self.executor, _timed, self.pipeline.prepare, submission, count),
            self.settings.server.parse_timeout,
        )

    def _count_policy(self, seconds: float) -> None:
        self.metrics.inc(CPU_SECONDS, seconds, part="policy")

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default is "500 Error: (Exc) ..." - permanent, and the mail would be lost.
        log.error("smtp_exception", error=repr(error))
        return replies.TEMPFAIL


_TRANSACTIONS = "safeguard_smtp_transactions_total"


def _timed(
    prepare: Callable[[Submission], Prepared],
    submission: Submission,
    spent: Callable[[float], None],
) -> Prepared:
    """`prepare(submission)`, passing its CPU seconds (in the thread that runs it) to `spent`."""
    start = time.thread_time()
    try:
        return prepare(submission)
    finally:
        spent(time.thread_time() - start)


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[[float], None], value: float
) -> None:
    """`callback(value)` on `loop`'s thread; nothing if the loop has closed (the gateway has
    stopped while a thread was still evaluating)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, value)


@functools.cache
def _reflected_names(cls: type) -> list[str]:
    return sorted(name for name in dir(cls) if name.startswith(("smtp_", "auth_", "handle_")))


# `<dot-atom@domain>`, the shape nearly every client sends in MAIL FROM and RCPT TO.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol with enhanced status codes on its own replies."""

    def __init__(self, handler: Any, *, data_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        # aiosmtpd's `timeout` ends a session after that long a silence; this bounds the whole
        # of DATA, so that a client dripping a line now and then cannot hold a session for ever.
        self.data_timeout = data_timeout
        self._continued = b""

    def __dir__(self) -> list[str]:
        """aiosmtpd builds its tables of commands and AUTH mechanisms by reflection, anew for
        every connection: `inspect.getmembers(self)` gets every one of ~200 attributes, and
        `dir(self)` lists them again - ~170 us of the ~200 us a protocol object costs. Those
        tables only look for `smtp_*`, `auth_*` (and on the handler `handle_*`) names; listing
        just those (once per class) gives the same tables."""
        return _reflected_names(type(self))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's parser (the email package's RFC 5322 header parser, and a class created
        on every call) costs ~85 us per address, a tenth of a message's SMTP handling. A plain
        `<local@domain>` - dot-atoms only: no quotes, comments, spaces or source routes - parses
        to exactly what that parser returns; anything else still goes to it."""
        match = _SIMPLE_PATH.match(arg)
        if match is not None:
            address = match.group(1)
            rest = arg[match.end() :].lstrip(" \t")  # the parser drops the white space too
            local = address.rpartition("@")[0]
            fits = not self.local_part_limit or len(local) <= self.local_part_limit
            if fits and not rest.startswith("("):  # a comment: the parser's business
                return address, rest
        return super()._getaddr(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd 1.4.6's DATA, reading the data in pieces (`gateway.smtp.data`, where a
        test holds it to aiosmtpd's own answers) instead of one await per line: ~250 -> ~60 us
        of CPU per 5 kB message. Its deprecated `process_message` path is left out: our handler
        has `handle_DATA`."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        # aiosmtpd's idle timer runs from the DATA command on: here `timeout` is silence while
        # the data arrives (reset as each piece comes), `data_timeout` the whole of it, and
        # neither cuts off the handler once the message is in.
        try:
            async with asyncio.timeout(self.data_timeout):
                read = await read_data(
                    self._reader,
                    size_limit=self.data_size_limit,
                    line_limit=self.line_length_limit,
                    progress=self._reset_timeout,
                )
        except TimeoutError:
            log.info("smtp_data_timeout", client=self.session.peer, seconds=self.data_timeout)
            await self.push(replies.DATA_TIMEOUT)
            self._handler_coroutine.cancel()  # aiosmtpd's way to end the session
            self.transport.close()
            return
        except asyncio.CancelledError:
            # The connection was lost during DATA (aiosmtpd cancels this coroutine).
            self._writer.close()
            raise
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        await self._answer_data(read)
        self._reset_timeout()  # the client's silence before its next command

    async def _answer_data(self, read: DataRead) -> None:
        if read.state is DataState.TOO_LONG:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            self._set_post_data_state()
            return
        if read.state is DataState.TOO_MUCH:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        assert self.envelope is not None
        content: str | bytes = read.content
        if self._decode_data and self.enable_SMTPUTF8:
            content = read.content.decode("utf-8", errors="surrogateescape")
        elif self._decode_data:
            try:
                content = read.content.decode("ascii", errors="strict")
            except UnicodeDecodeError:
                await self.push("500 Error: strict ASCII mode")
                return
        self.envelope.content = content
        self.envelope.original_content = read.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def push(self, status: str | bytes) -> None:  # type: ignore[override]
        data = status.encode("ascii", "replace") if isinstance(status, str) else status
        data = replies.REWRITES.get(data, data)
        if data.rpartition(b"\r\n")[2][3:4] == b"-":
            # Not the last line of its reply (RFC 5321 4.2.1), which always follows: aiosmtpd
            # writes each line of EHLO's reply on its own, a segment and a wake-up of the
            # client each; the whole reply goes in one write with its last line.
            self._continued += data + b"\r\n"
            return
        if self._continued:
            data, self._continued = self._continued + data, b""
        await super().push(data)
