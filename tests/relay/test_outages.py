"""When the gateway's own parts fail, the client is told to try again and nothing is lost."""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import create_engine, text

from tests.relay.test_relay import MESSAGE, send
from tests.support import Sink


def test_low_disk_refuses_new_mail_with_452_before_data(start_gateway):
    gateway = start_gateway(server={"min_free_disk": 10**18})
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.safe.example")
        code, reply = client.mail("alex.teacher@safe.example")
    assert (code, reply[:5]) == (452, b"4.3.1")


@pytest.mark.postgres
def test_database_unavailable_answers_451_and_the_retry_is_delivered(
    tmp_path, postgres_url: str, sink: Sink
):
    from gateway.service import Gateway
    from tests.support import RunningGateway, make_settings

    name = postgres_url.rsplit("/", 1)[1]
    admin = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT"
    )
    with RunningGateway(Gateway(make_settings(tmp_path, postgres_url, upstream=sink.url))) as gw:
        # The directory is looked up again at this message (every few seconds in service): the
        # policy stage, not only the archive's commit, meets the database down.
        gw.gateway.directory.recheck = 0
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                ),
                {"name": name},
            )
        try:
            with smtplib.SMTP("127.0.0.1", gw.port) as client:
                client.ehlo("client.safe.example")
                client.mail("alex.teacher@safe.example")
                client.rcpt("sam.minor@home.example")
                code, reply = client.data(MESSAGE)
            assert (code, reply[:5]) == (451, b"4.3.0")
            # Counted, as an admin's review found it was not (it was logged without context).
            counts = gw.gateway.metrics.snapshot()["safeguard_smtp_transactions_total"]
            assert counts[(("result", "tempfail"), ("verdict", ""))] == 1
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        # The client's retry, as any MTA would make it, is accepted and delivered.
        send(gw.port, MESSAGE, rcpts=["sam.minor@home.example"])
        [got] = sink.handler.wait_for(1)
        assert got.message_id == "thursday-1@safe.example"
    admin.dispose()


def test_a_long_read_does_not_hold_up_the_relay(start_gateway, sink: Sink):
    """A search or verify reading the archive must not take the SQLite write lock."""
    from sqlalchemy import select

    from gateway.store.schema import archive

    gateway = start_gateway()
    with gateway.gateway.engine.connect() as reader:
        reader.execute(select(archive.c.id)).all()  # a read transaction is now open
        send(gateway.port, MESSAGE)  # accepted while the read is still in progress
    sink.handler.wait_for(1)
