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
from gateway.cli.actor import audit_note, note_new_archive
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
from gateway.directory_source import demo_view
from gateway.store.audit import AuditNote

# A partial export (one row, a filtered view, the wrong sheet) replaced the whole list and
# silently took every young person left out of it out of the rules. Refused when more than
# half the list would go (more than a year's leavers ever are), and at least 3: so that a
# small directory (2 people, one or both leaving) still imports without the flag.
_MOST = 0.5
_AT_LEAST = 3


class ImportRefused(Exception):
    """An import that would remove most of the list, or every lead: raised in the import's
    own transaction, which it rolls back, so the check and the replacement are of one list."""

    def __init__(self, reasons: Sequence[str], removed: Sequence[str]) -> None:
        super().__init__(" ".join(reasons))
        self.reasons = tuple(reasons)
        self.removed = tuple(removed)


def _shown(keys: Sequence[str]) -> str:
    return ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _refusals(
    kind: str,
    csv_file: Path,
    before: Sequence[Any],
    items: Sequence[Any],
    diff: ImportDiff,
) -> tuple[list[str], list[str]]:
    """Why the import is not applied without --allow-removals, one plain sentence each, and
    who would go."""
    reasons = []
    # People none of whose addresses the file has: a contact whose addresses were only
    # reordered (a new first address) is not one who goes.
    kept = {e for item in items for e in _addresses(item)}
    gone = [b.email for b in before if not kept & set(_addresses(b))]
    # The demo directory `serve` seeds an empty archive with goes whole at the first real
    # import: not a partial file, and its lead is not the site's.
    demo_keys = _demo_keys(kind)
    demo = all(entry.email in demo_keys for entry in before)
    if not demo and len(gone) >= _AT_LEAST and len(gone) > _MOST * len(before):
        reasons.append(
            f"{csv_file} would remove {len(gone)} of the {len(before)} {kind} the directory "
            f"has (keeping {len(before) - len(gone)}, adding {len(diff.added)}). If this file "
            "is the whole list, run the import again with --allow-removals; otherwise check "
            "you exported the full list."
        )
    if kind == "staff" and not any(s.dsl for s in items):
        # The console's only users and the alerts' only readers: a file without them leaves
        # the archive unread. Not refused when there was no lead to lose (warned of after).
        leads = sorted(s.email for s in before if s.dsl)
        if leads and not demo:
            reasons.append(
                f"{csv_file} has no safeguarding lead (no row with dsl = yes): "
                f"{_and(leads)} would stop being {'one' if len(leads) == 1 else 'leads'}, "
                "and nobody could then sign in to the safeguarding console. Mark the lead "
                "dsl = yes in the file, or, if there is to be no lead for now, run the import "
                "again with --allow-removals."
            )
    return reasons, gone


def _addresses(entry: Any) -> tuple[str, ...]:
    return tuple(getattr(entry, "emails", (entry.email,)))


def _demo_keys(kind: str) -> set[str]:
    demo = demo_view(SystemClock().now())
    return {e.email for e in (demo.staff if kind == "staff" else demo.contacts)}


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
@click.option(
    "--allow-removals",
    is_flag=True,
    help="Apply a file that removes most of the list, or every safeguarding lead.",
)
@pass_context
def import_(ctx: Context, kind: str, csv_file: Path, allow_removals: bool) -> None:
    """Replace the staff or contacts list with CSV_FILE (a bad row: nothing is applied; a
    file that would remove most of the list or every lead: refused without --allow-removals)."""
    from gateway.service import open_admin
    from gateway.store.directory import DirectoryStore

    now = SystemClock().now()
    store = DirectoryStore(open_admin(ctx.settings, made=note_new_archive))
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
        reasons, gone = _refusals(kind, csv_file, before, items, diff)
        if reasons and not allow_removals:
            raise ImportRefused(reasons, gone)
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
    except ImportRefused as exc:
        # Rolled back: the directory is as it was. Who would have gone, to check the file by.
        for reason in exc.reasons:
            click.echo(f"safeguard: {reason}", err=True)
        if exc.removed:
            click.echo(f"  would remove: {_shown(exc.removed)}")
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
            click.echo(f"  {label}: {_shown(keys)}")
    if kind == "staff":
        if not any(s.dsl for s in items):
            click.echo(
                f"safeguard: warning: {csv_file} has no safeguarding lead (no row with dsl = "
                "yes): nobody can sign in to the safeguarding console until one is imported.",
                err=True,
            )
        _warn_of_alert_readers(ctx, items, csv_file)


def _warn_of_alert_readers(ctx: Context, items: Sequence[Any], csv_file: Path) -> None:
    """Alerts go to `[organisation] dsl`, not to the staff list's leads: an address there that
    the new list does not make a lead is one the console would refuse."""
    from gateway.policy.pack import PackError, load_pack

    try:
        readers = load_pack(ctx.settings.pack, site=ctx.settings.organisation).organisation.dsl
    except PackError:  # `serve` and `rules lint` say what is wrong with the pack
        return
    leads = {s.email.lower() for s in items if s.dsl}
    others = [address for address in readers if address.lower() not in leads]
    if others:
        click.echo(
            f"safeguard: warning: the safeguarding alerts go to {_and(others)} ([organisation] "
            f"dsl), not a lead (dsl = yes) in {csv_file}: set [organisation] dsl in "
            "gateway.toml to the leads' addresses, or mark them dsl = yes",
            err=True,
        )
