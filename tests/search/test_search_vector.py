"""The full-text vector the writer makes on PostgreSQL (`text_vector`, migration 0004): the same
words as the database's own expression on ASCII text, the words a query looks for elsewhere,
and a message too wordy for a tsvector still archived."""

from __future__ import annotations

import importlib.util
import random
import string
from types import ModuleType

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text, update

from gateway.search.query import _TOKEN_RE, parse, text_tokens
from gateway.store.migrate import MIGRATIONS, alembic_config, upgrade
from gateway.store.schema import archive
from gateway.store.search import (
    ArchiveSearch,
    _places,
    _places_limited,
    _within_limits,
    text_vector,
)
from tests.relay.test_relay import MESSAGE, send
from tests.support import Sink


def _ascii_text(rng: random.Random, words: int) -> str:
    pieces = []
    for _ in range(words):
        kind = rng.random()
        if kind < 0.6:
            pieces.append(rng.choice(["the", "Room", "4", "Thursday", "x", "Sam", "it's"]))
        elif kind < 0.8:
            pieces.append("".join(rng.choices(string.ascii_letters + string.digits, k=8)))
        else:
            pieces.append("".join(rng.choices(string.punctuation + " \t\n", k=3)))
    return rng.choice([" ", "", "_"]).join(pieces)


def _cases() -> list[tuple[str, str]]:
    rng = random.Random(7)
    cases = [
        ("", ""),
        ("Thursday's session", "Hi Sam,\n\nThe session moves to room 4 on Thursday.\nAlex x"),
        ("e-mail me: sam@home.example", "see https://safe.example/a_b?c=1 or 07700-900123"),
        ("", "a" * 2047 + " short " + "b" * 2048 + " after"),  # the longest kept, then skipped
        ("repeat", "word " * 300),  # 255 positions per word at most
        ("long", " ".join(f"w{i % 50}" for i in range(17_000))),  # positions stop at 16383
        ("", "1e5 2e03LxYl 07E4E3"),  # PostgreSQL: '2e03' 'lxyl', '07e4' 'e3'
        ("Zoë", "x²y"),
        ("", "नमस्ते"),
    ]
    cases += [(_ascii_text(rng, 6), _ascii_text(rng, rng.randint(0, 400))) for _ in range(300)]
    return cases


def _migration() -> ModuleType:
    path = MIGRATIONS / "versions" / "0004_search_vector_from_writer.py"
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres
def test_the_writer_indexes_what_the_database_did_unless_0004_indexes_the_row_again(
    postgres_url: str,
):
    """Rows archived before 0004 keep the database's vectors unless the migration indexes them
    again: any other row whose vectors differ would be found by different words than new mail."""
    migration = _migration()
    reindexed = migration.REINDEXED.replace("subject", ":subject").replace("body_text", ":body")
    # 0002's generated expression, which text_vector replaces (kept in 0004 for its trigger).
    database = migration._PG_TSV.format(
        subject="CAST(:subject AS text)", body="CAST(:body AS text)"
    )
    engine = create_engine(postgres_url)
    differ = 0
    try:
        with engine.connect() as conn:
            for subject, body in _cases():
                ours, theirs, again = conn.execute(
                    text(f"SELECT CAST(:ours AS tsvector)::text, ({database})::text, {reindexed}"),
                    {"ours": text_vector(subject, body), "subject": subject, "body": body},
                ).one()
                assert ours == theirs or again, (subject, body[:200])
                differ += ours != theirs
    finally:
        engine.dispose()
    assert differ >= 3  # the cases below that PostgreSQL's parser cuts: the test sees them


def test_ascii_text_is_cut_by_the_table_as_the_pattern_cuts_it():
    rng = random.Random(11)
    samples = [_ascii_text(rng, 50) for _ in range(500)] + ["a_b", "don't -- e-mail", "\x01x\x7f"]
    for sample in samples:
        assert text_tokens(sample) == tuple(t.lower() for t in _TOKEN_RE.findall(sample))


def test_the_quick_way_for_ordinary_messages_gives_the_careful_ways_vector():
    rng = random.Random(5)
    texts = [_ascii_text(rng, rng.randint(0, 600)) for _ in range(300)]
    texts += ["Zoë’s trip " * 40, "word " * 400, "नमस्ते " * 3]
    checked = 0
    for n, body in enumerate(texts):
        subject = texts[n - 1][:80]
        parts = (text_tokens(subject), text_tokens(body))
        if _within_limits(subject, body, *parts):
            assert _places(*parts) == _places_limited(*parts)
            checked += 1
    assert checked >= 290


def test_a_vector_has_room_for_a_megabyte_of_words_and_places_and_no_more():
    words = [f"{i:08x}" for i in range(200_000)]  # 1.6 MB of distinct words
    vector = text_vector("", " ".join(words))
    entries = [entry.split("'") for entry in vector.split(" ")]
    kept = [word for _, word, _ in entries]
    # As PostgreSQL stores each word: its bytes, one to align, a count, 2 bytes per position.
    stored = sum(len(word) + 3 + 2 * len(places.split(",")) for _, word, places in entries)
    assert 990_000 < stored <= 1_000_001
    assert kept == words[: len(kept)]


def _mail(subject: str, body: str, n: int) -> bytes:
    head, _, _ = MESSAGE.partition(b"\r\n\r\n")
    head = head.replace(b"Subject: Thursday's session", f"Subject: {subject}".encode())
    head = head.replace(b"thursday-1@", f"vector-{n}@".encode())
    head += b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
    head += b"\r\nContent-Transfer-Encoding: 8bit"
    return head + b"\r\n\r\n" + body.encode() + b"\r\n"


def _ids(engine: Engine, query: str) -> list[int]:
    return [hit.id for hit in ArchiveSearch(engine).run(parse(query)).hits]


def test_words_outside_ascii_are_found_as_they_are_searched(start_gateway, sink: Sink):
    """PostgreSQL's locale kept 'नमस्ते' whole, where a query (and SQLite's FTS5) cut it at
    its vowel signs: that search found nothing there (the 0004 test below shows it)."""
    gateway = start_gateway()
    send(gateway.port, _mail("Namaste", "नमस्ते Sam, x²y for Zoë on Hauptstraße", 1))
    sink.handler.wait_for(1)
    engine = gateway.gateway.engine
    for query in ("नमस्ते", '"x²y"', "zoë", "subject:namaste", "hauptstraße"):
        assert len(_ids(engine, query)) == 1, query
    assert _ids(engine, "subject:zoë") == []
    # A word longer than an index keeps is in no message; beside OR, the other word still counts
    # (PostgreSQL would refuse it as tsquery input: "word is too long in tsquery").
    long = "x" * 2100
    assert _ids(engine, long) == [] and _ids(engine, f"zoë {long}") == []
    assert len(_ids(engine, f"zoë OR {long}")) == 1


def test_a_message_with_more_words_than_a_tsvector_holds_is_archived(start_gateway, sink: Sink):
    """Before 0004 PostgreSQL refused the INSERT ('string is too long for tsvector'): the
    message was never accepted, on every retry."""
    gateway = start_gateway()
    body = "\r\n".join(
        " ".join(f"{i:08x}" for i in range(line * 10, line * 10 + 10)) for line in range(15_000)
    )
    send(gateway.port, _mail("A long list", body, 2))
    sink.handler.wait_for(1)
    engine = gateway.gateway.engine
    assert len(_ids(engine, "00000000 subject:list")) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_0004_indexes_old_mail_and_any_row_the_writer_did_not(start_gateway, sink: Sink):
    """Mail archived before 0004 is found by the words a query cuts; a row inserted without a
    vector (an older gateway beside a new one) and a record whose text retention blanked are
    indexed by the database's trigger."""
    gateway = start_gateway()
    engine = gateway.gateway.engine
    send(gateway.port, _mail("Before", "नमस्ते Sam, room 4", 3))
    sink.handler.wait_for(1)
    command.downgrade(alembic_config(engine), "0003")  # the database's vectors again
    assert _ids(engine, "नमस्ते") == []  # what 0004 mends
    upgrade(engine)
    [old] = _ids(engine, "नमस्ते")
    assert _ids(engine, "room 4 subject:before") == [old]

    copied = [c.name for c in archive.columns if c.name not in ("id", "queue_id", "dedupe_key")]
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO archive (queue_id, {', '.join(copied)}) "
                f"SELECT 'by-hand', {', '.join(copied)} FROM archive WHERE id = :id"
            ),
            {"id": old},
        )
        conn.execute(text("UPDATE archive SET search_tsv = NULL WHERE id = :id"), {"id": old})
        conn.execute(update(archive).where(archive.c.id == old).values(subject="Moved"))
    [by_hand] = _ids(engine, "subject:before")
    assert by_hand != old
    assert _ids(engine, "subject:moved room") == [old]
    with engine.begin() as conn:
        conn.execute(update(archive).where(archive.c.id == old).values(subject="", body_text=""))
        vector = conn.execute(
            text("SELECT search_tsv::text FROM archive WHERE id = :id"), {"id": old}
        ).scalar()
    assert vector == ""
