"""`safeguard serve`: the relay and its delivery worker until SIGTERM/SIGINT.

With `[server] processes = N` (N > 1) this process prepares the database once (migrations, the
demo directory), then forks N relay processes that each bind the listening port with
SO_REUSEPORT and run their own archive writer and delivery worker; it forwards SIGTERM/SIGINT to
them and waits. Several writers are safe: each commit takes the chain head under a lock
(BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE on PostgreSQL) and the queue hands an entry to
one worker only. If a relay process dies unexpectedly the others are stopped and `serve` exits
non-zero, for the service manager to restart it whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import io
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

import click
import structlog

from gateway import eventloop
from gateway.cli import LOG_LEVELS, Context, pass_context
from gateway.config import Settings
from gateway.logs import configure_logging

if TYPE_CHECKING:
    from gateway.httpserver import HttpServer
    from gateway.service import Gateway

log = structlog.get_logger("gateway.serve")


@click.command()
@click.option("--log-level", type=LOG_LEVELS, default="info", show_default=True)
@pass_context
def serve(ctx: Context, log_level: str) -> None:
    """Run the SMTP relay; a clean stop finishes the sessions in flight."""
    settings = ctx.settings
    from gateway.delivery.transports import check_upstream
    from gateway.smtp.server import server_tls_context

    server_tls_context(settings.server)  # a certificate and key that do not go together
    if settings.server.processes > 1:
        from gateway.service import load_policy_and_wording

        # Once, here, with each problem on its line (a relay process would only log that it
        # failed); a single process finds them as it builds its Gateway.
        load_policy_and_wording(settings)
        check_upstream(settings.upstream)  # a Maildir that cannot be made: said, not logged
        _whole_lines_on_stderr()
        configure_logging(log_level)
        sys.exit(_supervise(settings))
    configure_logging(log_level)
    _run_one(settings)


def _whole_lines_on_stderr() -> None:
    """Several processes share stderr: each log line must reach it in ONE write(), or lines
    from two processes interleave (Python's own stderr writes a line and its newline apart)."""
    raw = io.FileIO(os.dup(2), "w")
    sys.stderr = io.TextIOWrapper(
        io.BufferedWriter(raw, buffer_size=1 << 16),
        encoding=sys.stderr.encoding,
        errors="backslashreplace",
        line_buffering=True,
    )


def _run_one(settings: Settings, *, announce: bool = True) -> None:
    from gateway.service import Gateway

    async def run() -> None:
        gateway = Gateway(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await gateway.start()
        api = await _start_api(gateway, settings)
        try:
            console = await _start_console(gateway, settings)
        except OSError:
            if api is not None:
                await api.stop()
            raise
        settle_garbage_collector()
        log.info("relay_ready", event_loop=type(loop).__module__.partition(".")[0])
        if announce:
            processes = settings.server.processes
            click.echo(
                f"safeguard: relaying on {settings.server.host}:{gateway.ports[0]} "
                f"to {settings.upstream.display}"
                + (f" ({processes} processes)" if processes > 1 else ""),
                err=True,
            )
        await stop.wait()
        if console is not None:
            await console.stop()
        if api is not None:
            await api.stop()
        await gateway.stop()

    try:
        eventloop.run(run(), settings.server.event_loop)
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc.strerror or exc}") from None


def settle_garbage_collector() -> None:
    """Once the gateway is loaded (its directory, pack, templates: most of its objects, and
    all that live as long as it), the collector leaves them alone (`gc.freeze`) and looks at
    young objects less often. Under load (`bench/throughput.py`, c-sqlite) each relay process
    spent ~0.13 ms per message collecting, ~0.08 ms after this (timed by `gc.callbacks`).
    What is frozen and later dropped is still freed by reference counting; only a cycle among
    such objects (the first directory, say, once reloaded) would be kept, once."""
    gc.collect()
    gc.freeze()
    # Python's defaults are (700, 10, 10). With a first threshold this much larger, most of a
    # message's short-lived objects are gone before a collection: fewer are carried into the
    # older generations, which are then collected less often too.
    gc.set_threshold(10_000, 20, 100)


async def _start_api(gateway: Gateway, settings: Settings) -> HttpServer | None:
    """The HTTP API (`[api] listen`; "" turns it off) on the relay's event loop."""
    from gateway.api.app import ApiServer, ApiServices

    if settings.api_listen is None:
        return None
    host, port = settings.api_listen
    server = ApiServer(
        ApiServices.of(gateway), host, port, reuse_port=settings.server.processes > 1
    )
    return await _listen(server, gateway, "api_listening", "[api] listen")


async def _start_console(gateway: Gateway, settings: Settings) -> HttpServer | None:
    """The safeguarding leads' console (`[web] listen`; "" turns it off), as the API is."""
    from gateway.web.app import WebServer, WebServices

    if settings.web_listen is None:
        return None
    host, port = settings.web_listen
    services = WebServices.of(
        settings,
        gateway.engine,
        gateway.clock,
        gateway.directory,
        gateway.policy.pack.organisation,
        gateway.templates,
        gateway.policy.pack.urgent_rules,
    )
    server = WebServer(services, host, port, reuse_port=settings.server.processes > 1)
    return await _listen(server, gateway, "console_listening", "[web] listen")


async def _listen(server: HttpServer, gateway: Gateway, event: str, key: str) -> HttpServer:
    """Several relay processes share each HTTP port as they share the SMTP one. A port that
    is taken stops the gateway (OSError: `serve` says it cannot start)."""
    from gateway.smtp.server import listening

    try:
        with listening(key, server.host, server.port):
            bound = await server.start()
    except OSError:
        await gateway.stop()
        raise
    log.info(event, listen=f"{server.host}:{bound}")
    return server


def _prepare(settings: Settings) -> None:
    """What must happen once, not once per process: migrations and the demo directory."""
    from gateway.clock import SystemClock
    from gateway.directory_source import seed_demo_if_empty
    from gateway.metrics import metrics_folder
    from gateway.service import load_policy_and_wording, open_engine
    from gateway.store.directory import DirectoryStore

    # The pack and its wording first: a broken one stops start-up before the archive is made.
    load_policy_and_wording(settings)
    engine = open_engine(settings, pool_size=1)
    try:
        if settings.demo_directory:
            seed_demo_if_empty(DirectoryStore(engine), SystemClock().now())
    finally:
        engine.dispose()
    # Counters start at zero with the processes, as one process's do.
    for stale in metrics_folder(settings.state_dir).glob("*.json"):
        stale.unlink(missing_ok=True)


def _per_process(settings: Settings) -> Settings:
    """`[delivery] workers` is the whole gateway's number of upstream connections."""
    processes = settings.server.processes
    workers = max(1, -(-settings.delivery.workers // processes))
    return dataclasses.replace(
        settings, delivery=dataclasses.replace(settings.delivery, workers=workers)
    )


def _child(settings: Settings, index: int) -> int:
    try:
        _run_one(settings, announce=index == 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BaseException as exc:  # the supervisor sees the exit status, the log says why
        log.error("serve_process_failed", index=index, error=repr(exc))
        return 1
    return 0


def _supervise(settings: Settings) -> int:
    try:
        _prepare(settings)
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc.strerror or exc}") from None
    child_settings = _per_process(settings)
    children: dict[int, int] = {}
    sys.stdout.flush()
    sys.stderr.flush()
    for index in range(settings.server.processes):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; covered through its behaviour
            code = 1
            try:
                code = _child(child_settings, index)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = index

    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while children:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is None:
            continue
        code = os.waitstatus_to_exitcode(wait_status)
        if not stopping:
            log.error("serve_process_died", index=index, pid=pid, exit=code)
            status = 1
            forward(signal.SIGTERM, None)
        elif code != 0:
            status = status or 1
    return status
