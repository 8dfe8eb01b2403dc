"""The baseline of `bench/throughput.py`: a bare aiosmtpd relay, no checks and no archive.

Same relay semantics as the gateway, minus everything it adds: accept the envelope, read the
message, forward it upstream with aiosmtplib and answer the client only with upstream's verdict
(250 once upstream said 250, 451 otherwise). It is *store-and-forward without a disk*: the
message is held in memory for the length of the session and never queued, so a 250 still means
"someone has taken responsibility" (upstream did, before we answered), which is the only
durability a relay with no storage can offer. That makes it the fastest honest relay aiosmtpd
can be, and a fair floor for what parsing, policy and a durable archive cost.

Upstream connections are kept open in a small pool (one message at a time per connection, as
aiosmtplib requires) instead of one connection per message, so the baseline is not slowed by
connection set-up the gateway's delivery worker does not pay either.

    .venv/bin/python bench/bare_relay.py --listen 127.0.0.1:2530 --upstream 127.0.0.1:2600

With `--policy gateway.toml` it is the benchmark's system `p`: the same relay, but each message
first goes through the gateway's own `Pipeline.prepare` (parse, every rule of the pack, the
plan: the bounce for refused mail, the rewritten copy) on the event loop, as in the gateway,
and what the plan says to send is forwarded. Nothing is archived or queued. The benchmark
runs it with `--protocol gateway --loop uvloop`, as the gateway runs: `p` against `s` is what
the policy work costs; `c` against `p` is what the archive, the queue and the
delivery worker cost. `--processes N` serves one listening socket from N processes, as
`safeguard serve` does.

With `--protocol gateway` the server side is the gateway's own subclass of aiosmtpd's SMTP
(`GatewaySMTP`: its cheaper per-connection set-up, address parsing and DATA reader): the
benchmark's system `s` (with `--loop uvloop`, the gateway's default event loop), SMTP in and
out as the gateway does them, and nothing else. Both take the gateway's garbage-collector
settings (`gateway/cli/serve.py`), once loaded, as `safeguard serve` does; neither has its
handler's reflection shortcut (`RelayHandler.__dir__`), a little more per connection than the
gateway does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session


class Pool:
    """Idle upstream connections; a sender takes one, uses it for one message, gives it back."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(size)

    async def send(self, mail_from: str, rcpts: list[str], data: bytes) -> str:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=60)
                    await client.connect()
                errors, _reply = await client.sendmail(mail_from, rcpts, data)
            except aiosmtplib.SMTPResponseException as exc:
                with contextlib.suppress(Exception):
                    if client is not None:
                        await client.rset()
                        self._idle.append(client)
                return f"{exc.code} {exc.message}" if exc.code >= 500 else "451 4.4.0 upstream"
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                if client is not None:
                    client.close()
                return "451 4.4.1 upstream unavailable"
            self._idle.append(client)
            if errors:
                return "451 4.4.0 some recipients refused upstream"
            return "250 2.0.0 Ok: relayed"


class BareRelay:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        return await self.pool.send(envelope.mail_from or "", list(envelope.rcpt_tos), data)


class PolicyRelay(BareRelay):
    """The bare relay plus the gateway's policy stage: what it would send, nothing stored."""

    def __init__(self, pool: Pool, pipeline: Any) -> None:
        super().__init__(pool)
        self.pipeline = pipeline

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        from gateway.pipeline import Submission

        raw = envelope.original_content or b""
        prepared = self.pipeline.prepare(
            Submission(
                queue_id=uuid.uuid4().hex[:16],
                raw=raw,
                envelope_from=envelope.mail_from or "",
                envelope_to=tuple(envelope.rcpt_tos),
                received_at=datetime.now(UTC),
                client_address=str(session.peer[0]) if session.peer else "",
                helo=session.host_name or "",
            )
        )
        for item in prepared.items:
            if item.not_before is not None:
                continue  # held for later: the gateway would queue it
            body = item.prefix + (item.content if item.content is not None else raw)
            reply = await self.pool.send(item.mail_from, list(item.recipients), body)
            if not reply.startswith("250"):
                return reply
        return "250 2.0.0 Ok: relayed"


def _pipeline(config: Path) -> Any:
    from gateway.config import load_settings
    from gateway.service import Gateway

    gateway = Gateway(load_settings(config), run_worker=False)
    gateway.directory()
    return gateway.pipeline


def _protocol(name: str) -> type[SMTP]:
    if name == "gateway":
        from gateway.smtp.handler import GatewaySMTP

        return GatewaySMTP
    return SMTP


async def main(
    sock: socket.socket,
    upstream: tuple[str, int],
    pool_size: int,
    policy: Path | None,
    protocol: type[SMTP],
) -> None:
    loop = asyncio.get_running_loop()
    pool = Pool(upstream[0], upstream[1], pool_size)
    handler = BareRelay(pool) if policy is None else PolicyRelay(pool, _pipeline(policy))
    if protocol is not SMTP:
        # The gateway's garbage-collector settings, as `safeguard serve` makes them once loaded.
        from gateway.cli.serve import settle_garbage_collector

        settle_garbage_collector()
    server = await loop.create_server(
        # loop= as the gateway passes it: otherwise aiosmtpd looks it up on every connection.
        lambda: protocol(handler, hostname="bare.localhost", enable_SMTPUTF8=True, loop=loop),
        sock=sock,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=_hostport, default=("127.0.0.1", 2530))
    parser.add_argument("--upstream", type=_hostport, required=True)
    parser.add_argument("--pool", type=int, default=8, help="upstream connections (default 8)")
    parser.add_argument("--policy", type=Path, help="a gateway config: run its policy stage too")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="Python's own event loop, or uvloop (the gateway's default)",
    )
    parser.add_argument(
        "--protocol",
        choices=("aiosmtpd", "gateway"),
        default="aiosmtpd",
        help="aiosmtpd's SMTP class, or the gateway's own subclass of it (GatewaySMTP)",
    )
    args = parser.parse_args()
    listener = socket.create_server(args.listen, backlog=1024)
    children = []
    for _ in range(args.processes - 1):
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)
    if children or args.processes == 1:
        print(f"relay on {args.listen}, {args.processes} process(es)", flush=True)
    try:
        relay = main(listener, args.upstream, args.pool, args.policy, _protocol(args.protocol))
        factory = None
        if args.loop == "uvloop":
            import uvloop

            factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(relay)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
