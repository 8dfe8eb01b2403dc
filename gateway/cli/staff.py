"""`safeguard staff set-password EMAIL`: a relay/console password, read from a prompt or stdin."""

from __future__ import annotations

import sys

import click

from gateway.cli import Context, pass_context
from gateway.clock import SystemClock
from gateway.smtp.auth import hash_password
from gateway.store.credentials import CredentialStore
from gateway.store.db import make_engine
from gateway.store.migrate import upgrade


@click.group()
def staff() -> None:
    """Staff accounts for the relay and the console."""


@staff.command("set-password")
@click.argument("email")
@pass_context
def set_password(ctx: Context, email: str) -> None:
    """Set EMAIL's password (never from the command line, so it stays out of shell history)."""
    if sys.stdin.isatty():
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 10:
        click.echo("safeguard: a password needs at least 10 characters", err=True)
        sys.exit(2)
    engine = make_engine(ctx.settings.database_url, pool_size=1)
    upgrade(engine)
    ctx.call_on_close(engine.dispose)
    from gateway.cli.search import local_user

    CredentialStore(engine).set_hash(
        email.strip().lower(), hash_password(password), SystemClock().now(), actor=local_user()
    )
    click.echo(f"Password set for {email.strip().lower()}.")
