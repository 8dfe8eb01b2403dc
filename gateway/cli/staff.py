"""`safeguard staff set-password EMAIL`: a relay/console password, read from a prompt or stdin;
`staff remove-password EMAIL`; `staff unlock EMAIL`: lift a relay login's lockout."""

from __future__ import annotations

import ipaddress
import sys
from datetime import timedelta

import click

from gateway.cli import Context, pass_context
from gateway.cli.actor import note_new_archive
from gateway.clock import SystemClock
from gateway.smtp.auth import hash_password
from gateway.store.credentials import CredentialStore
from gateway.store.directory import DirectoryStore
from gateway.store.failures import FailureLog, Unlocked


@click.group()
def staff() -> None:
    """Staff accounts for the relay and the console."""


@staff.command("set-password")
@click.argument("email")
@pass_context
def set_password(ctx: Context, email: str) -> None:
    """Set EMAIL's password (never from the command line, so it stays out of shell history).

    A new password also lifts a relay lockout for EMAIL, as `staff unlock` does, from every
    address: the wrong passwords were most likely the old one's, or a guess at it."""
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
    from gateway.service import open_admin

    engine = open_admin(ctx.settings, made=note_new_archive)
    ctx.call_on_close(engine.dispose)
    from gateway.cli.actor import local_user

    address = email.strip().lower()
    view = DirectoryStore(engine).view()
    if view.contact(address) is not None and view.staff_member(address) is None:
        # A young person's (or another contact's) address never signs in to the relay or
        # the console.
        click.echo(
            f"safeguard: {address} is in the directory's contacts (young people and others "
            "the organisation writes to), not its staff: no password is set for it",
            err=True,
        )
        sys.exit(2)
    now = SystemClock().now()
    # Counted before: the new password's own audit row is what forgives them (failures.py).
    window = timedelta(seconds=ctx.settings.auth.failure_window)
    forgiven = FailureLog(engine).pending(address, now, window)
    CredentialStore(engine).set_hash(address, hash_password(password), now, actor=local_user())
    click.echo(f"Password set for {address}.")
    if forgiven.cleared:
        _report(ctx, forgiven, None)
    if view.staff_member(address) is None:
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


@staff.command("unlock")
@click.argument("email")
@click.option(
    "--client",
    metavar="ADDRESS",
    help="Clear only the failures from this client IP address (default: from every address).",
)
@pass_context
def unlock(ctx: Context, email: str, client: str | None) -> None:
    """Let EMAIL sign in to the relay again after too many wrong passwords (`421 4.7.0`).

    Its failed sign-ins so far no longer count, in every relay process on the database,
    running ones included; audited `smtp_auth_unlocked`. Other logins' failures still count:
    an address that also tried many other logins stays locked out until they age out.
    """
    from gateway.cli.actor import audit_note
    from gateway.service import open_archive

    if client is not None:
        try:
            # Spelt as the relay records the peer: "2001:DB8::0001" is 2001:db8::1.
            client = str(ipaddress.ip_address(client.strip()))
        except ValueError:
            click.echo(f"safeguard: --client {client!r} is not an IP address", err=True)
            sys.exit(2)
    engine = open_archive(ctx.settings)
    ctx.call_on_close(engine.dispose)
    login = email.strip().lower()
    window = timedelta(seconds=ctx.settings.auth.failure_window)
    scope = {} if client is None else {"client": client}
    note = audit_note("smtp_auth_unlocked", query=login, detail=scope)
    forgiven = FailureLog(engine).unlock(login, note, window, client=client)
    if forgiven.cleared:
        _report(ctx, forgiven, client)
    else:
        place, there = (f" from {client}", " there") if client else ("", "")
        click.echo(
            f"Nothing to clear: {login} has no failed relay sign-ins{place} in the last "
            f"{_span(window)}, so it is not locked out{there}."
        )
    if CredentialStore(engine).hash_for(login) is None:
        click.echo(
            f"safeguard: note: {login} has no password: the relay refuses it until one is set "
            "(safeguard staff set-password)",
            err=True,
        )


def _report(ctx: Context, forgiven: Unlocked, client: str | None) -> None:
    """Say what was cleared, and where the address stays locked out across logins."""
    from gateway.throttle import LOGINS_PER_ADDRESS

    limit = ctx.settings.auth.max_failures * LOGINS_PER_ADDRESS
    window = timedelta(seconds=ctx.settings.auth.failure_window)
    # Addresses still over their limit across logins (see FailureLog.unlock): not promised.
    held = {a: n for a, n in sorted(forgiven.others.items()) if n >= limit}
    n = forgiven.cleared
    place, there = (f" from {client}", " from there") if client else ("", "")
    cleared = f"Cleared {n} failed sign-in{'s' if n != 1 else ''} for {forgiven.login}{place}"
    click.echo(f"{cleared}." if held else f"{cleared}; it may sign in to the relay{there} again.")
    for address, others in held.items():
        click.echo(
            f"safeguard: note: {address} is still locked out for every login, "
            f"{forgiven.login} included: {others} failed sign-ins there with other logins "
            f"(the limit is {limit}); it lifts once they are {_span(window)} old",
            err=True,
        )


def _span(window: timedelta) -> str:
    """`failure_window` in words: "10 minutes", "90 seconds"."""
    seconds = window.total_seconds()
    if seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"
