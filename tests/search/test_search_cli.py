"""`safeguard search` and `safeguard audit` on an archive filled through the relay: the table,
the JSON, paging, who may search, the audit trail, and one-line errors."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import cli
from gateway.cli.since import parse_since
from gateway.clock import FixedClock
from tests.relay.test_relay import MESSAGE, send
from tests.support import Sink

SUBJECTS = ("Thursday's session", "Room change", "Trip to the museum")


@pytest.fixture
def run(start_gateway, sink: Sink, tmp_path: Path, database_url: str) -> Callable[..., Result]:
    """Three messages through a real gateway, then the CLI against its database."""
    gateway = start_gateway()
    for n, subject in enumerate(SUBJECTS):
        raw = MESSAGE.replace(b"thursday-1@", f"cli-{n}@".encode()).replace(
            b"Subject: Thursday's session", f"Subject: {subject}".encode()
        )
        send(gateway.port, raw)
    sink.handler.wait_for(len(SUBJECTS))
    return _cli(tmp_path, database_url)


def _cli(tmp_path: Path, database_url: str) -> Callable[..., Result]:
    """`safeguard ...` against the gateway's database, the organisation in London."""
    config = tmp_path / "search.toml"
    config.write_text(
        '[organisation]\ndomains = ["safe.example"]\ntimezone = "Europe/London"\n'
        f'[database]\nurl = "{database_url}"\n'
    )

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args])

    return invoke


def test_search_prints_a_table_newest_first(run):
    result = run("search", "room")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "DATE", "(Europe/London)"]
    rows = lines[1:4]
    assert [s for r in rows for s in SUBJECTS if s in r] == list(reversed(SUBJECTS))
    assert all("alex.teacher@safe.example" in r and "sam.minor@home.example +1" in r for r in rows)
    assert all(r.split()[-1] == "deliver" for r in rows)
    assert lines[-1] == "1–3 of 3 (page 1 of 1)."


def test_search_pages(run):
    result = run("search", "--limit", "1", "--page", "2", "room")
    assert result.exit_code == 0, result.output
    assert "Room change" in result.stdout and "Trip" not in result.stdout
    assert result.stdout.splitlines()[-1] == "2–2 of 3 (page 2 of 3). Next: --page 3"
    assert (
        run("search", "--page", "9", "room").stdout
        == "No messages on page 9: 3 messages match (1 page).\n"
    )
    assert run("search", "zebra").stdout == "No messages match.\n"


def test_search_json_is_a_list_of_messages(run):
    result = run("search", "--json", "subject:room", "OR", "subject:trip")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert [h["subject"] for h in hits] == ["Trip to the museum", "Room change"]
    first = hits[0]
    assert set(first) == {
        "id",
        "queue_id",
        "date",
        "from",
        "to",
        "cc",
        "subject",
        "verdict",
        "findings",
    }
    assert first["from"] == "alex.teacher@safe.example"
    assert first["to"] == ["sam.minor@home.example"]
    assert first["cc"] == ["priya.shah@parents.example"]
    assert (first["verdict"], first["findings"]) == ("deliver", [])
    assert datetime.fromisoformat(first["date"]).tzinfo is not None
    assert hits[0]["id"] > hits[1]["id"]


def test_a_bad_query_is_one_line_on_stderr_and_exit_2(run):
    result = run("search", "form:alex.teacher@safe.example")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "safeguard: query: unknown field `form:` — did you mean `from:`? To search for the text "
        'itself, quote it: "form:alex.teacher@safe.example" (at column 1)\n'
    )
    result = run("search", "room", "after:2026-02-30")
    assert result.exit_code == 2
    assert result.stderr.startswith("safeguard: query: after: takes a date as YYYY-MM-DD")
    assert result.stderr.endswith("(at column 12)\n") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_only_a_safeguarding_lead_may_search_as_one(run):
    refused = run("search", "--as", "alex.teacher@safe.example", "room")
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr == (
        "safeguard: alex.teacher@safe.example is not a safeguarding lead in the directory; "
        "searching needs --as a DSL\n"
    )
    unknown = run("search", "--as", "stranger@elsewhere.example", "room")
    assert unknown.exit_code == 2 and "stranger@elsewhere.example is not" in unknown.stderr
    allowed = run("search", "--as", "DSL@safe.example", "--json", "room")
    assert allowed.exit_code == 0, allowed.output
    assert len(json.loads(allowed.stdout)) == 3


def test_every_search_is_audited_and_shown_by_safeguard_audit(run):
    assert run("search", "room").exit_code == 0
    assert run("search", "--as", "dsl@safe.example", "subject:trip").exit_code == 0
    assert run("search", "--as", "alex.teacher@safe.example", "room").exit_code == 2
    assert run("search", "form:x").exit_code == 2  # nothing was searched: nothing to audit

    result = run("audit", "--json")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [(e["actor"], e["action"], e["query"], e["result_count"]) for e in entries] == [
        ("alex.teacher@safe.example", "search_refused", "room", None),
        ("dsl@safe.example", "search", "subject:trip", 1),
        (getpass.getuser(), "search", "room", 3),
    ]
    assert entries[1]["detail"]["as"] == "dsl@safe.example"
    assert entries[2]["detail"]["as"] is None
    moment = datetime.fromisoformat(entries[0]["at"])
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 60

    table = run("audit", "--since", "1h")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    # In the organisation's zone, as `search` shows dates (the JSON above stays UTC).
    assert lines[0].split() == ["WHEN", "(Europe/London)", "WHO", "ACTION", "RESULTS", "QUERY"]
    assert lines[2].split()[2:] == ["dsl@safe.example", "search", "1", "subject:trip"]
    assert len(lines) == 4

    # What one person did, or one kind of action (any case for the person).
    mine = json.loads(run("audit", "--json", "--actor", "DSL@safe.example").stdout)
    assert [(e["actor"], e["query"]) for e in mine] == [("dsl@safe.example", "subject:trip")]
    refused = json.loads(run("audit", "--json", "--action", "search_refused").stdout)
    assert [e["actor"] for e in refused] == ["alex.teacher@safe.example"]


def test_audit_since_takes_a_period(run):
    assert run("audit").stdout == "No audit entries.\n"
    assert run("audit", "--since", "7d").stdout == "No audit entries in the last 7d.\n"
    bad = run("audit", "--since", "yesterday")
    assert bad.exit_code == 2
    assert bad.stderr == (
        "safeguard: --since 'yesterday' is not a period such as 30m, 24h, 7d or 2w\n"
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("24h", 86400), ("7d", 604800), ("2W", 1209600)]
)
def test_since_periods(text: str, seconds: int):
    assert parse_since(text).total_seconds() == seconds


def test_a_count_cut_short_says_more_than(capsys):
    """In a large archive counting stops early; the table must not claim an exact total."""
    from gateway.cli.search import _table
    from gateway.store.search import Page

    _table(Page(hits=(), total=1000, page=30, limit=50, exact=False), None)
    assert capsys.readouterr().out == (
        "No messages on page 30: more than 1,000 messages match (at least 20 pages).\n"
    )


@pytest.mark.parametrize(
    ("total", "page", "limit", "exact", "said"),
    [
        (1, 2, 50, True, "No messages on page 2: 1 message matches (1 page).\n"),
        (3, 9, 50, True, "No messages on page 9: 3 messages match (1 page).\n"),
        (12, 3, 10, True, "No messages on page 3: 12 messages match (2 pages).\n"),
        (
            1000,
            30,
            50,
            False,
            "No messages on page 30: more than 1,000 messages match (at least 20 pages).\n",
        ),
    ],
)
def test_a_page_past_the_end_counts_in_words_that_agree(
    capsys, total: int, page: int, limit: int, exact: bool, said: str
):
    """A review: "1 match (1 pages)"."""
    from gateway.cli.search import _table
    from gateway.store.search import Page

    _table(Page(hits=(), total=total, page=page, limit=limit, exact=exact), UTC)
    assert capsys.readouterr().out == said


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--", "-flag:no_consent", "--as", "dsl@safe.example"], "--as"),
        (["--", "-flag:no_consent", "--as=dsl@safe.example"], "--as"),
        (["--", "room", "--json"], "--json"),
        (["--", "room", "--limit", "5"], "--limit"),
        (["--", "room", "--config", "other.toml"], "--config"),
    ],
)
def test_an_option_after_double_dash_is_refused_not_searched_for(
    tmp_path: Path, args: list[str], option: str
):
    """A review: `search -- QUERY --as X` searched for the words "as" and X, audited as the
    local user rather than the lead. After `--` every word is the query (click's rule, and
    the shell's), so an option there is a mistake to point out, before anything is searched."""
    run = _cli(tmp_path, f"sqlite:///{tmp_path / 'none.db'}")
    result = run("search", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"safeguard: {option} after -- is read as words of the query, not as an option; "
        "put it before the --\n"
    )
    assert not (tmp_path / "none.db").exists()  # refused before the archive was opened


def test_options_before_double_dash_apply_to_a_query_starting_with_minus(run):
    result = run("search", "--as", "dsl@safe.example", "--json", "--", "-subject:trip", "room")
    assert result.exit_code == 0, result.output
    assert sorted(h["subject"] for h in json.loads(result.stdout)) == [
        "Room change",
        "Thursday's session",
    ]
    [entry] = json.loads(run("audit", "--json").stdout)
    assert (entry["actor"], entry["query"]) == ("dsl@safe.example", "-subject:trip room")
    assert "options go before the `--`" in " ".join(run("search", "--help").stdout.split())


def test_dates_in_a_query_are_the_organisations_not_utc(
    start_gateway, sink: Sink, tmp_path: Path, database_url: str
):
    """`after:YYYY-MM-DD` starts at midnight in the organisation's zone: a message sent at
    00:30 on 15 July in London (23:30 UTC on the 14th) is one of the 15th's, in search and in
    an export."""
    gateway = start_gateway(clock=FixedClock(datetime(2026, 7, 14, 23, 30, tzinfo=UTC)))
    send(gateway.port, MESSAGE)
    sink.handler.wait_for(1)
    run = _cli(tmp_path, database_url)
    found = run("search", "--json", "after:2026-07-15", "before:2026-07-16")
    assert found.exit_code == 0, found.output
    assert [hit["subject"] for hit in json.loads(found.stdout)] == ["Thursday's session"]
    assert run("search", "before:2026-07-15").stdout == "No messages match.\n"
    table = run("search", "after:2026-07-15").stdout.splitlines()
    assert "2026-07-15 00:30" in table[1]
    out = tmp_path / "day.mbox"
    exported = run("export", "after:2026-07-15", "--format", "mbox", "-o", str(out))
    assert exported.exit_code == 0, exported.output
    assert "Exported 1 message to" in exported.output


def test_contact_search_by_one_of_a_person_s_addresses_names_the_others(run):
    """A review: `contact:mia.jones@pupils.school.example` found nothing while her mail to her
    home address was there, and the export and the console's person page found it."""
    result = run("search", "contact:mia.jones@pupils.school.example")
    assert result.exit_code == 0, result.output
    assert (
        "note: mia.jones@pupils.school.example is Mia Jones in the directory, who also uses "
        "mia.jones@home.example: add OR contact:mia.jones@home.example" in result.stderr
    )
    school, home = "contact:mia.jones@pupils.school.example", "contact:mia.jones@home.example"
    both = run("search", f"{school} OR {home}")
    assert "note:" not in both.stderr
    excluded = run("search", "room", f"-{school}")  # an exclusion is not to be widened
    assert "note:" not in excluded.stderr
