"""`safeguard api token create NAME` / `revoke NAME` / `list`: chat integrations' tokens."""

from __future__ import annotations

import sys

import click

from gateway.cli import Context, pass_context
from gateway.cli.actor import audit_note, note_new_archive
from gateway.store.tokens import TokenError, TokenStore


@click.group()
def api() -> None:
    """The HTTP API for chat tools (see [api] listen)."""


@api.group()
def token() -> None:
    """Bearer tokens, one per chat integration."""


def _store(ctx: Context) -> TokenStore:
    from gateway.service import open_admin

    engine = open_admin(ctx.settings, made=note_new_archive)
    ctx.call_on_close(engine.dispose)
    return TokenStore(engine)


@token.command("create")
@click.argument("name")
@pass_context
def create(ctx: Context, name: str) -> None:
    """Make a token for NAME; it is shown once, on the last line, and stored only as a hash."""
    try:
        # On the record: each token lets a chat tool put messages into the archive.
        note = audit_note("api_token_created", query=f"token {name}", detail={"name": name})
        secret = _store(ctx).create(name, note.at, audit=note)
    except TokenError as exc:
        click.echo(f"safeguard: {exc}", err=True)
        sys.exit(2)
    click.echo(f"Token for {name} (shown once; send it as 'Authorization: Bearer TOKEN'):")
    click.echo(secret)


@token.command("revoke")
@click.argument("name")
@pass_context
def revoke(ctx: Context, name: str) -> None:
    """Revoke NAME's token: requests with it are refused from now on."""
    note = audit_note("api_token_revoked", query=f"token {name}", detail={"name": name})
    if not _store(ctx).revoke(name, audit=note):
        click.echo(f"safeguard: no token named {name!r}", err=True)
        sys.exit(2)
    click.echo(f"Token for {name} revoked.")


@token.command("list")
@pass_context
def list_tokens(ctx: Context) -> None:
    """The integrations that have a token, and when it was made (UTC)."""
    names = _store(ctx).names()
    if not names:
        click.echo("No API tokens.")
    for name, created in names:
        click.echo(f"{name}\t{created:%Y-%m-%d %H:%M}")
