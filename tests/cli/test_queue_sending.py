"""`queue list` and `queue retry` on an entry a gateway is sending: whose it is, and when
another gateway takes it over if that one has stopped. An admin's review, after a kill -9:
"sending" with a past NEXT TRY, no owner, and `queue retry` said only "no waiting queue entry"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.config import load_settings
from gateway.ids import new_queue_id
from gateway.service import open_engine
from gateway.store.archive import Archive
from gateway.store.records import ArchiveRecord, Lease, QueueItem

OWNER = "gw1.safe.example:4242:7f00"


def test_an_entry_being_sent_says_by_whom_and_until_when(run, config: Path):
    engine = open_engine(load_settings(config))
    until = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    [entry] = (
        Archive(engine)
        .store(
            ArchiveRecord(
                queue_id=new_queue_id(),
                received_at=datetime.now(UTC) - timedelta(minutes=5),
                raw=b"Subject: Thursday\r\n\r\nx\r\n",
                verdict="deliver",
            ),
            [
                QueueItem(
                    kind="deliver",
                    mail_from="alex.teacher@safe.example",
                    recipients=("sam.minor@home.example",),
                )
            ],
            lease=Lease(OWNER, until),
        )
        .leased
    )
    engine.dispose()
    said = f"being sent by {OWNER}; if that gateway has stopped, another takes it over at"
    listing = run("queue", "list")
    assert f"{said} 2030-01-01 12:00:00" in listing.output
    retried = run("queue", "retry", str(entry.id))
    assert retried.exit_code == 2
    assert f"entry {entry.id} is {said} 2030-01-01 12:00:00" in retried.output
