"""`safeguard search QUERY`: the archive, newest first, a page at a time; every search audited."""

from __future__ import annotations

import json
import sys
from datetime import tzinfo

import click
from sqlalchemy import Engine

from gateway.cli import Context, pass_context
from gateway.cli.actor import local_user
from gateway.cli.query_words import refuse_options_in_query
from gateway.clock import SystemClock
from gateway.search import QueryError, parse
from gateway.search.people import OtherAddresses, other_addresses
from gateway.store.directory import DirectoryStore
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
`--` before it, and options go before the `--` (after it, everything is the query, so an
option there is refused):

\b
  safeguard search -- -flag:no_consent from:alex.teacher@safe.example
  safeguard search --as dsl@safe.example --json -- -flag:no_consent
"""


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _recipients(hit: Hit) -> str:
    people = [*hit.to, *hit.cc]
    if not people:
        return ""
    return people[0] + (f" +{len(people) - 1}" if len(people) > 1 else "")


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _matches(page: Page) -> str:
    """ "1 message matches", "3 messages match", "more than 1,000 messages match"."""
    # Counting stops early in a large archive (store/search.py COUNT_LIMIT): say so.
    if not page.exact:
        return f"more than {page.total:,} messages match"
    noun = _plural(page.total, "message matches", "messages match")
    return f"{page.total:,} {noun}"


def _pages(page: Page) -> str:
    """ "1 page", "2 pages", "at least 20 pages" (the count stopped early)."""
    pages = f"{page.pages} {_plural(page.pages, 'page', 'pages')}"
    return pages if page.exact else f"at least {pages}"


def _other_addresses(engine: Engine, text: str) -> list[OtherAddresses]:
    return other_addresses(parse(text), DirectoryStore(engine).view)


def _table(page: Page, zone: tzinfo) -> None:
    if not page.hits:
        if page.total:
            click.echo(f"No messages on page {page.page}: {_matches(page)} ({_pages(page)}).")
        else:
            click.echo("No messages match.")
        return
    date = f"DATE ({zone})"
    wide = max(len("YYYY-MM-DD HH:MM"), len(date))  # a long zone name keeps rows in line
    click.echo(
        f"{'ID':>7}  {date:<{wide}} {'FROM':<28} {'TO / CC':<30} "
        f"{'SUBJECT':<32} {'VERDICT':<8} FINDINGS"
    )
    for hit in page.hits:
        when = f"{hit.date.astimezone(zone):%Y-%m-%d %H:%M}"
        click.echo(
            f"{hit.id:>7}  {when:<{wide}} {_cut(hit.from_addr, 28):<28} "
            f"{_cut(_recipients(hit), 30):<30} {_cut(hit.subject or '(no subject)', 32):<32} "
            f"{hit.verdict:<8} {', '.join(hit.findings)}"
        )
    first = (page.page - 1) * page.limit + 1
    last = first + len(page.hits) - 1
    total = f"{page.total:,}" if page.exact else f"more than {page.total:,}"
    pages = f"{page.pages}" if page.exact else f"at least {page.pages}"
    summary = f"\n{first}–{last} of {total} (page {page.page} of {pages})."
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
    from gateway.service import open_archive

    refuse_options_in_query(query)
    # Several shell words are one query: `safeguard search from:x room` needs no outer quotes.
    text = " ".join(query)
    settings = ctx.settings
    engine = open_archive(settings)
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
        others = _other_addresses(engine, text)
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
    for other in others:
        click.echo(
            f"safeguard: note: {other.address} is {other.name} in the directory, who also uses "
            f"{', '.join(other.others)}: add {' '.join(f'OR contact:{a}' for a in other.others)}"
            f", or use `safeguard export --contact {other.address}` (or their page in the "
            "console), which covers every address",
            err=True,
        )
    if result.behind is not None:
        click.echo(
            f"safeguard: {result.behind}: words in those messages were not searched; "
            "search where the archive can be written to find them",
            err=True,
        )
