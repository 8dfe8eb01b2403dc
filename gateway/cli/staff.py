"""`safeguard staff set-password EMAIL`: a relay/console password, read from a prompt or stdin."""

from __future__ import annotations

import sys

import click

from gateway.cli import Context, pass_context
from gateway.clock import SystemClock
from gateway.smtp.auth import hash_password
from gateway.store.credentials import CredentialStore
from gateway.store.db import make_engine
from gateway.store.directory import DirectoryStore
from gateway.store.migrate import upgrade


@click.group()
def staff() -> None:
    """Staff accounts for the relay and the console."""


@staff.command("set-password")
@click.argument("email")
@pass_context
def set_password(ctx: Context, email: str) -> None:
    """Set EMAIL's password (never from the command line, so it stays out of shell history)."""
    try:
        if sys.stdin.isatty():
            password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        password.encode("utf-8")  # a stdin may keep bytes it cannot decode as surrogates
    except (UnicodeDecodeError, UnicodeEncodeError):
        click.echo("safeguard: the password is not UTF-8 text", err=True)
        sys.exit(2)
    if len(password) < 10:
        click.echo("safeguard: a password needs at least 10 characters", err=True)
        sys.exit(2)
    engine = make_engine(ctx.settings.database_url, pool_size=1)
    upgrade(engine)
    ctx.call_on_close(engine.dispose)
    from gateway.cli.actor import local_user

    address = email.strip().lower()
    CredentialStore(engine).set_hash(
        address, hash_password(password), SystemClock().now(), actor=local_user()
    )
    click.echo(f"Password set for {address}.")
    if DirectoryStore(engine).view().staff_member(address) is None:
        # Set all the same: the directory may be imported next. But a typo should show.
        click.echo(
            f"safeguard: note: {address} is not a member of staff in the directory; "
            "check the spelling (a safeguarding lead signs in to the console only once "
            "the directory lists them)",
            err=True,
        )


@staff.command("remove-password")
@click.argument("email")
@pass_context
def remove_password(ctx: Context, email: str) -> None:
    """Remove EMAIL's password: the relay and the console refuse it until a new one is set."""
    from gateway.cli.actor import local_user
    from gateway.service import open_archive

    engine = open_archive(ctx.settings)
    ctx.call_on_close(engine.dispose)
    address = email.strip().lower()
    if not CredentialStore(engine).remove(address, SystemClock().now(), actor=local_user()):
        click.echo(f"safeguard: {address} has no password to remove", err=True)
        sys.exit(2)
    click.echo(f"Password removed for {address}.")
