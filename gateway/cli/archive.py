"""`safeguard archive verify` and `archive purge`: prove nothing was altered; apply retention."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import click

from gateway.cli import Context, pass_context
from gateway.clock import SystemClock

if TYPE_CHECKING:
    from gateway.purge import Plan


@click.group()
def archive() -> None:
    """The tamper-evident archive."""


@archive.command()
@click.option(
    "--expect",
    "expect_text",
    metavar="ID:HASH",
    help="A head an earlier verify printed (kept elsewhere): the chain must still pass through it.",
)
@pass_context
def verify(ctx: Context, expect_text: str | None) -> None:
    """Walk the hash chain; exit 1 naming the first record that does not match. Prints the
    chain's head: keep it somewhere else and pass it back with --expect."""
    from gateway.service import open_archive
    from gateway.store.integrity import parse_head
    from gateway.store.integrity import verify as walk

    try:
        expect = parse_head(expect_text) if expect_text is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expect") from None
    engine = open_archive(ctx.settings, pool_size=1)
    show = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show:
            click.echo(f"\rchecked {done:,} of {total:,} records", nl=False, err=True)

    try:
        report = walk(engine, progress=progress, expect=expect)
    finally:
        engine.dispose()
    if show:
        click.echo("", err=True)
    if report.ok:
        purged = f" ({report.tombstones:,} emptied by audited purges)" if report.tombstones else ""
        click.echo(f"Archive verified: {report.checked:,} records{purged}, hash chain intact.")
        if report.head:
            click.echo(f"Head: {report.head}")
            click.echo("Keep the head somewhere else; `archive verify --expect` checks it later.")
        return
    click.echo(f"ARCHIVE ALTERED: {report.problem}. {report.checked:,} records before it verified.")
    sys.exit(1)


@archive.command()
@click.option("--dry-run", is_flag=True, help="Show what retention would remove; change nothing.")
@click.option(
    "--as",
    "as_email",
    metavar="EMAIL",
    help="The safeguarding lead purging (a staff row with dsl = yes); audited by that name.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--on",
    "on_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="With --dry-run: what would go on that date (default today).",
)
@pass_context
def purge(
    ctx: Context, dry_run: bool, as_email: str | None, yes: bool, on_date: datetime | None
) -> None:
    """Apply the pack's retention: empty old records into tombstones that keep the hash chain.

    Every purge is audited (who, when, which records); `archive verify` still passes after it
    and names any record emptied without an audited purge.
    """
    from gateway.cli.actor import local_user
    from gateway.policy.pack import load_pack
    from gateway.purge import plan
    from gateway.purge import purge as run_purge
    from gateway.service import open_archive
    from gateway.store.directory import DirectoryStore
    from gateway.store.search import NotASafeguardingLead, require_dsl

    if on_date is not None and not dry_run:
        click.echo("safeguard: --on only goes with --dry-run: a purge happens today", err=True)
        sys.exit(2)
    if on_date is not None and not 1970 <= on_date.year <= 9000:
        day = on_date.date().isoformat()
        click.echo(f"safeguard: --on {day}: give a date from 1970 on", err=True)
        sys.exit(2)
    settings = ctx.settings
    pack = load_pack(settings.pack, site=settings.organisation)
    zone = pack.organisation.timezone
    now = SystemClock().now()
    if on_date is not None:
        now = on_date.replace(hour=12, tzinfo=zone)
    engine = open_archive(settings, pool_size=1)
    try:
        actor = local_user()
        if as_email is not None:
            try:
                actor = require_dsl(engine, as_email)
            except NotASafeguardingLead:
                click.echo(
                    f"safeguard: {as_email} is not a safeguarding lead in the directory", err=True
                )
                sys.exit(2)
        view = DirectoryStore(engine).view()
        with _bar(label="Checking", show=sys.stderr.isatty()) as bar:
            found = plan(engine, pack.retention, view, zone, now, progress=bar)
        click.echo(f"Retention ({pack.name}): {found.rule}.")
        if retention_text := pack.retention.policy.strip():
            click.echo(f"The policy says: “{retention_text}”")
        click.echo(_summary(found))
        if dry_run or not found.due:
            if dry_run and found.due:
                click.echo("Dry run: nothing was changed. Run without --dry-run to purge.")
            return
        if not yes:
            if not sys.stdin.isatty():
                click.echo("safeguard: not at a terminal: add --yes to purge", err=True)
                sys.exit(2)
            click.confirm(f"Purge {len(found.due):,} records now?", abort=True)
        with _bar(label="Purging", show=sys.stderr.isatty(), length=len(found.due)) as bar:
            done = run_purge(engine, found, at=SystemClock().now(), actor=actor, progress=bar)
    finally:
        engine.dispose()
    click.echo(
        f"Purged {done:,} record{'s' if done != 1 else ''}: each is now a tombstone that keeps its "
        "place in the hash chain. Audited as 'purge'; `safeguard archive verify` checks them."
    )
    if done < len(found.due):
        click.echo(
            f"{len(found.due) - done:,} records were kept because their delivery is still queued "
            "(see `safeguard queue list`)."
        )


def _summary(found: Plan) -> str:
    lines = [f"{found.live:,} records in the archive; as of {found.today:%d %B %Y}:"]
    if found.due:
        lines.append(
            f"  {len(found.due):,} are past retention (received {found.first_received:%d %b %Y} "
            f"to {found.last_received:%d %b %Y}) and would be purged"
        )
    else:
        lines.append("  none is past retention")
    if found.held_for_minor:
        lines.append(
            f"  {found.held_for_minor:,} older records are kept because a young person they "
            "involve has not yet reached the retention age"
        )
    return "\n".join(lines)


class _bar:
    """A progress bar on a terminal; silent otherwise (scripts, tests)."""

    def __init__(self, *, label: str, show: bool, length: int | None = None) -> None:
        self.show, self.label, self.length, self.done = show, label, length, 0

    def __enter__(self) -> Callable[[int], None]:
        return self

    def __call__(self, n: int) -> None:
        self.done += n
        if self.show:
            total = f" of {self.length:,}" if self.length else ""
            click.echo(f"\r{self.label}: {self.done:,}{total} records", nl=False, err=True)

    def __exit__(self, *exc: object) -> None:
        if self.show and self.done:
            click.echo("", err=True)
