"""`safeguard archive verify`: prove that nothing in the archive was altered."""

from __future__ import annotations

import sys

import click

from gateway.cli import Context, pass_context


@click.group()
def archive() -> None:
    """The tamper-evident archive."""


@archive.command()
@pass_context
def verify(ctx: Context) -> None:
    """Walk the hash chain; exit 1 naming the first record that does not match."""
    from gateway.service import open_engine
    from gateway.store.integrity import verify as walk

    engine = open_engine(ctx.settings, pool_size=1)
    show = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show:
            click.echo(f"\rchecked {done:,} of {total:,} records", nl=False, err=True)

    try:
        report = walk(engine, progress=progress)
    finally:
        engine.dispose()
    if show:
        click.echo("", err=True)
    if report.ok:
        click.echo(f"Archive verified: {report.checked:,} records, hash chain intact.")
        return
    click.echo(f"ARCHIVE ALTERED: {report.problem}. {report.checked:,} records before it verified.")
    sys.exit(1)
