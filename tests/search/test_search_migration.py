"""Migration 0002 on an archive that already holds mail: what was archived before search
existed is found too, and the revision can be taken back and reapplied."""

from __future__ import annotations

from alembic import command
from sqlalchemy import func, select

from gateway.search.query import parse
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.schema import archive_addresses
from gateway.store.search import ArchiveSearch
from tests.relay.test_relay import MESSAGE, send
from tests.support import Sink


def _ids(engine, query: str) -> list[int]:
    return [hit.id for hit in ArchiveSearch(engine).run(parse(query)).hits]


def test_mail_archived_before_0002_is_indexed_when_it_is_applied(start_gateway, sink: Sink):
    gateway = start_gateway()
    for n in range(3):
        send(gateway.port, MESSAGE.replace(b"thursday-1@", f"old-{n}@".encode()))
    sink.handler.wait_for(3)
    engine = gateway.gateway.engine
    before = _ids(engine, 'contact:priya.shah@parents.example "room 4"')
    assert len(before) == 3

    command.downgrade(alembic_config(engine), "0001")
    upgrade(engine)

    assert _ids(engine, 'contact:priya.shah@parents.example "room 4"') == before
    assert _ids(engine, "subject:thursday from:safe.example") == before
    with engine.connect() as conn:
        # from, envelope_from, to, cc and two envelope recipients, once each per message
        assert conn.execute(select(func.count()).select_from(archive_addresses)).scalar() == 18
