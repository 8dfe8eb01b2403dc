"""Retention: "A pack sets retention (e.g. until the youngest minor involved is 25, or N years);
`safeguard archive purge --dry-run` shows what would go; purge keeps the chain verifiable
(tombstones keep hashes) and is audited." Messages go through the relay, on both databases."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from gateway.cli import cli
from gateway.clock import FixedClock
from gateway.export import matching_ids
from gateway.policy.pack import load_pack
from gateway.purge import plan, purge
from gateway.search import parse
from gateway.store.audit import AuditLog
from gateway.store.db import transaction
from gateway.store.directory import DirectoryStore
from gateway.store.integrity import verify
from gateway.store.schema import archive, archive_addresses, archive_findings, queue
from gateway.store.search import ArchiveSearch
from tests.relay.test_relay import send
from tests.support import DATA, Sink

PACK = DATA / "packs" / "retention.toml"
LONDON = load_pack(str(PACK)).organisation.timezone
# Monday 2 March 2015, 10:00 in London: six years on is 2 March 2021.
RECEIVED = datetime(2015, 3, 2, 10, 0, tzinfo=UTC)


def message(subject: str, to: str, cc: str = "") -> bytes:
    return (
        "From: Alex Teacher <alex.teacher@safe.example>\r\n"
        f"To: {to}\r\n" + (f"Cc: {cc}\r\n" if cc else "") + f"Subject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@safe.example>\r\n\r\n"
        f"About the {subject}.\r\n"
    ).encode()


SENT = [
    # (subject, To, Cc): Sam (born 2011-05-14) and Ruby (born 2013-10-10) are demo minors.
    ("venue booking", "bookings@venue.example", ""),
    ("staff rota", "jordan.ellis@safe.example", ""),
    ("sam permission slip", "sam.minor@home.example", "priya.shah@parents.example"),
    ("ruby reading list", "ruby.taylor@home.example", "priya.shah@parents.example"),
]


def _ids(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            row.subject: row.id
            for row in conn.execute(select(archive.c.id, archive.c.subject)).all()
            if row.subject
        }


@pytest.fixture
def archived(start_gateway, sink: Sink):
    gateway = start_gateway(clock=FixedClock(RECEIVED), policy={"pack": str(PACK)})
    for subject, to, cc in SENT:
        send(gateway.port, message(subject, to, cc), rcpts=[a for a in (to, cc) if a])
    sink.handler.wait_for(len(SENT))
    engine = gateway.gateway.engine
    for _ in range(200):  # the delivery worker marks rows delivered just after the sink has them
        with engine.connect() as conn:
            waiting = conn.execute(
                select(func.count()).select_from(queue).where(queue.c.status != "delivered")
            ).scalar_one()
        if not waiting:
            break
        time.sleep(0.05)
    return gateway


def _plan(engine, when: datetime):
    pack = load_pack(str(PACK))
    return plan(engine, pack.retention, DirectoryStore(engine).view(), LONDON, when)


def test_nothing_goes_before_six_years(archived):
    engine = archived.gateway.engine
    found = _plan(engine, datetime(2021, 3, 1, 12, 0, tzinfo=UTC))
    assert found.due == [] and found.held_for_minor == 0 and found.live == 4


def test_six_years_on_adults_go_and_young_people_are_kept_until_25(archived):
    """ "keep each message 6 years, or until the youngest minor involved is 25, whichever is
    later" (rules/README.md)."""
    engine = archived.gateway.engine
    ids = _ids(engine)
    found = _plan(engine, datetime(2021, 3, 2, 12, 0, tzinfo=UTC))
    assert sorted(found.due) == sorted([ids["venue booking"], ids["staff rota"]])
    assert found.held_for_minor == 2
    # Sam is 25 on 14 May 2036; Ruby on 10 October 2038.
    sam = ids["sam permission slip"]
    assert sam not in _plan(engine, datetime(2036, 5, 13, 12, tzinfo=UTC)).due
    assert sam in _plan(engine, datetime(2036, 5, 14, 12, tzinfo=UTC)).due


def test_a_leaver_removed_from_the_directory_still_holds_their_messages(archived):
    """The youngest minor's date of birth is archived with the message, so retention does not
    end early when a young person is taken out of the directory."""
    engine = archived.gateway.engine
    store = DirectoryStore(engine)
    others = [c for c in store.contacts() if c.email != "ruby.taylor@home.example"]
    store.replace("contact", others, datetime(2020, 1, 1, tzinfo=UTC))
    found = _plan(engine, datetime(2037, 1, 1, 12, 0, tzinfo=UTC))
    assert _ids(engine)["ruby reading list"] not in found.due
    assert found.held_for_minor == 1


def test_purge_leaves_tombstones_that_keep_the_chain_verifiable(archived):
    engine = archived.gateway.engine
    ids = _ids(engine)
    when = datetime(2021, 3, 2, 12, 0, tzinfo=UTC)
    done = purge(engine, _plan(engine, when), at=when, actor="dsl@safe.example")
    assert done == 2
    report = verify(engine)
    assert report.ok and report.checked == 4 and report.tombstones == 2
    gone = [ids["venue booking"], ids["staff rota"]]
    with engine.connect() as conn:
        rows = conn.execute(select(archive).where(archive.c.id.in_(gone))).all()
        assert {r.raw_gz for r in rows} == {b""} and {r.subject for r in rows} == {""}
        assert all(r.purged_at is not None and len(r.raw_sha256) == 64 for r in rows)
        for table in (archive_addresses, archive_findings, queue):
            left = select(func.count()).select_from(table).where(table.c.archive_id.in_(gone))
            assert conn.execute(left).scalar_one() == 0
    search = ArchiveSearch(engine)
    assert search.run(parse("venue")).total == 0
    assert search.run(parse("contact:bookings@venue.example")).total == 0
    assert search.run(parse("contact:priya.shah@parents.example")).total == 2
    # Nor do queries that need no index row: a tombstone keeps its verdict and date.
    for query in ("verdict:deliver", "after:2015-01-01", "-venue", "verdict:deliver OR -sam"):
        found = search.run(parse(query))
        assert found.total == 2 and {h.id for h in found.hits}.isdisjoint(gone), query
    (entry,) = AuditLog(engine).entries(action="purge")
    assert entry.actor == "dsl@safe.example" and entry.result_count == 2
    # An export (say, every delivered message) has nothing left of a tombstone to write.
    assert sorted(matching_ids(engine, parse("verdict:deliver"))) == sorted(
        i for s, i in ids.items() if i not in gone
    )
    # Running it again finds nothing more to do.
    assert _plan(engine, when).due == []


def test_a_record_emptied_behind_the_products_back_is_named(archived):
    engine = archived.gateway.engine
    ids = _ids(engine)
    victim = ids["sam permission slip"]
    with transaction(engine) as conn:
        conn.execute(
            update(archive)
            .where(archive.c.id == victim)
            .values(raw_gz=b"", subject="", purged_at=datetime(2016, 1, 1))
        )
    report = verify(engine)
    assert report.problem.archive_id == victim
    assert report.problem.reason == (
        "its content was removed, but no audited retention purge removed it"
    )


def test_a_tombstones_chain_fields_are_still_checked(archived):
    engine = archived.gateway.engine
    when = datetime(2021, 3, 2, 12, 0, tzinfo=UTC)
    tombstone = _ids(engine)["staff rota"]
    purge(engine, _plan(engine, when), at=when, actor="dsl@safe.example")
    with transaction(engine) as conn:
        conn.execute(update(archive).where(archive.c.id == tombstone).values(verdict="bounce"))
    assert verify(engine).problem.reason == "its verdict, time or hash was altered"


def _config(tmp_path, engine) -> str:
    path = tmp_path / "purge.toml"
    url = engine.url.render_as_string(hide_password=False)
    path.write_text(
        '[organisation]\ndomains = ["safe.example"]\ntimezone = "Europe/London"\n'
        f'[database]\nurl = "{url}"\n[policy]\npack = "{PACK}"\n[directory]\ndemo = false\n'
    )
    return str(path)


def test_the_dry_run_says_what_would_go_and_changes_nothing(archived, tmp_path):
    engine = archived.gateway.engine
    config = _config(tmp_path, engine)
    result = CliRunner().invoke(
        cli, ["--config", config, "archive", "purge", "--dry-run", "--on", "2021-03-02"]
    )
    assert result.exit_code == 0, result.output
    assert "keep each message 6 years, or until the youngest young person involved is 25" in (
        result.output
    )
    assert "2 are past retention (received 02 Mar 2015 to 02 Mar 2015)" in result.output
    assert "2 older records are kept because a young person" in result.output
    assert "Dry run: nothing was changed." in result.output
    assert verify(engine).tombstones == 0 and len(_ids(engine)) == 4
    refused = CliRunner().invoke(
        cli, ["--config", config, "archive", "purge", "--on", "2021-03-02"]
    )
    assert refused.exit_code == 2 and "--on only goes with --dry-run" in refused.output


def test_the_purge_command_needs_yes_off_a_terminal_then_purges_and_verifies(archived, tmp_path):
    engine = archived.gateway.engine
    config = _config(tmp_path, engine)
    runner = CliRunner()
    asked = runner.invoke(cli, ["--config", config, "archive", "purge"])
    assert asked.exit_code == 2 and "add --yes" in asked.output
    done = runner.invoke(
        cli, ["--config", config, "archive", "purge", "--yes", "--as", "dsl@safe.example"]
    )
    assert done.exit_code == 0, done.output
    # Today is long after 2021: the two adult messages go; Sam's and Ruby's stay until 25.
    assert "Purged 2 records" in done.output
    verified = runner.invoke(cli, ["--config", config, "archive", "verify"])
    assert verified.exit_code == 0 and "hash chain intact" in verified.output
    (entry,) = AuditLog(engine).entries(action="purge")
    assert entry.actor == "dsl@safe.example"
    not_dsl = runner.invoke(
        cli, ["--config", config, "archive", "purge", "--yes", "--as", "alex.teacher@safe.example"]
    )
    assert not_dsl.exit_code == 2 and "not a safeguarding lead" in not_dsl.output
