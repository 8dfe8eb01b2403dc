"""An upstream SMTP server written by hand on a real socket: it keeps the exact bytes the
gateway put on the wire, and misbehaves on cue (closes mid-body, or after the final dot
without answering), which a well-behaved library server will not do."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tests.support import free_port

OK = "ok"
CLOSE_MID_BODY = "close-mid-body"  # read part of the message, then drop the connection
CLOSE_AFTER_DOT = "close-after-dot"  # read the whole message and the dot, never answer


def _path(command: bytes) -> str:
    """The address inside <...> of a MAIL or RCPT command."""
    found = re.search(rb"<([^>]*)>", command)
    return found.group(1).decode(errors="replace") if found else ""


@dataclass
class Transaction:
    mail_from: str
    rcpt_tos: list[str]
    wire: bytes  # the DATA phase as sent, dot-stuffed, up to and including <CRLF>.<CRLF>
    fault: str

    @property
    def content(self) -> bytes:
        """The message as the sender meant it: the terminator dropped, dots un-stuffed."""
        lines = self.wire[: -len(b".\r\n")].split(b"\r\n")
        return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


@dataclass
class WireUpstream:
    """`faults` are used up one per DATA, in order; after them every DATA is answered 250."""

    faults: list[str] = field(default_factory=list)
    mid_body_bytes: int = 64 * 1024
    port: int = field(default_factory=free_port)
    transactions: list[Transaction] = field(default_factory=list)
    commands: list[bytes] = field(default_factory=list)  # every command line, in order
    connections: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> WireUpstream:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._session, "127.0.0.1", self.port, limit=1 << 24), self._loop
        ).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._sessions):
                task.cancel()
            await asyncio.gather(*self._sessions, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def accepted(self) -> list[Transaction]:
        with self._lock:
            return [t for t in self.transactions if t.fault == OK]

    def wait_for(self, count: int, timeout: float = 20) -> list[Transaction]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(got := self.accepted()) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"upstream accepted {len(self.accepted())}, expected {count}")

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        with self._lock:
            self.connections += 1
        mail_from, rcpts = "", []

        def say(*lines: str) -> None:
            writer.write("".join(f"{line}\r\n" for line in lines).encode())

        try:
            say("220 upstream.example ESMTP")
            while line := await reader.readline():
                with self._lock:
                    self.commands.append(line)
                verb = line[:4].upper()
                if verb == b"EHLO":
                    say("250-upstream.example", "250-8BITMIME", "250 SMTPUTF8")
                elif verb == b"HELO":
                    say("250 upstream.example")
                elif verb == b"MAIL":
                    mail_from, rcpts = _path(line), []
                    say("250 2.1.0 Ok")
                elif verb == b"RCPT":
                    rcpts.append(_path(line))
                    say("250 2.1.5 Ok")
                elif verb == b"DATA":
                    say("354 End data with <CR><LF>.<CR><LF>")
                    await writer.drain()
                    fault = self._next_fault()
                    if fault == CLOSE_MID_BODY:
                        await reader.read(self.mid_body_bytes)
                        self._record(mail_from, rcpts, b"", fault)
                        return  # unread data is left behind: the kernel answers with a reset
                    wire = await reader.readuntil(b"\r\n.\r\n")
                    self._record(mail_from, rcpts, wire, fault)
                    if fault == CLOSE_AFTER_DOT:
                        return
                    say("250 2.0.0 Ok: stored")
                elif verb in (b"RSET", b"NOOP"):
                    say("250 2.0.0 Ok")
                elif verb == b"QUIT":
                    say("221 2.0.0 Bye")
                    return
                else:
                    say("502 5.5.2 Error: command not recognized")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()
            self._sessions.discard(task)

    def _next_fault(self) -> str:
        with self._lock:
            return self.faults.pop(0) if self.faults else OK

    def _record(self, mail_from: str, rcpts: Iterable[str], wire: bytes, fault: str) -> None:
        with self._lock:
            self.transactions.append(Transaction(mail_from, list(rcpts), wire, fault))
