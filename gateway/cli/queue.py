"""`safeguard queue list|retry`: what waits for delivery, and a nudge."""

from __future__ import annotations

import sys

import click

from gateway.cli import Context, pass_context
from gateway.cli.actor import audit_note
from gateway.clock import SystemClock
from gateway.store.db import make_engine
from gateway.store.held import HeldMail
from gateway.store.migrate import upgrade
from gateway.store.queue import QueueStore


def _store(ctx: Context) -> QueueStore:
    engine = make_engine(ctx.settings.database_url, pool_size=1)
    upgrade(engine)
    ctx.call_on_close(engine.dispose)
    return QueueStore(engine)


@click.group()
def queue() -> None:
    """Messages waiting for delivery (deferred, held or retrying)."""


@queue.command("list")
@pass_context
def list_(ctx: Context) -> None:
    """Show waiting messages, soonest first."""
    rows = _store(ctx).pending()
    if not rows:
        click.echo("The queue is empty.")
        return
    click.echo(
        f"{'ID':>6}  {'QUEUE ID':<16} {'KIND':<8} {'STATUS':<8} {'TRIES':>5}  "
        f"{'NEXT TRY (UTC)':<19}  RECIPIENTS / LAST ERROR"
    )
    for row in rows:
        click.echo(
            f"{row.id:>6}  {row.queue_id:<16} {row.kind:<8} {row.status:<8} {row.attempts:>5}  "
            f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S}  {', '.join(row.recipients)}"
        )
        if row.last_error:
            click.echo(f"{'':>68}{row.last_error[:200]}")


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
                f"{held.release_at:%Y-%m-%d %H:%M} UTC. Released: the gateway sends it on its "
                f"next look at the queue (while `safeguard serve` runs). The audit log records "
                f"it as released by {note.actor}."
            )
            return
    if store.retry_now(entry_id, now):
        click.echo(f"Entry {entry_id} will be tried at once by the running gateway.")
    else:
        click.echo(f"safeguard: no waiting queue entry {entry_id}", err=True)
        sys.exit(2)  # bad input, as interface.md's exit codes have it
