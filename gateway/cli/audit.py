"""`safeguard audit`: who searched, exported, reviewed or released what, and when."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta

import click

from gateway.cli import Context, pass_context
from gateway.clock import SystemClock
from gateway.store.audit import AUDIT_ACTIONS, AuditLog

_SINCE_RE = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MOST_DAYS = 100 * 365  # further back than any archive goes, and short of date arithmetic's end


def parse_since(value: str) -> timedelta:
    """`30m`, `24h`, `7d`, `2w`: how far back to look."""
    match = _SINCE_RE.fullmatch(value.strip().lower())
    if match is None:
        raise ValueError(f"--since {value!r} is not a period such as 30m, 24h, 7d or 2w")
    amount, unit = int(match.group(1)), _UNITS[match.group(2)]
    # Bounded in minutes first: a long enough number overflows timedelta itself.
    period = timedelta(**{unit: amount}) if amount <= MOST_DAYS * 24 * 60 else None
    if period is None or period.days > MOST_DAYS:
        raise ValueError(f"--since {value!r} is more than {MOST_DAYS // 365} years")
    return period


@click.command()
@click.option("--since", metavar="PERIOD", help="Only the last PERIOD: 30m, 24h, 7d, 2w.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of entries.")
@click.option(
    "--limit", type=click.IntRange(1, 10**9), default=None, help="At most this many rows."
)
@click.option("--actor", metavar="WHO", help="Only what this person (or local user) did.")
@click.option(
    "--action",
    metavar="ACTION",
    help="Only this action: search, export, view, review, release, cancel, signin, "
    "signin_failed, password_set, smtp_auth_failed, api_token_failed, purge, ...",
)
@pass_context
def audit(
    ctx: Context,
    since: str | None,
    as_json: bool,
    limit: int | None,
    actor: str | None,
    action: str | None,
) -> None:
    """Who searched, exported, reviewed or released what, and when (newest first)."""
    from gateway.service import open_engine

    try:
        back = parse_since(since) if since is not None else None
    except ValueError as exc:
        click.echo(f"safeguard: {exc}", err=True)
        sys.exit(2)
    if action is not None and action not in AUDIT_ACTIONS:
        # A misspelt action found nothing and said "No audit entries.": as if nothing happened.
        known = ", ".join(sorted(AUDIT_ACTIONS))
        click.echo(f"safeguard: --action {action!r} is not an action (known: {known})", err=True)
        sys.exit(2)
    now = SystemClock().now()
    engine = open_engine(ctx.settings, pool_size=1)
    try:
        entries = AuditLog(engine).entries(
            since=now - back if back is not None else None,
            limit=limit,
            actor=actor.strip() if actor else None,
            action=action,
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        click.echo("No audit entries" + (f" in the last {since}." if since else "."))
        return
    wide = max(map(len, AUDIT_ACTIONS))  # every action's name fits its column
    click.echo(f"{'WHEN (UTC)':<19}  {'WHO':<32} {'ACTION':<{wide}} {'RESULTS':>7}  QUERY")
    for e in entries:
        count = "" if e.result_count is None else str(e.result_count)
        click.echo(
            f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<32} {e.action:<{wide}} {count:>7}  {e.query}"
        )
