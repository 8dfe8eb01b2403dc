"""`safeguard audit`: who searched, exported, reviewed or released what, and when."""

from __future__ import annotations

import json
import sys

import click

from gateway.cli import Context, pass_context
from gateway.cli.since import PERIODS, parse_since
from gateway.clock import SystemClock
from gateway.store.audit import AUDIT_ACTIONS, AuditLog


@click.command()
@click.option("--since", metavar="PERIOD", help=f"Only the last PERIOD: {PERIODS}.")
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
    """Who searched, exported, reviewed or released what, and when (newest first; times in
    the organisation's zone, --json in UTC)."""
    from gateway.service import open_archive

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
    engine = open_archive(ctx.settings)
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
    # Each column fits its longest value, and every action's name its own: a long actor
    # ("alice (as root)", a long address) pushed the rest of its row out of line.
    zone = ctx.zone
    when = f"WHEN ({zone})"
    stamp = max(19, len(when))
    who = max(len("WHO"), *(len(e.actor) for e in entries))
    wide = max(map(len, AUDIT_ACTIONS))
    click.echo(f"{when:<{stamp}}  {'WHO':<{who}} {'ACTION':<{wide}} {'RESULTS':>7}  QUERY")
    for e in entries:
        at = f"{e.at.astimezone(zone):%Y-%m-%d %H:%M:%S}"
        count = "" if e.result_count is None else str(e.result_count)
        query = e.query
        if e.action == "export" and e.detail.get("reviews"):
            query += "  [with the leads' reviews and notes]"
        click.echo(f"{at:<{stamp}}  {e.actor:<{who}} {e.action:<{wide}} {count:>7}  {query}")
