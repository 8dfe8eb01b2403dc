"""`safeguard digest [--since 24h]`: the safeguarding lead's summary of flags and verdicts."""

from __future__ import annotations

import sys

import click

from gateway.cli import Context, pass_context
from gateway.cli.since import PERIODS, parse_since
from gateway.clock import SystemClock


@click.command()
@click.option(
    "--since", default="24h", show_default=True, metavar="PERIOD", help=f"How far back: {PERIODS}."
)
@pass_context
def digest(ctx: Context, since: str) -> None:
    """Flags by rule and by member of staff, with counts of returned and held mail."""
    from gateway.notify.digest import render, summarise
    from gateway.notify.render import environment_for
    from gateway.service import load_policy, open_archive
    from gateway.store.reports import verdicts_since

    try:
        span = parse_since(since)  # as `safeguard audit --since`
    except ValueError as exc:
        click.echo(f"safeguard: {exc}", err=True)
        sys.exit(2)
    pack = load_policy(ctx.settings).pack
    org = pack.organisation
    now = SystemClock().now().astimezone(org.timezone)
    engine = open_archive(ctx.settings)
    try:
        items = verdicts_since(engine, now - span)
    finally:
        engine.dispose()
    env = environment_for(ctx.settings.pack, ctx.settings.templates, ctx.settings.web.url)
    digest = summarise(items, now - span, now, pack.urgent_rules)
    click.echo(render(env, digest, org.name), nl=False)
