"""`safeguard archive verify`: any change made behind the product's back is found and named."""

from __future__ import annotations

import zlib

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, update

from gateway.cli import cli
from gateway.store.db import make_engine, transaction
from gateway.store.integrity import verify
from gateway.store.migrate import upgrade
from gateway.store.schema import (
    archive,
    archive_addresses,
    archive_findings,
    chain_head,
    metadata,
    queue,
)
from tests.relay.test_relay import MESSAGE, send
from tests.support import Sink


@pytest.fixture
def archived(start_gateway, sink: Sink):
    gateway = start_gateway()
    for n in range(5):
        send(gateway.port, MESSAGE.replace(b"thursday-1@", f"chain-{n}@".encode()))
    sink.handler.wait_for(5)
    with gateway.gateway.engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(archive.c.id).order_by(archive.c.id))]
    return gateway.gateway.engine, ids


def test_an_untouched_archive_verifies(archived):
    engine, ids = archived
    report = verify(engine)
    assert report.ok and report.checked == len(ids) == 5


@pytest.mark.parametrize(
    ("alteration", "reason"),
    [
        ({"verdict": "deliver2"}, "its verdict, time or hash was altered"),
        (
            {"raw_gz": zlib.compress(MESSAGE.replace(b"room 4", b"room 5"))},
            "the stored message does not match its SHA-256",
        ),
        ({"raw_sha256": "0" * 64}, "its verdict, time or hash was altered"),
    ],
)
def test_a_row_altered_through_sql_is_named(archived, alteration, reason):
    engine, ids = archived
    with transaction(engine) as conn:
        conn.execute(update(archive).where(archive.c.id == ids[2]).values(**alteration))
    report = verify(engine)
    assert not report.ok
    assert report.problem.archive_id == ids[2]
    assert report.problem.reason == reason
    assert report.checked == 2


def test_a_deleted_row_breaks_the_next_link(archived):
    engine, ids = archived
    with transaction(engine) as conn:
        conn.execute(delete(queue).where(queue.c.archive_id == ids[1]))
        conn.execute(delete(archive).where(archive.c.id == ids[1]))
    report = verify(engine)
    assert report.problem.archive_id == ids[2]
    assert "link to the previous record is broken" in report.problem.reason


def test_removing_the_newest_records_is_noticed(archived):
    engine, ids = archived
    with transaction(engine) as conn:
        conn.execute(delete(queue).where(queue.c.archive_id == ids[-1]))
        conn.execute(delete(archive).where(archive.c.id == ids[-1]))
    assert "chain head does not match" in verify(engine).problem.reason


def test_the_command_exits_1_and_names_the_record(archived, tmp_path):
    engine, ids = archived
    config = tmp_path / "verify.toml"
    config.write_text(f'[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n')
    runner = CliRunner()
    ok = runner.invoke(cli, ["--config", str(config), "archive", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "Archive verified: 5 records" in ok.output
    with transaction(engine) as conn:
        conn.execute(update(archive).where(archive.c.id == ids[3]).values(verdict="deliver2"))
    bad = runner.invoke(cli, ["--config", str(config), "archive", "verify"])
    assert bad.exit_code == 1
    assert f"ARCHIVE ALTERED: record {ids[3]}" in bad.output


def test_removing_every_record_is_noticed(archived):
    """An archive emptied through SQL is not "0 records, intact": the chain head still names
    the last record it had."""
    engine, ids = archived
    with transaction(engine) as conn:
        for table in reversed(metadata.sorted_tables):
            if any(fk.column.table is archive for fk in table.foreign_keys):
                conn.execute(delete(table))
        conn.execute(delete(archive))
    report = verify(engine)
    assert not report.ok and report.checked == 0
    assert report.problem.reason.startswith(f"the chain head names record {ids[-1]}")
    assert "every record was removed" in report.problem.reason


def test_a_new_archive_with_no_records_verifies(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    upgrade(engine)
    report = verify(engine)
    assert report.ok and report.checked == 0
    engine.dispose()


@pytest.mark.parametrize(
    "alteration",
    [{"findings": [{"code": "planted", "rule": "r"}]}, {"cc_addrs": []}, {"subject": "Nothing"}],
)
def test_what_was_recorded_about_a_message_is_chained_too(archived, alteration):
    """A cover-up changes what was recorded (a flag, a parent copied, the subject), not the
    message's bytes: the chain covers findings, addresses and subject, not only bytes and
    verdict."""
    engine, ids = archived
    with transaction(engine) as conn:  # the gateway's writer may be indexing
        conn.execute(update(archive).where(archive.c.id == ids[2]).values(**alteration))
    report = verify(engine)
    assert report.problem.archive_id == ids[2]
    assert report.problem.reason.startswith("what was recorded about it (findings, addresses")


def test_a_record_s_search_entries_altered_are_named(archived):
    """`contact:` and `flag:` search these tables, and a child's export is built from them:
    rows removed there would hide a message from both, rows added would plant one."""
    engine, ids = archived
    with transaction(engine) as conn:  # the gateway's writer may be indexing
        removed = conn.execute(
            delete(archive_addresses).where(archive_addresses.c.archive_id == ids[3])
        ).rowcount
        conn.execute(
            insert(archive_findings).values(
                archive_id=ids[1], code="planted", rule="r", action="flag"
            )
        )
    assert removed
    report = verify(engine)
    assert report.problem.archive_id == ids[1]
    assert "search entries (addresses or findings) were altered" in report.problem.reason
    with transaction(engine) as conn:  # the gateway's writer may be indexing
        conn.execute(delete(archive_findings).where(archive_findings.c.archive_id == ids[1]))
    assert verify(engine).problem.archive_id == ids[3]


def test_a_head_kept_elsewhere_finds_what_the_chain_alone_cannot(archived, tmp_path):
    """ "The chain has no secret ... the head copied elsewhere from time to time makes that
    visible too" (README): an admin's review found no command that printed it. Removing the
    newest record and setting the chain's head back to the one before leaves a chain that
    verifies; the head kept from before does not."""
    engine, ids = archived
    config = tmp_path / "verify.toml"
    config.write_text(f'[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n')
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(config), "archive", "verify"])
    [kept] = [line[6:] for line in first.output.splitlines() if line.startswith("Head: ")]
    assert kept.startswith(f"{ids[-1]}:")
    again = runner.invoke(cli, ["--config", str(config), "archive", "verify", "--expect", kept])
    assert again.exit_code == 0, again.output

    with transaction(engine) as conn:
        before = conn.execute(
            select(archive.c.record_hash).where(archive.c.id == ids[-2])
        ).scalar_one()
        conn.execute(delete(queue).where(queue.c.archive_id == ids[-1]))
        conn.execute(delete(archive).where(archive.c.id == ids[-1]))
        conn.execute(update(chain_head).values(last_id=ids[-2], last_hash=before))
    assert verify(engine).ok  # the chain alone cannot tell
    caught = runner.invoke(cli, ["--config", str(config), "archive", "verify", "--expect", kept])
    assert caught.exit_code == 1
    assert f"ARCHIVE ALTERED: record {ids[-1]}" in caught.output
    assert "no longer holds it" in caught.output

    typo = runner.invoke(cli, ["--config", str(config), "archive", "verify", "--expect", "12"])
    assert typo.exit_code == 2 and "expected ID:HASH" in typo.output


def test_mail_archived_while_verify_walks_is_not_reported_as_removed(start_gateway, sink: Sink):
    """A review: a nightly verify of a running gateway read the head at its start, walked on
    past it into what was archived meanwhile, and reported "records were removed from the end".
    It checks the chain up to the head it read."""
    gateway = start_gateway()
    for n in range(4):
        send(gateway.port, MESSAGE.replace(b"thursday-1@", f"walk-{n}@".encode()))
    sink.handler.wait_for(4)
    sent: list[int] = []

    def meanwhile(done: int, total: int) -> None:
        if not sent:
            sent.append(done)
            send(gateway.port, MESSAGE.replace(b"thursday-1@", b"meanwhile@"))

    report = verify(gateway.gateway.engine, progress=meanwhile, batch=2)
    assert report.ok, report.problem
    assert report.checked == 4
