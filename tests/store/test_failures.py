"""The limit on failed logins and wrong API tokens holds across processes sharing a database.

README: "[auth] max_failures ... counted per client address across every relay process and
gateway on the database".
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, select

from gateway.clock import FixedClock
from gateway.store.audit import AuditNote
from gateway.store.credentials import CredentialStore
from gateway.store.db import make_engine
from gateway.store.failures import (
    API_TOKEN_FAILED,
    SMTP_AUTH_FAILED,
    SMTP_AUTH_UNLOCKED,
    FailureLog,
    Recent,
    Unlocked,
)
from gateway.store.migrate import upgrade
from gateway.store.schema import audit_log
from gateway.throttle import FailureLimiter

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CLIENT = "198.51.100.7"


def _limiter(log: FailureLog | None, clock: FixedClock) -> FailureLimiter:
    return FailureLimiter(3, 600, clock=clock, failures=log, action=SMTP_AUTH_FAILED)


def test_failures_at_one_process_count_at_another(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    clock = FixedClock(START)
    first, second = _limiter(FailureLog(engine), clock), _limiter(FailureLog(engine), clock)

    asyncio.run(first.failed(CLIENT, "alex.teacher@safe.example"))
    asyncio.run(first.failed(CLIENT, "alex.teacher@safe.example"))
    assert not second.blocked(CLIENT)
    asyncio.run(second.failed(CLIENT, "alex.teacher@safe.example"))
    # The second process has seen one failure of its own, and the database three.
    assert second.blocked(CLIENT)
    # The first learns of it with its next failure: one more try, not a fresh allowance.
    assert not first.blocked(CLIENT)
    asyncio.run(first.failed(CLIENT, "alex.teacher@safe.example"))
    assert first.blocked(CLIENT)
    assert not first.blocked("203.0.113.9")  # another address is not held back

    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.query).where(
                audit_log.c.action == SMTP_AUTH_FAILED
            )
        ).all()
    assert rows == [("alex.teacher@safe.example", CLIENT)] * 4
    engine.dispose()


def test_failures_older_than_the_window_no_longer_count(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    clock = FixedClock(START)
    first, second = _limiter(FailureLog(engine), clock), _limiter(FailureLog(engine), clock)
    for _ in range(2):
        asyncio.run(first.failed(CLIENT, "x"))
    clock.moment = START + timedelta(seconds=601)
    asyncio.run(second.failed(CLIENT, "x"))
    assert not second.blocked(CLIENT) and not first.blocked(CLIENT)
    engine.dispose()


def test_an_unreadable_database_leaves_the_count_in_memory(tmp_path: Path):
    """The database being down must not let guesses through unlimited, nor raise."""
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'archive.db'}")
    limiter = _limiter(FailureLog(engine), FixedClock(START))
    for _ in range(3):
        asyncio.run(limiter.failed(CLIENT, "x"))
    assert limiter.blocked(CLIENT)


def test_a_login_with_control_characters_is_written_printable(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    asyncio.run(_limiter(FailureLog(engine), FixedClock(START)).failed(CLIENT, "ev\x1b[2Jil"))
    with engine.connect() as conn:
        assert conn.execute(select(audit_log.c.actor)).scalar_one() == "ev[2Jil"
    engine.dispose()


def test_a_locked_database_holds_the_reply_only_briefly(tmp_path: Path):
    """A failed login is answered within the limiter's record timeout even while another
    writer holds SQLite's lock; the count in memory still holds."""
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = make_engine(url)
    upgrade(engine)
    holder = create_engine(url, connect_args={"isolation_level": None})
    with holder.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        limiter = FailureLimiter(
            1,
            600,
            clock=FixedClock(START),
            failures=FailureLog(engine),
            action=SMTP_AUTH_FAILED,
            record_timeout=0.5,
        )

        async def answered_after() -> float:
            # Timed inside the loop: asyncio.run() itself waits for the abandoned thread.
            started = time.monotonic()
            await limiter.failed(CLIENT, "x")
            elapsed = time.monotonic() - started
            conn.exec_driver_sql("ROLLBACK")  # lets the abandoned write finish
            return elapsed

        assert asyncio.run(answered_after()) < 5
        assert limiter.blocked(CLIENT)
    holder.dispose()
    engine.dispose()


def _by_login(log: FailureLog | None, clock: FixedClock) -> FailureLimiter:
    """As the relay's: 3 per address and login, 6 per address across logins."""
    return FailureLimiter(
        3, 600, clock=clock, failures=log, action=SMTP_AUTH_FAILED, address_limit=6
    )


def test_a_login_over_its_limit_at_one_process_is_over_it_at_another(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    clock = FixedClock(START)
    first, second = _by_login(FailureLog(engine), clock), _by_login(FailureLog(engine), clock)
    alex = "alex.teacher@safe.example"
    for guess in (b"1", b"2"):
        asyncio.run(first.failed(CLIENT, alex, login=alex, attempt=guess))
    asyncio.run(second.failed(CLIENT, alex, login=alex, attempt=b"3"))
    assert second.blocked(CLIENT, alex)
    assert not second.blocked(CLIENT, "dana.lee@safe.example")  # others at the address
    assert not second.blocked(CLIENT)  # the address as a whole: 3 of 6
    for n in range(3):
        asyncio.run(second.failed(CLIENT, f"u{n}", login=f"u{n}", attempt=f"u{n}:x".encode()))
    assert second.blocked(CLIENT)  # 6 failures from the address, whatever the logins
    engine.dispose()


def test_the_same_wrong_attempt_again_is_counted_once(database_url: str):
    """A phone retrying an out-of-date password: one failure, one audit row, however often."""
    engine = make_engine(database_url)
    upgrade(engine)
    limiter = _by_login(FailureLog(engine), FixedClock(START))
    for _ in range(10):
        asyncio.run(limiter.failed(CLIENT, "alex", login="alex", attempt=b"alex\0old"))
    assert not limiter.blocked(CLIENT, "alex")
    with engine.connect() as conn:
        assert len(conn.execute(select(audit_log.c.id)).all()) == 1
    asyncio.run(limiter.failed(CLIENT, "alex", login="alex", attempt=b"alex\0new guess"))
    asyncio.run(limiter.failed(CLIENT, "alex", login="alex", attempt=b"alex\0third"))
    assert limiter.blocked(CLIENT, "alex")
    engine.dispose()


def test_counts_that_left_the_window_are_swept_from_memory():
    clock = FixedClock(START)
    limiter = _by_login(None, clock)
    for n in range(50):
        asyncio.run(limiter.failed(f"192.0.2.{n}", "x", login=f"l{n}", attempt=b"p"))
    clock.moment = START + timedelta(seconds=601)
    for n in range(1_000):  # enough failures to trigger a sweep
        asyncio.run(limiter.failed("203.0.113.1", "x", login="y", attempt=str(n).encode()))
    assert all(address == "203.0.113.1" for address, _ in limiter._times)
    assert list(limiter._tried) == ["203.0.113.1"]


def _unlock(engine: Engine, login: str, at: datetime, client: str | None = None) -> Unlocked:
    note = AuditNote("it.admin", SMTP_AUTH_UNLOCKED, at, login, None, {"via": "cli"})
    return FailureLog(engine).unlock(login, note, timedelta(seconds=600), client=client)


class _Counting(FailureLog):
    """A FailureLog that counts how often a relay asks it whether anything was forgiven."""

    looked = 0
    recounted = 0

    def newest_forgiving(self, action: str) -> int:
        self.looked += 1
        return super().newest_forgiving(action)

    def recent(
        self, action: str, client: str, actor: str | None, now: datetime, window: timedelta
    ) -> Recent:
        self.recounted += 1
        return super().recent(action, client, actor, now, window)


def test_an_unlock_reaches_a_running_process_when_it_is_about_to_refuse(engine: Engine):
    """Review: "no command clears [an SMTP AUTH lockout]". An unlock written to the database
    lifts the lockout in a process that counted the failures in memory; the database is asked
    only when a refusal is due, and counted again only when something new was forgiven."""
    clock = FixedClock(START)
    log = _Counting(engine)
    limiter = FailureLimiter(
        3, 600, clock=clock, failures=log, action=SMTP_AUTH_FAILED, address_limit=30
    )
    alex, dana = "alex.teacher@safe.example", "dana.lee@safe.example"
    for login in (alex, dana):
        for guess in (b"1", b"2", b"3"):
            asyncio.run(limiter.failed(CLIENT, login, login=login, attempt=login.encode() + guess))
    assert asyncio.run(limiter.still_blocked(CLIENT, alex))
    assert asyncio.run(limiter.still_blocked(CLIENT, alex))
    assert not asyncio.run(limiter.still_blocked(CLIENT, "sam.ray@safe.example"))
    assert (log.looked, log.recounted) == (2, 0)  # refusals looked; nothing new forgiven

    found = _unlock(engine, alex, START)

    assert (found.cleared, found.by_client, found.others) == (3, {CLIENT: 3}, {CLIENT: 3})
    assert not asyncio.run(limiter.still_blocked(CLIENT, alex))
    assert not limiter.blocked(CLIENT, alex)  # the count in memory was taken again
    assert asyncio.run(limiter.still_blocked(CLIENT, dana))  # only alex was forgiven
    assert asyncio.run(limiter.still_blocked(CLIENT, dana))
    # Each count was taken again once after the unlock, not at every refusal.
    assert (log.looked, log.recounted) == (5, 2)


def test_an_unlock_forgives_the_logins_share_of_the_address_count_only(engine: Engine):
    """The address-wide count (6 here) loses the unlocked login's failures, not the others'."""
    limiter = _by_login(FailureLog(engine), FixedClock(START))
    for n in range(5):
        asyncio.run(limiter.failed(CLIENT, f"u{n}", login=f"u{n}", attempt=f"u{n}".encode()))
    asyncio.run(limiter.failed(CLIENT, "alex", login="alex", attempt=b"alex\0x"))
    assert limiter.blocked(CLIENT)
    _unlock(engine, "alex", START)
    assert not asyncio.run(limiter.still_blocked(CLIENT))  # 5 of 6
    asyncio.run(limiter.failed(CLIENT, "u9", login="u9", attempt=b"u9"))
    assert asyncio.run(limiter.still_blocked(CLIENT))  # 6 of 6, alex's not among them


def test_a_new_password_forgives_like_an_unlock_and_a_client_unlock_only_its_address(
    engine: Engine,
):
    limiter = _by_login(FailureLog(engine), FixedClock(START))
    other = "203.0.113.9"
    for address in (CLIENT, other):
        for guess in (b"1", b"2", b"3"):
            asyncio.run(limiter.failed(address, "alex", login="alex", attempt=guess))
    assert _unlock(engine, "alex", START, client=other).by_client == {other: 3}
    assert not asyncio.run(limiter.still_blocked(other, "alex"))
    assert asyncio.run(limiter.still_blocked(CLIENT, "alex"))
    assert FailureLog(engine).pending("alex", START, timedelta(seconds=600)).cleared == 3
    CredentialStore(engine).set_hash("alex", "$argon2id$not-a-real-hash", START)
    assert not asyncio.run(limiter.still_blocked(CLIENT, "alex"))
    assert FailureLog(engine).pending("alex", START, timedelta(seconds=600)).cleared == 0


def test_a_refusal_the_database_cannot_confirm_stands(tmp_path: Path):
    """The database being down must not lift a lockout, nor raise."""
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'archive.db'}")
    limiter = _limiter(FailureLog(engine), FixedClock(START))
    for n in range(3):
        asyncio.run(limiter.failed(CLIENT, "x", login="x", attempt=str(n).encode()))
    assert asyncio.run(limiter.still_blocked(CLIENT, "x"))


def test_wrong_api_tokens_are_not_forgiven_and_their_refusals_never_ask(engine: Engine):
    log = _Counting(engine)
    limiter = FailureLimiter(2, 600, clock=FixedClock(START), failures=log, action=API_TOKEN_FAILED)
    for _ in range(2):
        asyncio.run(limiter.failed(CLIENT, "(wrong API token)"))
    assert asyncio.run(limiter.still_blocked(CLIENT))
    assert log.looked == 0
