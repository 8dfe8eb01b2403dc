"""The limit on failed logins and wrong API tokens holds across processes sharing a database.

README: "[auth] max_failures ... counted per client address across every relay process and
gateway on the database".
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, select

from gateway.clock import FixedClock
from gateway.store.db import make_engine
from gateway.store.failures import SMTP_AUTH_FAILED, FailureLog
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
