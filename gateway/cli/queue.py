"""`safeguard queue list|retry`: what waits for delivery, and a nudge."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from gateway.cli import Context, pass_context
from gateway.cli.actor import audit_note, local_user
from gateway.clock import SystemClock
from gateway.policy.pack import load_pack
from gateway.search.labels import finding_label
from gateway.store.held import HeldMail, HeldMessage
from gateway.store.queue import QueueStore
from gateway.store.records import as_aware
from gateway.store.search import NotASafeguardingLead, require_dsl


def _store(ctx: Context) -> QueueStore:
    from gateway.service import open_archive

    engine = open_archive(ctx.settings)
    ctx.call_on_close(engine.dispose)
    return QueueStore(engine)


@click.group()
def queue() -> None:
    """Messages waiting for delivery (deferred, held or retrying)."""


_HEADER = ("ID", "QUEUE ID", "KIND", "STATUS", "TRIES", "NEXT TRY")
_NUMBERS = (0, 4)  # right-aligned


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        cell.rjust(width) if column in _NUMBERS else cell.ljust(width)
        for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )


@queue.command("list")
@pass_context
def list_(ctx: Context) -> None:
    """Show waiting messages, soonest first (times in the organisation's zone)."""
    rows = _store(ctx).pending()
    if not rows:
        click.echo("The queue is empty.")
        return
    # Times in the zone `search` shows, named in the header: one message reads the same in
    # every command.
    zone = ctx.zone
    header = [*_HEADER[:-1], f"{_HEADER[-1]} ({zone})"]
    table = [
        [
            str(row.id),
            row.queue_id,
            row.kind,
            row.status,
            str(row.attempts),
            f"{as_aware(row.next_attempt_at).astimezone(zone):%Y-%m-%d %H:%M:%S}",
        ]
        for row in rows
    ]
    # Columns fit their longest value, as `safeguard audit`'s do: with fixed widths a long
    # queue id or status pushed the rest of its row out of line.
    widths = [max(len(cells[i]) for cells in [header, *table]) for i in range(len(header))]
    first = _line(header, widths) + "  "
    click.echo(first + "RECIPIENTS / LAST ERROR")
    for row, cells in zip(rows, table, strict=True):
        click.echo(_line(cells, widths) + "  " + ", ".join(row.recipients))
        if row.status == "sending":
            click.echo(" " * len(first) + _sending(row.lease_owner or "?", row.lease_until, ctx))
        if row.last_error:  # on a line of its own, under RECIPIENTS
            click.echo(" " * len(first) + row.last_error[:200])


def _sending(owner: str, until: datetime | None, ctx: Context) -> str:
    """Whose the entry is: a gateway that stopped mid-send holds it until its lease ends, and
    then another takes it (an admin's review found it shown with no owner, and unretryable)."""
    if until is None:
        return f"being sent by {owner}"
    when = f"{as_aware(until).astimezone(ctx.zone):%Y-%m-%d %H:%M:%S}"
    return f"being sent by {owner}; if that gateway has stopped, another takes it over at {when}"


@queue.command()
@click.argument("entry")
@click.option(
    "--as",
    "as_email",
    metavar="EMAIL",
    help="The safeguarding lead releasing mail the policy held (a staff row with dsl = yes); "
    "audited by that name.",
)
@click.option(
    "--yes", is_flag=True, help="Release mail the policy held without asking for confirmation."
)
@pass_context
def retry(ctx: Context, entry: str, as_email: str | None, yes: bool) -> None:
    """Try ENTRY now, even if it is held until later: the ID column of `queue list`, or the
    reference of `250 ... queued as REF` and of the notices (every waiting entry of it).
    Mail the safeguarding policy held is released only by a lead (--as), as in the console."""
    store = _store(ctx)
    now = SystemClock().now()
    text = entry.strip()
    if text.isdigit() and len(text) <= 18:
        ids = [int(text)]
    else:
        # What staff quote: the reply's and the held notice's reference.
        ids = store.waiting_for(text.upper())
        if not ids:
            click.echo(
                f"safeguard: nothing waits for delivery under the reference {text!r} "
                "(`safeguard queue list` shows what does, with its ID and QUEUE ID)",
                err=True,
            )
            sys.exit(2)
    held_mail = HeldMail(
        store.engine,
        lifetime=ctx.settings.delivery.lifetime,
        urgent_rules=load_pack(ctx.settings.pack, site=ctx.settings.organisation).urgent_rules,
    )
    # Every entry's hold decided before any is changed: a refusal leaves none released.
    plan = [(entry_id, held_mail.get(entry_id, now)) for entry_id in ids]
    held = [h for _, h in plan if h is not None]
    actor = None
    if held:
        # Sending early what the safeguarding policy held overrides it: a lead's decision, as
        # in the console (where only leads may release), not an admin's nudge.
        said = "; ".join(_held_line(h, ctx) for h in held)
        said = f"{said[0].upper()}{said[1:]}"
        if as_email is None:
            click.echo(
                f"safeguard: {said}. Releasing it is a safeguarding lead's decision: run this "
                "with --as LEAD@ADDRESS (a staff row with dsl = yes), or release it in the "
                "console; nothing changed",
                err=True,
            )
            sys.exit(2)
        try:
            actor = require_dsl(store.engine, as_email)
        except NotASafeguardingLead:
            click.echo(
                f"safeguard: {as_email} is not a safeguarding lead in the directory; "
                "nothing changed",
                err=True,
            )
            sys.exit(2)
        if not yes:
            asked = f"{said}. Release {'it' if len(held) == 1 else 'them'} now"
            if not sys.stdin.isatty():
                click.echo(f"safeguard: {asked}? Not at a terminal: add --yes", err=True)
                sys.exit(2)
            if not click.confirm(asked + "?", default=False):
                click.echo("Not released; nothing changed.")
                return
    for entry_id, hold in plan:
        _retry(ctx, store, held_mail, entry_id, hold, now, actor)


def _held_line(held: HeldMessage, ctx: Context) -> str:
    found = ", ".join(finding_label(code) for code in held.codes) or "no finding recorded"
    alerted = " (the safeguarding lead was alerted)" if held.urgent else ""
    return (
        f"entry {held.entry_id} ({held.queue_id}) to {', '.join(held.recipients)} was held by "
        f"the safeguarding policy until {_until(held, ctx)}: {found}{alerted}"
    )


def _until(held: HeldMessage, ctx: Context) -> str:
    return f"{held.release_at.astimezone(ctx.zone):%Y-%m-%d %H:%M} ({ctx.zone})"


def _retry(
    ctx: Context,
    store: QueueStore,
    held_mail: HeldMail,
    entry_id: int,
    held: HeldMessage | None,
    now: datetime,
    actor: str | None,
) -> None:
    if held is not None:
        # On the audit log, by the lead who released it, as a release in the console is.
        note = audit_note(
            "release",
            actor=actor,
            at=now,
            query=f"message {held.archive_id}",
            detail={
                "archive_id": held.archive_id,
                "entry": entry_id,
                "queue_id": held.queue_id,
                "run_by": local_user(),
            },
        )
        if held_mail.release(entry_id, now, audit=note):
            click.echo(
                f"Entry {entry_id} was held for office hours until {_until(held, ctx)}. "
                "Released: the gateway sends it on its "
                f"next look at the queue (while `safeguard serve` runs). The audit log records "
                f"it as released by {note.actor}."
            )
            return
    if store.retry_now(entry_id, now):
        click.echo(f"Entry {entry_id} will be tried at once by the running gateway.")
        return
    sending = store.sending(entry_id)
    if sending is not None:
        click.echo(f"safeguard: entry {entry_id} is {_sending(*sending, ctx)}", err=True)
    else:
        click.echo(f"safeguard: no waiting queue entry {entry_id}", err=True)
    sys.exit(2)  # bad input, as interface.md's exit codes have it
