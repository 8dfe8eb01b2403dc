"""Who may relay: staff who authenticated over TLS, or a trusted network, as themselves only."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.smtp import handler as handler_module
from gateway.smtp.auth import hash_password
from gateway.store.audit import AuditLog
from gateway.store.credentials import CredentialStore
from tests import support
from tests.support import Sink, serve_refused

MESSAGE = (
    b"From: Alex Teacher <alex.teacher@safe.example>\r\nTo: sam.minor@home.example\r\n"
    b"Subject: hello\r\nMessage-ID: <access-1@safe.example>\r\n\r\nHello Sam\r\n"
)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, ssl.SSLContext]:
    return support.tls_files(tmp_path, "gateway.safe.example")


@pytest.fixture
def event_loop_kind() -> str:
    return "uvloop"  # the default; a test may ask for Python's own loop too


@pytest.fixture
def staff_gateway(start_gateway, tls_files, event_loop_kind):
    """No trusted networks: every client must authenticate, and only after STARTTLS."""
    cert, key, _ = tls_files
    gateway = start_gateway(
        auth={"trusted_networks": [], "max_failures": 3},
        server={"tls_cert": str(cert), "tls_key": str(key), "event_loop": event_loop_kind},
    )
    CredentialStore(gateway.gateway.engine).set_hash(
        "alex.teacher@safe.example",
        hash_password("correct horse battery"),
        gateway.gateway.clock.now(),
    )
    return gateway


def test_an_open_relay_probe_is_refused(staff_gateway):
    with smtplib.SMTP("127.0.0.1", staff_gateway.port) as client:
        client.ehlo("probe.example")
        code, reply = client.mail("spammer@elsewhere.example")
        assert (code, reply[:5]) == (530, b"5.7.0")
        code, _ = client.rcpt("victim@elsewhere.example")
        assert code == 503


def test_auth_is_not_offered_or_accepted_before_starttls(staff_gateway):
    with smtplib.SMTP("127.0.0.1", staff_gateway.port) as client:
        client.ehlo("client.safe.example")
        assert not client.has_extn("auth")
        assert client.has_extn("starttls")
        code, reply = client.docmd("AUTH", "PLAIN AGFsZXgAeA==")
        assert code == 538 and reply.startswith(b"5.7.11")


@pytest.mark.parametrize("event_loop_kind", ["uvloop", "asyncio"])
def test_staff_relay_after_starttls_and_auth(staff_gateway, tls_files, sink: Sink):
    _, _, context = tls_files
    with smtplib.SMTP("127.0.0.1", staff_gateway.port) as client:
        client.starttls(context=context)
        client.ehlo("client.safe.example")
        assert "PLAIN" in client.esmtp_features["auth"]
        _auth(client, "LOGIN", "Alex.Teacher@safe.example", "correct horse battery")
        client.sendmail("alex.teacher@safe.example", ["sam.minor@home.example"], MESSAGE)
    [got] = sink.handler.wait_for(1)
    assert b"with ESMTPSA id" in got.data


def _auth(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> None:
    client.user, client.password = user, password
    method = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login}[mechanism]
    client.auth(mechanism, method, initial_response_ok=True)


def test_a_wrong_password_is_refused_and_repeated_failures_are_throttled(staff_gateway, tls_files):
    _, _, context = tls_files
    for mechanism, guess in (("PLAIN", "guess one"), ("LOGIN", "guess two"), ("PLAIN", "three")):
        with smtplib.SMTP("127.0.0.1", staff_gateway.port) as client:
            client.starttls(context=context)
            client.ehlo("client.safe.example")
            with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
                _auth(client, mechanism, "alex.teacher@safe.example", guess)
            assert failed.value.smtp_code == 535
    # The right password no longer helps from this address until the window passes.
    with smtplib.SMTP("127.0.0.1", staff_gateway.port) as client:
        client.starttls(context=context)
        client.ehlo("client.safe.example")
        code, reply = client.docmd(
            "AUTH", "PLAIN AGFsZXgudGVhY2hlckBzYWZlLmV4YW1wbGUAY29ycmVjdCBob3JzZSBiYXR0ZXJ5"
        )
        assert (code, reply[:5]) == (421, b"4.7.0")


def test_wrong_passwords_at_one_gateway_count_at_another_on_the_same_database(
    start_gateway, staff_gateway, tls_files
):
    """README: failed logins are 'counted per client address across every relay process and
    gateway on the database' - two relays must not allow twice the guesses - and an IT admin
    sees them with `safeguard audit --action smtp_auth_failed`."""
    cert, key, context = tls_files
    other = start_gateway(
        auth={"trusted_networks": [], "max_failures": 3},
        server={"tls_cert": str(cert), "tls_key": str(key)},
    )

    def attempt(port: int, password: str) -> int:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.starttls(context=context)
            client.ehlo("client.safe.example")
            try:
                _auth(client, "PLAIN", "alex.teacher@safe.example", password)
            except smtplib.SMTPAuthenticationError as refused:
                return refused.smtp_code
            except smtplib.SMTPServerDisconnected:
                return 421  # turned away: smtplib reads the 421 as a lost connection
            return 235

    assert attempt(staff_gateway.port, "guess one") == 535
    assert attempt(staff_gateway.port, "guess two") == 535
    assert attempt(other.port, "guess three") == 535
    # Three failures from this address, two of them at the first gateway: none left anywhere.
    assert attempt(other.port, "correct horse battery") == 421
    assert attempt(staff_gateway.port, "guess four") == 535  # it learns with its next failure
    assert attempt(staff_gateway.port, "correct horse battery") == 421

    entries = AuditLog(staff_gateway.gateway.engine).entries(action="smtp_auth_failed")
    assert [(e.actor, e.query) for e in entries] == [("alex.teacher@safe.example", "127.0.0.1")] * 4


def _attempt(port: int, context, login: str, password: str) -> int:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.starttls(context=context)
        client.ehlo("client.safe.example")
        try:
            _auth(client, "PLAIN", login, password)
        except smtplib.SMTPAuthenticationError as refused:
            return refused.smtp_code
        except smtplib.SMTPServerDisconnected:
            return 421  # turned away: smtplib reads the 421 as a lost connection
        return 235


def test_a_phone_retrying_an_old_password_neither_locks_out_its_owner_nor_the_school(
    staff_gateway, tls_files
):
    """The same wrong password again from the same address is not a guess: counted once, it
    never reaches the limit (3 here), and the right password still works from there."""
    _, _, context = tls_files
    for _ in range(6):
        assert _attempt(staff_gateway.port, context, "alex.teacher@safe.example", "old") == 535
    assert (
        _attempt(staff_gateway.port, context, "alex.teacher@safe.example", "correct horse battery")
        == 235
    )
    entries = AuditLog(staff_gateway.gateway.engine).entries(action="smtp_auth_failed")
    assert len(entries) == 1


def test_one_persons_wrong_passwords_do_not_lock_out_others_at_the_same_address(
    staff_gateway, tls_files
):
    """Many staff share one school's address (NAT): the limit is per address and login."""
    _, _, context = tls_files
    CredentialStore(staff_gateway.gateway.engine).set_hash(
        "jordan.ellis@safe.example",
        hash_password("another good one"),
        staff_gateway.gateway.clock.now(),
    )
    for guess in ("one", "two", "three"):
        assert _attempt(staff_gateway.port, context, "alex.teacher@safe.example", guess) == 535
    assert (
        _attempt(staff_gateway.port, context, "alex.teacher@safe.example", "correct horse battery")
        == 421
    )
    assert (
        _attempt(staff_gateway.port, context, "jordan.ellis@safe.example", "another good one")
        == 235
    )


def test_spaces_or_capitals_around_a_login_do_not_buy_more_guesses(staff_gateway, tls_files):
    """ " Alex.Teacher@safe.example" is checked as alex's login, so it is counted as alex's:
    the per-login limit (3 here) holds however the login is written."""
    _, _, context = tls_files
    variants = (
        "alex.teacher@safe.example",
        " alex.teacher@safe.example",
        "ALEX.TEACHER@safe.example ",
    )
    for n, login in enumerate(variants):
        assert _attempt(staff_gateway.port, context, login, f"guess {n}") == 535
    assert (
        _attempt(staff_gateway.port, context, " alex.teacher@safe.example", "correct horse battery")
        == 421
    )


def test_trying_many_logins_from_one_address_is_stopped_too(staff_gateway, tls_files):
    """Across logins an address may fail 10 times the per-login limit (3 x 10 here), then
    every login from it is turned away before its password is read."""
    _, _, context = tls_files
    for n in range(30):
        assert _attempt(staff_gateway.port, context, f"user{n}@safe.example", "password1") == 535
    assert (
        _attempt(staff_gateway.port, context, "alex.teacher@safe.example", "correct horse battery")
        == 421
    )


def test_staff_cannot_send_as_another_member_of_staff(staff_gateway, tls_files):
    _, _, context = tls_files
    with smtplib.SMTP("127.0.0.1", staff_gateway.port) as client:
        client.starttls(context=context)
        client.ehlo("client.safe.example")
        client.login("alex.teacher@safe.example", "correct horse battery")
        code, reply = client.mail("dana.lee@safe.example")
        assert code == 553 and reply.startswith(b"5.7.1")
        client.rset()
        client.mail("alex.teacher@safe.example")
        client.rcpt("sam.minor@home.example")
        spoofed = MESSAGE.replace(b"alex.teacher@safe.example", b"dana.lee@safe.example")
        code, reply = client.data(spoofed)
        assert code == 550 and reply.startswith(b"5.7.1")


def test_a_trusted_network_may_relay_only_for_the_organisations_domains(start_gateway, sink: Sink):
    gateway = start_gateway()
    with capture_logs() as logs, smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("mta.safe.example")
        code, reply = client.mail("someone@elsewhere.example")
        assert code == 553 and reply.startswith(b"5.7.1")
        assert client.mail("alex.teacher@safe.example")[0] == 250
        assert client.rcpt("not an address")[0] == 501
    # Refusals are logged, so that IT can answer "why was I refused?" (an admin's review).
    refused = [(e["command"], e["reply"][:3]) for e in logs if e["event"] == "smtp_refused"]
    assert refused == [("MAIL", "553"), ("RCPT", "501")]


def test_oversized_mail_is_refused_with_an_enhanced_code(start_gateway):
    gateway = start_gateway(server={"max_message_size": 2000})
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.safe.example")
        code, reply = client.docmd("MAIL FROM:<alex.teacher@safe.example> SIZE=5000")
        assert (code, reply[:5]) == (552, b"5.3.4")
        client.mail("alex.teacher@safe.example")
        client.rcpt("sam.minor@home.example")
        code, reply = client.data(MESSAGE + (b"x" * 98 + b"\r\n") * 30)
        assert (code, reply[:5]) == (552, b"5.3.4")


def test_too_many_recipients_are_refused_with_452(start_gateway):
    gateway = start_gateway(server={"max_recipients": 3})
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.safe.example")
        client.mail("alex.teacher@safe.example")
        codes = [client.rcpt(f"pupil{i}@home.example")[0] for i in range(5)]
    assert codes == [250, 250, 250, 452, 452]


def test_a_malformed_recipient_address_is_refused(start_gateway):
    gateway = start_gateway()
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.safe.example")
        client.mail("alex.teacher@safe.example")
        code, reply = client.rcpt("not an address")
        assert code == 501 and reply.startswith(b"5.1.3")


def test_a_recipient_written_to_again_gets_the_same_check_and_spelling(
    start_gateway, sink: Sink, monkeypatch: pytest.MonkeyPatch
):
    """The relay remembers the recipients it has checked: the second message to the same
    people is normalised exactly as the first, and a bad address is refused every time."""
    checked: list[str] = []
    check = handler_module.checked_address

    def counted(address: str) -> str:
        checked.append(address)
        return check(address)

    monkeypatch.setattr(handler_module, "checked_address", counted)
    gateway = start_gateway()
    message = (
        b"From: alex.teacher@safe.example\r\nTo: Priya.Shah@Parents.Example\r\n"
        b"Subject: Trip\r\n\r\nThe trip is on Friday.\r\n"
    )
    for _ in range(2):
        with smtplib.SMTP("127.0.0.1", gateway.port) as client:
            client.ehlo("client.safe.example")
            client.mail("alex.teacher@safe.example")
            assert client.rcpt("not an address")[0] == 501
            assert client.rcpt("Priya.Shah@Parents.Example")[0] == 250
            assert client.rcpt("priya.shah@parents.example")[0] == 250  # the same person
            assert client.data(message)[0] == 250
    received = sink.handler.wait_for(2)
    assert [r.rcpt_tos for r in received] == [["priya.shah@parents.example"]] * 2
    # Each spelling was checked once; only the refused address was checked every time.
    valid = [a for a in checked if "@" in a]
    assert valid == ["Priya.Shah@Parents.Example", "priya.shah@parents.example"]
    assert len(checked) - len(valid) == 2


def test_an_over_long_line_is_refused_with_an_enhanced_code(start_gateway):
    gateway = start_gateway()
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.safe.example")
        client.mail("alex.teacher@safe.example")
        client.rcpt("sam.minor@home.example")
        code, reply = client.data(MESSAGE + b"x" * 3000 + b"\r\n")
        assert (code, reply[:5]) == (500, b"5.5.2")


@pytest.mark.parametrize(
    "login",
    [
        "sam.minor@home.example",  # a young person in the directory, never staff
        "left.last.term@safe.example",  # a leaver: no longer in the staff list
    ],
)
def test_only_staff_in_the_directory_may_authenticate_whatever_their_password(
    staff_gateway, tls_files, login
):
    """interface.md: `staff set-password` "sets a staff member's relay/console password". An
    address the directory does not list as staff is refused as a wrong password is (535), so
    taking a leaver out of the staff list closes the relay to them."""
    _, _, context = tls_files
    CredentialStore(staff_gateway.gateway.engine).set_hash(
        login, hash_password("correct horse battery"), staff_gateway.gateway.clock.now()
    )
    with smtplib.SMTP("127.0.0.1", staff_gateway.port) as client:
        client.starttls(context=context)
        client.ehlo("client.safe.example")
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            _auth(client, "PLAIN", login, "correct horse battery")
        assert refused.value.smtp_code == 535


def test_a_removed_password_no_longer_opens_the_relay(staff_gateway, tls_files):
    _, _, context = tls_files
    store = CredentialStore(staff_gateway.gateway.engine)
    assert store.remove("Alex.Teacher@safe.example", staff_gateway.gateway.clock.now(), actor="it")
    assert not store.remove("alex.teacher@safe.example", staff_gateway.gateway.clock.now())
    with smtplib.SMTP("127.0.0.1", staff_gateway.port) as client:
        client.starttls(context=context)
        client.ehlo("client.safe.example")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            _auth(client, "PLAIN", "alex.teacher@safe.example", "correct horse battery")
    [removed] = AuditLog(staff_gateway.gateway.engine).entries(action="password_removed")
    assert (removed.actor, removed.query) == ("it", "alex.teacher@safe.example")


def test_serve_refuses_a_certificate_and_key_that_do_not_go_together(tmp_path, tls_files):
    """Swapped files were "cannot start: [SSL] PEM lib (_ssl.c:3905)": now the keys and the
    files are named, and nothing starts."""
    cert, key, _ = tls_files
    config = tmp_path / "swapped.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "a.db"}"\n'
        f'[server]\ntls_cert = "{key}"\ntls_key = "{cert}"\n'
        f'[upstream]\nurl = "maildir://{tmp_path / "maildir"}"\n'
    )
    said = serve_refused(config)
    assert said.startswith(f"safeguard: [server] tls_cert {key} and tls_key {cert}:")


def test_an_idle_tls_session_does_not_hold_a_stop(staff_gateway, tls_files):
    """A review found a stop waiting the whole drain_timeout for an idle session after STARTTLS:
    closing TLS waits for the client's reply, which an idle client never sends. It is told 421
    and cut off a second later."""
    import time

    _, _, context = tls_files
    client = smtplib.SMTP("127.0.0.1", staff_gateway.port, timeout=30)
    client.starttls(context=context)
    client.ehlo("idle.safe.example")
    started = time.monotonic()
    staff_gateway.call(staff_gateway.gateway.stop(), timeout=60)
    assert time.monotonic() - started < 5
    client.close()
