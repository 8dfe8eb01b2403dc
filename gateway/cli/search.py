"""`safeguard search QUERY`: the archive, newest first, a page at a time; every search audited."""

from __future__ import annotations

import json
import sys
from datetime import tzinfo

import click

from gateway.cli import Context, pass_context
from gateway.cli.actor import local_user
from gateway.clock import SystemClock
from gateway.search import QueryError
from gateway.store.search import ArchiveSearch, Hit, NotASafeguardingLead, Page, SearchUnsupported

_QUERY_HELP = """Search the archive. QUERY (quote it for the shell) combines:

\b
  words "quoted phrases"      in the subject or new text, whole words, any case
  from: to: cc: bcc:          an address (sam@home.example) or a domain (home.example)
  contact:ADDR                any role: sender, To, Cc, Bcc or envelope recipient
  subject:WORD subject:"..."  in the subject only
  flag:CODE verdict:VERDICT   e.g. flag:missing_required_cc verdict:reject
  after:YYYY-MM-DD            received on or after that date (the organisation's)
  before:YYYY-MM-DD           received before that date (the organisation's)

Terms side by side must all match; OR between terms matches either (OR binds tighter than the
implied AND); a leading - excludes a term or a (group). A query that starts with - needs
`--` before it:

\b
  safeguard search -- -flag:no_consent from:alex.teacher@safe.example
"""


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _recipients(hit: Hit) -> str:
    people = [*hit.to, *hit.cc]
    if not people:
        return ""
    return people[0] + (f" +{len(people) - 1}" if len(people) > 1 else "")


def _count(page: Page) -> str:
    # Counting stops early in a large archive (store/search.py COUNT_LIMIT): say so.
    return f"{page.total:,}" if page.exact else f"more than {page.total:,}"


def _table(page: Page, zone: tzinfo) -> None:
    if not page.hits:
        if page.total:
            click.echo(
                f"No messages on page {page.page}: {_count(page)} match ({page.pages} pages)."
            )
        else:
            click.echo("No messages match.")
        return
    click.echo(
        f"{'ID':>7}  {'DATE (' + str(zone) + ')':<20} {'FROM':<28} {'TO / CC':<30} "
        f"{'SUBJECT':<32} {'VERDICT':<8} FINDINGS"
    )
    for hit in page.hits:
        when = hit.date.astimezone(zone)
        click.echo(
            f"{hit.id:>7}  {when:%Y-%m-%d %H:%M}     {_cut(hit.from_addr, 28):<28} "
            f"{_cut(_recipients(hit), 30):<30} {_cut(hit.subject or '(no subject)', 32):<32} "
            f"{hit.verdict:<8} {', '.join(hit.findings)}"
        )
    first = (page.page - 1) * page.limit + 1
    last = first + len(page.hits) - 1
    pages = f"{page.pages}" if page.exact else f"at least {page.pages}"
    summary = f"\n{first}–{last} of {_count(page)} (page {page.page} of {pages})."
    if page.page < page.pages or not page.exact:
        summary += f" Next: --page {page.page + 1}"
    click.echo(summary)


@click.command(help=_QUERY_HELP)
@click.argument("query", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of messages.")
@click.option(
    "--limit", type=click.IntRange(1, 10000), default=50, show_default=True, help="Per page."
)
@click.option(
    "--page", type=click.IntRange(1, 10**9), default=1, show_default=True, help="Page number."
)
@click.option(
    "--as",
    "as_email",
    metavar="EMAIL",
    help="The safeguarding lead searching (a staff row with dsl = yes); audited by this name.",
)
@pass_context
def search(
    ctx: Context,
    query: tuple[str, ...],
    as_json: bool,
    limit: int,
    page: int,
    as_email: str | None,
) -> None:
    from gateway.service import open_engine

    # Several shell words are one query: `safeguard search from:x room` needs no outer quotes.
    text = " ".join(query)
    settings = ctx.settings
    engine = open_engine(settings, pool_size=1)
    try:
        result = ArchiveSearch(engine, ctx.zone).search(
            text,
            actor=as_email if as_email is not None else local_user(),
            as_dsl=as_email is not None,
            at=SystemClock().now(),
            limit=limit,
            page=page,
            detail={"via": "cli"},
        )
    except QueryError as exc:
        click.echo(f"safeguard: query: {exc}", err=True)
        sys.exit(2)
    except NotASafeguardingLead as exc:
        click.echo(
            f"safeguard: {exc.email} is not a safeguarding lead in the directory; "
            "searching needs --as a DSL",
            err=True,
        )
        sys.exit(2)
    except SearchUnsupported as exc:
        click.echo(f"safeguard: {exc}", err=True)
        sys.exit(2)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([hit.as_dict() for hit in result.hits], indent=2, ensure_ascii=False))
    else:
        _table(result, ctx.zone)
    if result.behind is not None:
        click.echo(
            f"safeguard: {result.behind}: words in those messages were not searched; "
            "search where the archive can be written to find them",
            err=True,
        )
