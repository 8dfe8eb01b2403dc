"""`safeguard check FILE.eml`: what the gateway would do with a draft, and how to fix it."""

from __future__ import annotations

import json
import sys
from datetime import datetime, tzinfo
from pathlib import Path

import click
from email_validator import EmailNotValidError

from gateway.cli import Context, pass_context
from gateway.clock import SystemClock
from gateway.config import read_at_most
from gateway.message.addresses import checked_address
from gateway.message.parse import MessageTooComplex, parse_message
from gateway.notify.render import local_time
from gateway.pipeline import check_result
from gateway.policy.types import Action


@click.command()
@click.argument("eml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "sender", help="Envelope sender (default: the From: header).")
@click.option(
    "--rcpt", "rcpts", multiple=True, help="Envelope recipient (repeat; default To+Cc+Bcc)."
)
@click.option("--at", "at", help="Evaluate as if sent at this ISO-8601 time (local if no zone).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def check(
    ctx: Context,
    eml: Path,
    sender: str | None,
    rcpts: tuple[str, ...],
    at: str | None,
    as_json: bool,
) -> None:
    """Evaluate a draft without sending it. Exit 0: deliver as is; 1: something was found."""
    from gateway.service import build_checker

    settings = ctx.settings
    limit = settings.server.max_message_size
    try:
        raw = read_at_most(eml, limit)
    except OSError as exc:
        click.echo(f"safeguard: {eml}: {exc.strerror}", err=True)
        sys.exit(2)
    if raw is None:
        click.echo(
            f"safeguard: {eml}: larger than [server] max_message_size ({limit} bytes), "
            "which the relay would refuse",
            err=True,
        )
        sys.exit(2)
    for rcpt in rcpts:
        try:
            checked_address(rcpt)  # as the relay checks RCPT TO
        except EmailNotValidError as exc:
            click.echo(f"safeguard: --rcpt {rcpt!r} is not an e-mail address: {exc}", err=True)
            sys.exit(2)
    checker = build_checker(settings)
    zone = checker.policy.pack.organisation.timezone
    if at is None:
        moment = SystemClock().now()
    else:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            click.echo(f"safeguard: --at {at!r} is not an ISO-8601 time", err=True)
            sys.exit(2)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        if not 1970 <= moment.year <= 9000:
            click.echo(f"safeguard: --at {at!r}: give a time from 1970 on", err=True)
            sys.exit(2)
    # An empty envelope means "the header recipients", exactly what the relay would be given.
    try:
        message = parse_message(
            raw, envelope_from=sender or "", envelope_to=list(rcpts), sent_at=moment
        )
    except MessageTooComplex as exc:
        click.echo(f"safeguard: {eml}: {exc}", err=True)
        sys.exit(2)
    if not message.recipients:
        click.echo(f"safeguard: {eml}: no recipients (no To/Cc/Bcc and no --rcpt)", err=True)
        sys.exit(2)
    verdict, explained = checker.evaluate(message, raw, moment)
    if as_json:
        click.echo(
            json.dumps(
                check_result(verdict, explained, sender_facing=False), indent=2, ensure_ascii=False
            )
        )
    else:
        _print(verdict.action, explained, verdict.deliver_at, message.subject, zone)
    sys.exit(0 if not explained else 1)


_HEADLINE = {
    Action.DELIVER: "DELIVER: nothing to change.",
    Action.FLAG: "DELIVER, FLAGGED for the safeguarding lead's review.",
    Action.REWRITE: "DELIVER after the gateway's correction.",
    Action.DEFER: "HOLD until office hours.",
    Action.REJECT: "RETURN to sender: the message would not be sent.",
}


def _print(
    action: Action, explained, deliver_at: datetime | None, subject: str, zone: tzinfo
) -> None:
    click.echo(f"{subject or '(no subject)'}\n{_HEADLINE[action]}")
    if deliver_at is not None:
        # In the notices' one format (the findings below and the sender's notice use it).
        click.echo(f"It would be delivered {local_time(deliver_at, zone)}.")
    for number, e in enumerate(explained, start=1):
        who = f" [{e.finding.recipient}]" if e.finding.recipient else ""
        click.echo(
            f"\n{number}. {e.finding.action.value.upper()} {e.finding.code} (rule {e.rule.id}){who}"
        )
        click.echo(f"   {e.explanation}")
        click.echo(f"   What to change: {e.correction}")
        click.echo(f"   The policy says: “{e.rule.policy}”")
