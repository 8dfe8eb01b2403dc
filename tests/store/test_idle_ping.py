"""Pooled PostgreSQL connections are tested before use only after sitting idle (issue 7).

A ping on every checkout cost a round trip per transaction under load. What it guarded
against still holds where it matters: a connection the database dropped while it sat in the
pool overnight (a restart, a firewall's idle timeout) is found and replaced before use.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import DBAPIError

from gateway.store.db import make_engine, transaction
from gateway.store.migrate import upgrade
from gateway.store.schema import chain_head

pytestmark = pytest.mark.postgres


def _drop_connections(postgres_url: str) -> None:
    """What a database restart does to the pool: every server side of it gone."""
    name = postgres_url.rsplit("/", 1)[1]
    admin = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
    admin.dispose()


def _read_head(engine: Engine) -> str:
    with transaction(engine) as conn:
        return str(conn.execute(select(chain_head.c.last_hash)).scalar_one())


def test_a_connection_dropped_while_idle_is_replaced_before_use(postgres_url: str):
    engine = make_engine(postgres_url, idle_ping=0.1)
    upgrade(engine)
    head = _read_head(engine)
    _drop_connections(postgres_url)
    time.sleep(0.2)
    assert _read_head(engine) == head  # no error: the idle connection was pinged and replaced
    engine.dispose()


def test_the_ping_leaves_no_transaction_open(postgres_url: str):
    """A ping that began a transaction would hold a snapshot's start time and refuse later
    isolation or autocommit changes on that connection."""
    engine = make_engine(postgres_url, idle_ping=0.1)
    upgrade(engine)
    _read_head(engine)
    time.sleep(0.2)
    with engine.connect() as conn:  # checked out after sitting idle: pinged
        status = conn.connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
        assert status.name == "IDLE"
    engine.dispose()


def test_under_load_a_dropped_connection_fails_one_transaction_then_the_pool_recovers(
    postgres_url: str,
):
    """The price of not pinging a connection just returned: the one transaction that finds it
    dead fails (the relay answers 451, the worker tries again); the pool then replaces every
    connection older than that failure."""
    engine = make_engine(postgres_url, idle_ping=3600)
    upgrade(engine)
    head = _read_head(engine)
    _drop_connections(postgres_url)
    with pytest.raises(DBAPIError) as failure:
        _read_head(engine)
    assert failure.value.connection_invalidated
    assert _read_head(engine) == head
    engine.dispose()
