"""`safeguard directory import staff|contacts FILE.csv`: all rows or none."""

from __future__ import annotations

import difflib
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from gateway.cli import Context, pass_context
from gateway.cli.actor import audit_note
from gateway.clock import SystemClock
from gateway.directory.csvfile import (
    DirectoryFileError,
    ImportDiff,
    diff_contacts,
    diff_staff,
    read_contacts_csv,
    read_staff_csv,
)
from gateway.directory.model import Contact
from gateway.store.audit import AuditNote


def _note(
    kind: str, csv_file: Path, diff: ImportDiff, leads: dict[str, list[str]], now: datetime
) -> AuditNote:
    """The import on the audit log, by whoever ran it. Counts only for young people: the log
    is kept longer than the directory, and their addresses are not the log's to keep."""
    return audit_note(
        "directory_import",
        at=now,
        query=f"{kind} from {csv_file.name}",
        detail={
            "kind": kind,
            "file": str(csv_file),
            "added": len(diff.added),
            "changed": len(diff.changed),
            "removed": len(diff.removed),
            "unchanged": diff.unchanged,
            **leads,
        },
    )


def _warn_of_categories(ctx: Context, contacts: Sequence[Contact], today: date) -> None:
    """A young person's category that no rule of the pack names but is close to one it does
    is most likely misspelt, and the rules kept for the category meant (bmt: a parent's copy
    for work experience) pass them by: said at once, with that category, while the file is
    in front of the admin. A category near none (bmt's participants) is the organisation's
    own, and is not warned of on every import."""
    from gateway.policy.pack import PackError, load_pack

    try:
        pack = load_pack(ctx.settings.pack, site=ctx.settings.organisation)
    except PackError:
        return  # `serve` and `rules check` say what is wrong with the pack
    known = pack.categories
    if not known:
        return
    unknown = Counter(
        c.category for c in contacts if c.category not in known and c.is_minor_on(today)
    )
    for category, count in sorted(unknown.items()):
        near = difflib.get_close_matches(category, known, n=1)
        if not near:
            continue
        people = "1 young person has" if count == 1 else f"{count} young people have"
        click.echo(
            f"safeguard: warning: {people} the category {category!r}, which no rule of the "
            f"pack {pack.name!r} names ({', '.join(sorted(known))}): the rules kept for a "
            f"category do not apply to them. Did you mean {near[0]!r}?",
            err=True,
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
    from gateway.service import open_admin
    from gateway.store.directory import DirectoryStore

    now = SystemClock().now()
    store = DirectoryStore(open_admin(ctx.settings))
    # Made in the import's own transaction, from the list it replaces.
    diffs: list[ImportDiff] = []

    def note(before: Sequence[Any]) -> AuditNote:
        leads: dict[str, list[str]] = {}
        if kind == "staff":
            diff = diff_staff(before, items)
            # Who may use the console changes with the DSL column: named on the record.
            was = {s.email for s in before if s.dsl}
            now_leads = {s.email for s in items if s.dsl}
            leads = {
                "leads_added": sorted(now_leads - was),
                "leads_removed": sorted(was - now_leads),
            }
        else:
            diff = diff_contacts(before, items)
        diffs.append(diff)
        return _note(kind, csv_file, diff, leads, now)

    zone = ctx.settings.organisation.timezone
    today = now.astimezone(zone).date() if zone else now.date()
    try:
        if kind == "staff":
            items: Sequence[Any] = read_staff_csv(csv_file)
        else:
            items = read_contacts_csv(csv_file, today=today)
        store.replace("staff" if kind == "staff" else "contact", items, now, audit=note)
        if kind == "contacts":
            _warn_of_categories(ctx, items, today)
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
    [diff] = diffs
    click.echo(f"Imported {kind} from {csv_file}: {diff.summary()}.")
    for label, keys in (
        ("added", diff.added),
        ("changed", diff.changed),
        ("removed", diff.removed),
    ):
        if keys:
            shown = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
            click.echo(f"  {label}: {shown}")
