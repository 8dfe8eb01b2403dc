"""`safeguard queue list|retry`: what waits for delivery, and a nudge."""

from __future__ import annotations

import sys

import click

from gateway.cli import Context, pass_context
from gateway.cli.actor import audit_note
from gateway.clock import SystemClock
from gateway.store.held import HeldMail
from gateway.store.queue import QueueStore
from gateway.store.records import as_aware


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
        if row.last_error:  # on a line of its own, under RECIPIENTS
            click.echo(" " * len(first) + row.last_error[:200])


@queue.command()
@click.argument("entry_id", type=click.IntRange(1, 2**63 - 1))
@pass_context
def retry(ctx: Context, entry_id: int) -> None:
    """Try entry ENTRY_ID (from `queue list`) now, even if it is held until later."""
    store = _store(ctx)
    now = SystemClock().now()
    held_mail = HeldMail(store.engine, lifetime=ctx.settings.delivery.lifetime)
    held = held_mail.get(entry_id, now)
    if held is not None:
        # Mail the policy held for office hours going early is a release, as in the console:
        # on the audit log, by whoever ran this.
        note = audit_note(
            "release",
            at=now,
            query=f"message {held.archive_id}",
            detail={
                "archive_id": held.archive_id,
                "entry": entry_id,
                "queue_id": held.queue_id,
            },
        )
        if held_mail.release(entry_id, now, audit=note):
            click.echo(
                f"Entry {entry_id} was held for office hours until "
                f"{held.release_at.astimezone(ctx.zone):%Y-%m-%d %H:%M} ({ctx.zone}). "
                "Released: the gateway sends it on its "
                f"next look at the queue (while `safeguard serve` runs). The audit log records "
                f"it as released by {note.actor}."
            )
            return
    if store.retry_now(entry_id, now):
        click.echo(f"Entry {entry_id} will be tried at once by the running gateway.")
    else:
        click.echo(f"safeguard: no waiting queue entry {entry_id}", err=True)
        sys.exit(2)  # bad input, as interface.md's exit codes have it
