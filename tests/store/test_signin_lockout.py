"""The console's lockout counts per address and client, and per address across clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from gateway.store.signin import ADDRESS_FACTOR, SigninAttempts

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LEAD = "dsl@safe.example"


def test_one_client_is_locked_out_after_the_limit_and_another_is_not(engine: Engine):
    attempts = SigninAttempts(engine, limit=3, window=timedelta(minutes=15))
    assert all(attempts.begin(LEAD, NOW, "198.51.100.7") for _ in range(3))
    assert not attempts.begin(LEAD, NOW, "198.51.100.7")
    assert attempts.begin(LEAD, NOW, "203.0.113.9")
    assert attempts.begin("other@safe.example", NOW, "198.51.100.7")


def test_guesses_spread_over_many_clients_still_lock_the_address(engine: Engine):
    attempts = SigninAttempts(engine, limit=3, window=timedelta(minutes=15))
    spread = [attempts.begin(LEAD, NOW, f"10.0.{n // 2}.{n}") for n in range(3 * ADDRESS_FACTOR)]
    assert all(spread)
    assert not attempts.begin(LEAD, NOW, "203.0.113.9")  # a client never seen before
    later = NOW + timedelta(minutes=16)  # the window has passed
    assert attempts.begin(LEAD, later, "203.0.113.9")
