"""Several gateways may share one PostgreSQL database: each queued message goes out once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.ids import new_queue_id
from gateway.service import Gateway
from gateway.store.archive import Archive
from gateway.store.db import make_engine
from gateway.store.migrate import upgrade
from gateway.store.queue import QueueStore
from gateway.store.records import ArchiveRecord, QueueItem
from tests.relay.test_relay import send
from tests.support import RunningGateway, Sink, make_settings


def _fill(engine, count: int) -> None:
    archive = Archive(engine)
    now = datetime.now(UTC)
    for n in range(count):
        archive.store(
            ArchiveRecord(
                queue_id=new_queue_id(),
                received_at=now,
                raw=f"Subject: {n}\r\n\r\nx\r\n".encode(),
                verdict="deliver",
                message_id=f"claim-{n}@safe.example",
            ),
            [QueueItem(kind="deliver", mail_from="a@safe.example", recipients=("b@home.example",))],
        )


def test_concurrent_claims_never_hand_out_an_entry_twice(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    _fill(engine, 300)
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        store = QueueStore(engine)
        while entries := store.claim(name, datetime.now(UTC), limit=7):
            with lock:
                claimed.extend(e.id for e in entries)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(worker, [f"w{i}" for i in range(6)]))
    engine.dispose()
    assert len(claimed) == 300
    assert len(set(claimed)) == 300


@pytest.mark.postgres
def test_two_gateways_on_one_postgres_deliver_each_message_exactly_once(
    tmp_path: Path, postgres_url: str, sink: Sink
):
    gateways = [
        RunningGateway(
            Gateway(make_settings(tmp_path / str(i), postgres_url, upstream=sink.url))
        ).__enter__()
        for i in range(2)
    ]
    try:

        def client(n: int) -> None:
            message = (
                f"From: alex.teacher@safe.example\r\nTo: pupil{n}@home.example\r\nSubject: {n}\r\n"
                f"Message-ID: <shared-{n}@safe.example>\r\n\r\nHello {n}\r\n"
            ).encode()
            send(gateways[n % 2].port, message, rcpts=[f"pupil{n}@home.example"])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(client, range(120)))
        got = sink.handler.wait_for(120)
    finally:
        for gateway in gateways:
            gateway.__exit__(None, None, None)
    counts = Counter(r.message_id for r in got)
    assert len(counts) == 120
    assert max(counts.values()) == 1
