"""`safeguard web`: the safeguarding leads' console on its own (`serve` also runs it)."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from gateway import eventloop
from gateway.cli import LOG_LEVELS, Context, pass_context
from gateway.logs import configure_logging


@click.command()
@click.option("--log-level", type=LOG_LEVELS, default="info", show_default=True)
@pass_context
def web(ctx: Context, log_level: str) -> None:
    """The safeguarding leads' console alone, on [web] listen (serve runs it too)."""
    from gateway.clock import SystemClock
    from gateway.directory_source import DirectorySource
    from gateway.service import load_policy_and_wording, open_engine
    from gateway.store.directory import DirectoryStore
    from gateway.web.app import WebServer, WebServices

    settings = ctx.settings
    if settings.web_listen is None:
        # A setting that cannot work here: bad input (exit 2), as interface.md's codes have it.
        click.echo('safeguard: [web] listen is "": the console is switched off', err=True)
        sys.exit(2)
    configure_logging(log_level)
    policy, notices = load_policy_and_wording(settings)
    engine = open_engine(settings, pool_size=4)

    async def run() -> None:
        services = WebServices.of(
            settings,
            engine,
            SystemClock(),
            DirectorySource(DirectoryStore(engine)),
            policy.pack.organisation,
            notices,
            policy.pack.urgent_rules,
        )
        from gateway.smtp.server import listening

        host, port = settings.web_listen  # type: ignore[misc]
        server = WebServer(services, host, port, reuse_port=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        with listening("[web] listen", host, port):
            bound = await server.start()
        click.echo(f"safeguard: console on http://{host}:{bound}/", err=True)
        await stop.wait()
        await server.stop()

    try:
        eventloop.run(run(), settings.server.event_loop)
    except OSError as exc:
        raise click.ClickException(f"cannot start the console: {exc.strerror or exc}") from None
    finally:
        engine.dispose()
