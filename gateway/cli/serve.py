"""`safeguard serve`: the relay and its delivery worker until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal

import click

from gateway.cli import Context, pass_context
from gateway.logs import configure_logging


@click.command()
@click.option("--log-level", default="info", show_default=True)
@pass_context
def serve(ctx: Context, log_level: str) -> None:
    """Run the SMTP relay; a clean stop finishes the sessions in flight."""
    configure_logging(log_level)
    settings = ctx.settings
    from gateway.service import Gateway

    async def run() -> None:
        gateway = Gateway(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await gateway.start()
        click.echo(
            f"safeguard: relaying on {settings.server.host}:{gateway.ports[0]} "
            f"to {settings.upstream.display}",
            err=True,
        )
        await stop.wait()
        await gateway.stop()

    try:
        asyncio.run(run())
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
