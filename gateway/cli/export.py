"""`safeguard export QUERY --format mbox|eml-zip -o FILE` and `export --contact ADDR`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from gateway.cli import Context, pass_context
from gateway.cli.query_words import refuse_options_in_query
from gateway.clock import SystemClock

PROGRESS_FROM = 300  # a progress bar for exports longer than this


@click.command()
@click.argument("query", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["mbox", "eml-zip"]), required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--contact",
    metavar="ADDR",
    help="A person's whole history (any role), with a cover page listing it.",
)
@click.option("--as", "as_email", metavar="EMAIL", help="The safeguarding lead exporting.")
@click.option(
    "--with-reviews",
    is_flag=True,
    help="Include the safeguarding leads' reviews and notes, and watch-list findings (for a "
    "referral or an investigation; without them, an export a family or the person may see).",
)
@pass_context
def export(
    ctx: Context,
    query: tuple[str, ...],
    fmt: str,
    output: Path,
    contact: str | None,
    as_email: str | None,
    with_reviews: bool,
) -> None:
    """Export matching messages exactly as received, with a manifest of SHA-256 hashes."""
    from gateway.cli.actor import local_user
    from gateway.directory.model import normalise_email
    from gateway.export import cover_page, matching_ids, person_history
    from gateway.export import export as write_export
    from gateway.notify.render import environment_for
    from gateway.policy.pack import load_pack
    from gateway.search import QueryError, is_whole_address, parse
    from gateway.service import open_archive
    from gateway.store.audit import AuditLog
    from gateway.store.directory import DirectoryStore
    from gateway.store.search import NotASafeguardingLead, WordIndexBehind, require_dsl

    refuse_options_in_query(query)
    text = " ".join(query)
    if contact and not is_whole_address(contact.strip()):
        click.echo(f"safeguard: --contact {contact!r} is not an e-mail address", err=True)
        sys.exit(2)
    if not text and not contact:
        click.echo("safeguard: give a QUERY or --contact ADDR", err=True)
        sys.exit(2)
    if output.exists():
        click.echo(f"safeguard: {output} exists; choose a new file name", err=True)
        sys.exit(2)
    if not output.parent.is_dir():
        click.echo(f"safeguard: {output.parent} is not a folder; create it first", err=True)
        sys.exit(2)
    now = SystemClock().now()
    engine = open_archive(ctx.settings, pool_size=1)
    audit = AuditLog(engine)
    try:
        history = None
        if contact:
            # Every address the directory has for them; QUERY, in brackets of its own, narrows
            # it (`OR` in it must not widen the history to other people's mail).
            view = DirectoryStore(engine).view()
            history = person_history(view, normalise_email(contact.strip()))
            text = f"({history.query}) ({text})" if text else history.query
        try:
            node = parse(text)
        except QueryError as exc:
            click.echo(f"safeguard: query: {exc}", err=True)
            sys.exit(2)
        actor = local_user()
        if as_email is not None:
            try:
                actor = require_dsl(engine, as_email)
            except NotASafeguardingLead:
                audit.record(actor=as_email[:320], action="export_refused", at=now, query=text)
                click.echo(
                    f"safeguard: {as_email} is not a safeguarding lead in the directory; "
                    "exporting needs --as a DSL",
                    err=True,
                )
                sys.exit(2)
        try:
            ids = matching_ids(engine, node, ctx.zone)
        except WordIndexBehind as exc:
            click.echo(
                f"safeguard: not exported: {exc}, so messages could be missing. Export where "
                "the archive can be written, or by address or flag alone (no words)",
                err=True,
            )
            sys.exit(2)
        pack = load_pack(ctx.settings.pack, site=ctx.settings.organisation)
        cover = None
        if history is not None:
            cover = cover_page(
                environment_for(ctx.settings.pack, ctx.settings.templates),
                contact=", ".join(history.addresses),
                name=history.name,
                # The pack's, with the site's override: named as the console names it.
                organisation=pack.organisation.name,
                exported_by=actor,
                at=now,
                query=text,
                zone=ctx.zone,
                with_reviews=with_reviews,
            )
        with contextlib.ExitStack() as stack:
            progress = None
            if len(ids) > PROGRESS_FROM:
                bar = stack.enter_context(
                    click.progressbar(length=len(ids), label="Exporting", file=sys.stderr)
                )
                progress = bar.update
            done = write_export(
                engine,
                ids,
                fmt=fmt,
                out=output,
                cover=cover,
                progress=progress,
                zone=ctx.zone,
                with_reviews=with_reviews,
                urgent_rules=pack.urgent_rules,
            )
        audit.record(
            actor=actor,
            action="export",
            at=now,
            query=text,
            result_count=done.count,
            detail={
                "format": fmt,
                "file": str(output),
                "sha256": done.sha256,
                "as": as_email,
                "reviews": with_reviews,
            },
        )
    finally:
        engine.dispose()
    click.echo(f"Exported {done.count} message{'s' if done.count != 1 else ''} to {output}")
    for path in done.extra_files:
        click.echo(f"  with {path}")
    click.echo(f"SHA-256 of {output.name}: {done.sha256}")
    if history is not None and history.name is None and done.count == 0 and not query:
        # A mistyped address in a subject access request must not read as "no messages".
        click.echo(
            f"safeguard: warning: {contact} is not in the directory and no archived message "
            "involves it: check the address",
            err=True,
        )
    elif history is not None:
        reviews = "with" if with_reviews else "without"
        click.echo(
            f"Exported {reviews} the leads' reviews, notes and watch-list findings. Check it "
            "before it leaves the safeguarding team: the messages name everyone they were "
            "sent to."
        )
