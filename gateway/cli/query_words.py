"""A query given as shell words (`search`, `export`): an option of the command among them."""

from __future__ import annotations

import sys

import click


def refuse_options_in_query(words: tuple[str, ...]) -> None:
    """Click reads every word after `--` as the query, so `search -- -flag:x --as EMAIL` would
    search for the words "as" and the address, audited as the local user instead of the lead:
    an option of the command there is refused (exit 2), naming it."""
    ctx = click.get_current_context()
    names = {
        name
        for param in ctx.command.get_params(ctx)
        for name in param.opts
        if name.startswith("--")
    }
    for word in words:
        name = word.split("=", 1)[0]
        if name in names:
            click.echo(
                f"safeguard: {name} after -- is read as words of the query, not as an option; "
                "put it before the --",
                err=True,
            )
            sys.exit(2)
