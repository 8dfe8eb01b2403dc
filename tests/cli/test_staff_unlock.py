"""`safeguard staff unlock` and `staff set-password` lift a relay login's lockout, in relays
already running, over a real socket.

Review: "a new password does not lift an SMTP AUTH lockout, and no command clears one."
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import cli
from gateway.cli.actor import local_user
from gateway.clock import SystemClock
from gateway.service import Gateway
from gateway.smtp.auth import hash_password
from gateway.store.audit import AuditLog
from gateway.store.credentials import CredentialStore
from gateway.store.failures import SMTP_AUTH_FAILED, FailureLog
from tests.support import RunningGateway, Sink, make_settings, tls_files

ALEX = "alex.teacher@safe.example"
JORDAN = "jordan.ellis@safe.example"
ALEX_PASSWORD = "correct horse battery"
JORDAN_PASSWORD = "another good one"
OK, REFUSED, LOCKED = 235, 535, 421


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path, ssl.SSLContext]:
    return tls_files(tmp_path)


@pytest.fixture
def relays(
    tmp_path: Path, database_url: str, sink: Sink, tls: tuple[Path, Path, ssl.SSLContext]
) -> Iterator[list[RunningGateway]]:
    """Two relays on one database (as `processes = 2`), 3 failures per address and login (30
    per address across logins), every client authenticating over TLS; alex and jordan have
    passwords."""
    cert, key, _ = tls
    settings = make_settings(
        tmp_path,
        database_url,
        upstream=sink.url,
        auth={"trusted_networks": [], "max_failures": 3},
        server={"tls_cert": str(cert), "tls_key": str(key)},
    )
    running = [RunningGateway(Gateway(settings, clock=SystemClock())).__enter__()]
    running.append(RunningGateway(Gateway(settings, clock=SystemClock())).__enter__())
    passwords = CredentialStore(running[0].gateway.engine)
    now = SystemClock().now()
    passwords.set_hash(ALEX, hash_password(ALEX_PASSWORD), now)
    passwords.set_hash(JORDAN, hash_password(JORDAN_PASSWORD), now)
    yield running
    for relay in reversed(running):
        relay.__exit__(None, None, None)


@pytest.fixture
def safeguard(tmp_path: Path, database_url: str) -> Callable[..., Result]:
    """The command line, on the relays' database and with their [auth] settings."""
    config = tmp_path / "cli.toml"
    config.write_text(
        '[organisation]\ndomains = ["safe.example"]\n'
        f'[database]\nurl = "{database_url}"\n'
        "[auth]\nmax_failures = 3\nfailure_window = 600\n"
    )

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)

    return invoke


def _sign_in(relay: RunningGateway, context: ssl.SSLContext, login: str, password: str) -> int:
    with smtplib.SMTP("127.0.0.1", relay.port) as client:
        client.starttls(context=context)
        client.ehlo("client.safe.example")
        client.user, client.password = login, password
        try:
            client.auth("PLAIN", client.auth_plain, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as refused:
            return refused.smtp_code
        except smtplib.SMTPServerDisconnected:
            return LOCKED  # turned away: smtplib reads the 421 as a lost connection
        return OK


def _lock_out(relays: list[RunningGateway], context: ssl.SSLContext, login: str) -> None:
    """Three wrong passwords at the first relay, one more at the second (so that it has
    counted them too): the login is locked out at both."""
    first, second = relays
    for guess in ("guess one", "guess two", "guess three"):
        assert _sign_in(first, context, login, guess) == REFUSED
    assert _sign_in(second, context, login, "guess four") == REFUSED
    for relay in relays:
        assert _sign_in(relay, context, login, "not even checked") == LOCKED


def test_unlock_lets_a_locked_out_login_sign_in_again_at_every_running_relay(
    relays, tls, safeguard
):
    """Review: "no command clears [an SMTP AUTH lockout]". `staff unlock EMAIL`: the failed
    sign-ins before it no longer count, in relays already running, without a restart."""
    _, _, context = tls
    _lock_out(relays, context, ALEX)

    result = safeguard("staff", "unlock", "Alex.Teacher@safe.example")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Cleared 4 failed sign-ins for {ALEX}; it may sign in to the relay again.\n"
    )
    for relay in relays:
        assert _sign_in(relay, context, ALEX, ALEX_PASSWORD) == OK
    # Forgiven, not switched off: new wrong passwords lock it out again.
    first, _ = relays
    for guess in ("fresh one", "fresh two", "fresh three"):
        assert _sign_in(first, context, ALEX, guess) == REFUSED
    assert _sign_in(first, context, ALEX, ALEX_PASSWORD) == LOCKED


def test_a_new_password_lifts_the_lockout_and_says_so(relays, tls, safeguard):
    """Review: "a new password does not lift an SMTP AUTH lockout"."""
    _, _, context = tls
    _lock_out(relays, context, ALEX)

    result = safeguard("staff", "set-password", ALEX, input="a brand new passphrase\n")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Password set for {ALEX}.\n"
        f"Cleared 4 failed sign-ins for {ALEX}; it may sign in to the relay again.\n"
    )
    for relay in relays:
        assert _sign_in(relay, context, ALEX, "a brand new passphrase") == OK


def test_unlock_is_audited_and_listed_by_audit_action(relays, tls, safeguard):
    """Each unlock is an audit row (`smtp_auth_unlocked`, by the local user, query: the
    login), and `safeguard audit --action smtp_auth_unlocked` takes the name."""
    _, _, context = tls
    _lock_out(relays, context, ALEX)

    assert safeguard("staff", "unlock", ALEX, "--client", "127.0.0.1").exit_code == 0
    again = safeguard("staff", "unlock", ALEX)

    assert again.stdout == (
        f"Nothing to clear: {ALEX} has no failed relay sign-ins in the last 10 minutes, "
        "so it is not locked out.\n"
    )
    entries = AuditLog(relays[0].gateway.engine).entries(action="smtp_auth_unlocked")
    assert [(e.actor, e.query, e.detail) for e in entries] == [
        (local_user(), ALEX, {"via": "cli", "cleared": 0}),
        (local_user(), ALEX, {"via": "cli", "cleared": 4, "client": "127.0.0.1"}),
    ]
    listed = safeguard("audit", "--action", "smtp_auth_unlocked")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.count("smtp_auth_unlocked") == 2


def test_unlock_from_one_client_address_leaves_the_others(relays, tls, safeguard):
    """`--client ADDRESS` clears only the failures from that address."""
    _, _, context = tls
    _lock_out(relays, context, ALEX)

    elsewhere = safeguard("staff", "unlock", ALEX, "--client", "192.0.2.10")
    assert elsewhere.stdout == (
        f"Nothing to clear: {ALEX} has no failed relay sign-ins from 192.0.2.10 in the last "
        "10 minutes, so it is not locked out there.\n"
    )
    assert _sign_in(relays[0], context, ALEX, ALEX_PASSWORD) == LOCKED

    here = safeguard("staff", "unlock", ALEX, "--client", "127.0.0.1")
    assert here.stdout == (
        f"Cleared 4 failed sign-ins for {ALEX} from 127.0.0.1; "
        "it may sign in to the relay from there again.\n"
    )
    assert _sign_in(relays[0], context, ALEX, ALEX_PASSWORD) == OK

    bad = safeguard("staff", "unlock", ALEX, "--client", "the school")
    assert bad.exit_code == 2
    assert bad.stderr == "safeguard: --client 'the school' is not an IP address\n"


def test_unlocking_one_login_leaves_another_logins_lockout(relays, tls, safeguard):
    """Only the named login's failures are forgiven: jordan, locked out at the same address,
    stays locked out."""
    _, _, context = tls
    _lock_out(relays, context, ALEX)
    _lock_out(relays, context, JORDAN)

    assert safeguard("staff", "unlock", ALEX).exit_code == 0

    for relay in relays:
        assert _sign_in(relay, context, ALEX, ALEX_PASSWORD) == OK
        assert _sign_in(relay, context, JORDAN, JORDAN_PASSWORD) == LOCKED


def test_an_address_guessing_many_logins_stays_locked_out_after_one_is_unlocked(
    relays, tls, safeguard
):
    """The address-wide lockout (10 x 3 failures across logins here) still holds while the
    other logins' failures alone reach it: unlocking alex forgives alex's failures only, and
    the command says that the address is still locked out, alex included."""
    _, _, context = tls
    first, second = relays
    for guess in ("guess one", "guess two", "guess three"):
        assert _sign_in(first, context, ALEX, guess) == REFUSED
    # Guesses at 30 other logins from the same address, counted by other relay processes.
    log, now = FailureLog(first.gateway.engine), datetime.now(UTC)
    for n in range(30):
        log.record(SMTP_AUTH_FAILED, "127.0.0.1", f"user{n}@safe.example", now, timedelta(0))
    # Each running relay learns of them with its next failure.
    for relay in relays:
        assert _sign_in(relay, context, "user99@safe.example", "password1") == REFUSED
        assert _sign_in(relay, context, JORDAN, JORDAN_PASSWORD) == LOCKED

    result = safeguard("staff", "unlock", ALEX)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"Cleared 3 failed sign-ins for {ALEX}.\n"
    assert result.stderr == (
        f"safeguard: note: 127.0.0.1 is still locked out for every login, {ALEX} included: "
        "32 failed sign-ins there with other logins (the limit is 30); it lifts once they are "
        "10 minutes old\n"
    )
    for relay in (first, second):
        assert _sign_in(relay, context, JORDAN, JORDAN_PASSWORD) == LOCKED
        assert _sign_in(relay, context, ALEX, ALEX_PASSWORD) == LOCKED
