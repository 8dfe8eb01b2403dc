"""SQLite's full-text index is filled after the relay's commit (issue 7): what the relay has
archived is still found by every search, and retention's blanking never corrupts the index."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner, Result
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from gateway.cli import cli
from gateway.export import matching_ids
from gateway.search.query import parse
from gateway.store.archive import Archive
from gateway.store.audit import AuditLog
from gateway.store.db import make_engine
from gateway.store.fulltext import deferred, index_pending, pending
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.records import ArchiveRecord
from gateway.store.retention import tombstone
from gateway.store.schema import archive
from gateway.store.search import ArchiveSearch, WordIndexBehind
from gateway.store.writer import ArchiveWriter

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_MATCHING = "SELECT {} FROM archive_fts WHERE archive_fts MATCH"


def _record(n: int, words: str) -> ArchiveRecord:
    return ArchiveRecord(
        queue_id=f"F{n:05d}",
        received_at=NOW,
        raw=f"Subject: note {n}\r\n\r\n{words}\r\n".encode(),
        verdict="deliver",
        subject=f"note {n}",
        body_text=words,
    )


def _store(engine: Engine, *words: str, first: int = 1) -> list[int]:
    stored = Archive(engine).store_many([(_record(first + n, w), []) for n, w in enumerate(words)])
    return [s.archive_id for s in stored]


def _found(engine: Engine, query: str) -> list[int]:
    return sorted(hit.id for hit in ArchiveSearch(engine).run(parse(query)).hits)


def _waiting(engine: Engine) -> int:
    with engine.connect() as conn:
        return pending(conn)


def _sound(engine: Engine) -> None:
    """FTS5's own check, the index against the archive's text (rank 1): raises if corrupt."""
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO archive_fts(archive_fts, rank) VALUES ('integrity-check', 1)")
        )


@pytest.fixture
def sqlite(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_a_search_finds_what_was_archived_before_it_whether_indexed_yet_or_not(engine: Engine):
    ids = _store(engine, "the minibus leaves at nine", "bring a packed lunch")
    if deferred(engine):
        assert _waiting(engine) == 2  # the relay's commit did not index them
    assert _found(engine, "minibus") == ids[:1]
    assert _found(engine, '"packed lunch"') == ids[1:]
    if deferred(engine):
        assert _waiting(engine) == 0
        _sound(engine)


def test_indexing_goes_in_batches_and_stops_where_asked(sqlite: Engine):
    ids = _store(sqlite, *(f"word{n} shared" for n in range(7)))
    assert index_pending(sqlite, most=3, size=2) == 3
    assert _waiting(sqlite) == 4
    assert index_pending(sqlite, size=2) == 4
    assert index_pending(sqlite) == 0
    _sound(sqlite)
    with sqlite.connect() as conn:
        indexed = conn.execute(text(f"{_MATCHING.format('count(*)')} 'shared'")).scalar()
        assert indexed == len(ids)  # each row once


def test_retention_blanking_a_record_not_yet_indexed_leaves_the_index_sound(sqlite: Engine):
    """Retention empties a record's text; FTS5's delete of words it never indexed would
    corrupt the index, so the update trigger leaves rows not yet indexed to the indexer."""
    old, kept = _store(sqlite, "a secret about the trip", "the trip is on friday")
    assert tombstone(sqlite, [old], at=NOW, actor="test", rule="1 year") == [old]
    assert _found(sqlite, "trip") == [kept]
    assert _found(sqlite, "secret") == []
    _sound(sqlite)


def test_retention_blanking_an_indexed_record_takes_its_words_out(sqlite: Engine):
    old, kept = _store(sqlite, "a secret about the trip", "the trip is on friday")
    index_pending(sqlite)
    assert _found(sqlite, "secret") == [old]
    tombstone(sqlite, [old], at=NOW, actor="test", rule="1 year")
    assert _found(sqlite, "trip") == [kept]
    assert _found(sqlite, "secret") == []
    _sound(sqlite)


def test_two_processes_indexing_at_once_index_each_row_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    first, second = make_engine(url), make_engine(url)
    upgrade(first)
    _store(first, *(f"row{n} common" for n in range(300)))
    done: list[int] = []
    threads = [
        threading.Thread(target=lambda e=e: done.append(index_pending(e, size=7)))
        for e in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(done) == 300
    _sound(first)
    first.dispose()
    second.dispose()


def test_the_archive_writer_indexes_between_batches(sqlite: Engine):
    writer = ArchiveWriter(
        Archive(sqlite), index=partial(index_pending, sqlite), index_interval=0.05
    )
    writer.start()
    try:
        asyncio.run(writer.submit(_record(1, "rounders on the field"), []))
        deadline = time.monotonic() + 5
        while _waiting(sqlite) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _waiting(sqlite) == 0
    finally:
        writer.stop()


def test_an_indexer_that_fails_neither_stops_the_writer_nor_loses_the_rows(sqlite: Engine):
    def broken() -> int:
        raise RuntimeError("disk I/O error")

    writer = ArchiveWriter(Archive(sqlite), index=broken, index_interval=0.01)
    writer.start()
    try:
        with capture_logs() as logs:
            for n in range(3):
                asyncio.run(writer.submit(_record(n, "still archived"), []))
                time.sleep(0.02)
    finally:
        writer.stop()
    assert any(entry["event"] == "fulltext_index_failed" for entry in logs)
    assert len(_found(sqlite, "archived")) == 3  # the search indexed them


def test_0007_keeps_what_the_trigger_indexed_and_indexes_the_rest_on_downgrade(
    sqlite: Engine, monkeypatch: pytest.MonkeyPatch
):
    config = alembic_config(sqlite)
    command.downgrade(config, "0006")
    # Rows as the writer of 0006's time made them: without 0010's content digest.
    from gateway.store import archive as archive_module

    made = archive_module._archive_row
    monkeypatch.setattr(
        archive_module,
        "_archive_row",
        lambda *args, **kwargs: {
            k: v for k, v in made(*args, **kwargs).items() if k != "content_sha256"
        },
    )
    before = _store(sqlite, "indexed by the old trigger", first=1)
    upgrade(sqlite)
    with sqlite.connect() as conn:
        assert conn.execute(select(func.max(archive.c.id))).scalar() == before[-1]
    assert _waiting(sqlite) == 0  # the trigger had indexed it
    after = _store(sqlite, "archived after the upgrade", first=2)
    assert _waiting(sqlite) == 1
    command.downgrade(config, "0006")  # indexes what waits: 0006 assumes every row is
    _sound(sqlite)
    with sqlite.connect() as conn:
        hits = conn.execute(text(f"{_MATCHING.format('rowid')} 'archived'"))
        assert sorted(hits.scalars()) == after
    upgrade(sqlite)
    assert _found(sqlite, "trigger") == before


@pytest.mark.parametrize("order", ["newest first", "oldest first"])
def test_rows_archived_after_the_newest_were_deleted_by_hand_are_still_found(
    sqlite: Engine, order: str
):
    """SQLite gives a deleted top row's id again: the index must not count it as indexed."""
    kept, *top = _store(sqlite, "the minibus leaves at nine", "delete me", "and me")
    index_pending(sqlite)
    with sqlite.begin() as conn:  # tampering, which `archive verify` reports
        for archive_id in sorted(top, reverse=order == "newest first"):
            conn.execute(archive.delete().where(archive.c.id == archive_id))
    again = _store(sqlite, "the trip is on friday", first=10)
    assert again == top[:1]  # the id is given again
    assert _found(sqlite, "friday") == again
    assert _found(sqlite, "minibus") == [kept]
    _sound(sqlite)


def _read_only(monkeypatch) -> None:
    """The index cannot be written, as on a read-only copy of the archive."""

    def refused(engine: Engine, **kwargs: object) -> int:
        raise OperationalError("INSERT INTO archive_fts", {}, Exception("readonly database"))

    monkeypatch.setattr("gateway.store.search.index_pending", refused)


def _cli(tmp_path: Path, engine: Engine) -> Callable[..., Result]:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[database]\nurl = "{engine.url}"\n')
    return lambda *args: CliRunner().invoke(cli, ["--config", str(config), *args])


def test_a_search_says_which_messages_it_could_not_search_for_words(
    sqlite: Engine, tmp_path: Path, monkeypatch
):
    """What could not be searched is said beside the results, and kept in the audit log."""
    indexed = _store(sqlite, "the minibus leaves at nine")
    index_pending(sqlite)
    _store(sqlite, "the minibus is late", "and full", first=2)
    _read_only(monkeypatch)
    page = ArchiveSearch(sqlite).run(parse("minibus"))
    assert [h.id for h in page.hits] == indexed
    assert page.behind is not None and page.behind.count == 2
    result = _cli(tmp_path, sqlite)("search", "minibus")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("safeguard: the word index is 2 messages behind")
    assert "words in those messages were not searched" in result.stderr
    [entry] = AuditLog(sqlite).entries(action="search")
    assert entry.detail["word_index_behind"] == 2
    # By address alone nothing depends on the word index: nothing to say.
    assert _cli(tmp_path, sqlite)("search", "verdict:deliver").stderr == ""


def test_an_export_with_words_is_refused_rather_than_left_incomplete(
    sqlite: Engine, tmp_path: Path, monkeypatch
):
    """An export is evidence: one that silently missed the newest messages would read as whole."""
    _store(sqlite, "the minibus leaves at nine")
    _read_only(monkeypatch)
    with pytest.raises(WordIndexBehind):
        matching_ids(sqlite, parse("minibus"))
    out = tmp_path / "out.mbox"
    result = _cli(tmp_path, sqlite)("export", "minibus", "--format", "mbox", "--output", str(out))
    assert result.exit_code == 2
    assert result.stderr.startswith("safeguard: not exported: the word index is 1 message behind")
    assert not out.exists()
    export = _cli(tmp_path, sqlite)
    by_verdict = export("export", "verdict:deliver", "--format", "mbox", "--output", str(out))
    assert by_verdict.exit_code == 0, by_verdict.output
