"""`safeguard digest [--since 24h]`: the safeguarding lead's summary of flags and verdicts."""

from __future__ import annotations

import re
import sys
from datetime import timedelta

import click

from gateway.cli import Context, pass_context
from gateway.cli.audit import MOST_DAYS
from gateway.clock import SystemClock

_SPAN = re.compile(r"^(\d+)\s*([hdw])$")


def parse_span(text: str) -> timedelta:
    match = _SPAN.match(text.strip().lower())
    if not match:
        raise click.BadParameter(f"{text!r}: use hours, days or weeks, e.g. 24h, 7d, 2w")
    amount, unit = int(match[1]), match[2]
    if amount > MOST_DAYS * 24:  # also keeps the arithmetic below in range
        raise click.BadParameter(f"{text!r} is more than {MOST_DAYS // 365} years")
    return {
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
        "w": timedelta(weeks=amount),
    }[unit]


@click.command()
@click.option("--since", default="24h", show_default=True, help="How far back: 24h, 7d, 2w.")
@pass_context
def digest(ctx: Context, since: str) -> None:
    """Flags by rule and by member of staff, with counts of returned and held mail."""
    from gateway.notify.digest import render, summarise
    from gateway.notify.render import environment_for
    from gateway.service import load_policy, open_engine
    from gateway.store.reports import verdicts_since

    try:
        span = parse_span(since)
    except click.BadParameter as exc:
        click.echo(f"safeguard: --since {exc.message}", err=True)
        sys.exit(2)
    pack = load_policy(ctx.settings).pack
    org = pack.organisation
    now = SystemClock().now().astimezone(org.timezone)
    engine = open_engine(ctx.settings, pool_size=1)
    try:
        items = verdicts_since(engine, now - span)
    finally:
        engine.dispose()
    env = environment_for(ctx.settings.pack, ctx.settings.templates, ctx.settings.web.url)
    digest = summarise(items, now - span, now, pack.urgent_rules)
    click.echo(render(env, digest, org.name), nl=False)
