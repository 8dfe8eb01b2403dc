"""`safeguard directory import staff|contacts FILE.csv`: all rows or none."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway.cli import Context, pass_context
from gateway.clock import SystemClock
from gateway.directory.csvfile import (
    DirectoryFileError,
    diff_contacts,
    diff_staff,
    read_contacts_csv,
    read_staff_csv,
)


@click.group()
def directory() -> None:
    """The young people and staff the gateway knows."""


@directory.command("import")
@click.argument("kind", type=click.Choice(["staff", "contacts"]))
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def import_(ctx: Context, kind: str, csv_file: Path) -> None:
    """Replace the staff or contacts list with CSV_FILE (a bad row: nothing is applied)."""
    from gateway.service import open_store

    now = SystemClock().now()
    store = open_store(ctx.settings)
    try:
        if kind == "staff":
            staff = read_staff_csv(csv_file)
            diff = diff_staff(store.staff(), staff)
            store.replace("staff", staff, now)
        else:
            zone = ctx.settings.organisation.timezone
            today = now.astimezone(zone).date() if zone else now.date()
            contacts = read_contacts_csv(csv_file, today=today)
            diff = diff_contacts(store.contacts(), contacts)
            store.replace("contact", contacts, now)
    except DirectoryFileError as exc:
        # One line on stderr, as for all bad input; the other rows to fix on stdout.
        click.echo(f"safeguard: {exc}", err=True)
        rest = exc.lines()[1:20]
        if rest:
            click.echo("The other rows to fix:")
        for line in rest:
            click.echo(f"  {line}")
        sys.exit(2)
    finally:
        store.engine.dispose()
    click.echo(f"Imported {kind} from {csv_file}: {diff.summary()}.")
    for label, keys in (
        ("added", diff.added),
        ("changed", diff.changed),
        ("removed", diff.removed),
    ):
        if keys:
            shown = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
            click.echo(f"  {label}: {shown}")
