"""The smaller commands: passwords, the queue, rules, configuration errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from gateway.cli import cli
from gateway.cli.actor import local_user
from gateway.config import load_settings
from gateway.ids import new_queue_id
from gateway.service import open_engine
from gateway.smtp.auth import Authenticator, anyone
from gateway.store.archive import Archive
from gateway.store.audit import AuditLog
from gateway.store.credentials import CredentialStore
from gateway.store.records import ArchiveRecord, QueueItem
from gateway.store.schema import queue


def test_set_password_reads_stdin_and_stores_an_argon2_hash(run, config: Path):
    result = run(
        "staff", "set-password", "Alex.Teacher@safe.example", input="correct horse battery\n"
    )
    assert result.exit_code == 0, result.output
    engine = open_engine(load_settings(config))
    stored = CredentialStore(engine).hash_for("alex.teacher@safe.example")
    assert stored and stored.startswith("$argon2id$")
    assert Authenticator(CredentialStore(engine), allowed=anyone)._verify(
        "alex.teacher@safe.example", "correct horse battery"
    )
    engine.dispose()


def test_remove_password_ends_the_password_and_says_when_there_was_none(run, config: Path):
    """A leaver, or a lost laptop: the password goes (audited), and the relay and console
    refuse the address until a new one is set."""
    assert (
        run(
            "staff", "set-password", "alex.teacher@safe.example", input="correct horse battery\n"
        ).exit_code
        == 0
    )
    removed = run("staff", "remove-password", "Alex.Teacher@safe.example")
    assert removed.exit_code == 0, removed.output
    assert "Password removed for alex.teacher@safe.example." in removed.output
    engine = open_engine(load_settings(config))
    assert CredentialStore(engine).hash_for("alex.teacher@safe.example") is None
    engine.dispose()
    again = run("staff", "remove-password", "alex.teacher@safe.example")
    assert again.exit_code == 2
    assert "alex.teacher@safe.example has no password to remove" in again.output


def test_a_short_password_is_refused(run):
    result = run("staff", "set-password", "alex.teacher@safe.example", input="short\n")
    assert result.exit_code == 2
    assert "at least 10 characters" in result.output


def test_queue_list_shows_held_mail_and_retry_makes_it_due(run, config: Path):
    assert "The queue is empty." in run("queue", "list").output
    engine = open_engine(load_settings(config))
    later = datetime(2030, 1, 1, tzinfo=UTC)
    Archive(engine).store(
        ArchiveRecord(
            queue_id=new_queue_id(),
            received_at=datetime.now(UTC),
            raw=b"Subject: held\r\n\r\nx\r\n",
            verdict="defer",
        ),
        [
            QueueItem(
                kind="deliver",
                mail_from="alex.teacher@safe.example",
                recipients=("sam.minor@home.example",),
                not_before=later,
            )
        ],
    )
    engine.dispose()
    listing = run("queue", "list")
    assert "sam.minor@home.example" in listing.output and "2030-01-01 00:00:00" in listing.output
    entry, reference = listing.output.splitlines()[1].split()[:2]
    # Reviews: an admin nudging the queue released a safeguarding hold without a word, and
    # one that had alerted the lead; in the console only a lead may release.
    refused = run("queue", "retry", entry)
    assert refused.exit_code == 2 and "a safeguarding lead's decision" in refused.output
    assert "held by the safeguarding policy until 2030-01-01 00:00" in refused.output
    staff = config.parent / "staff.csv"
    staff.write_text(
        "email,name,safeguarding_level,training_expires,dbs_checked,dsl\n"
        "dana.lee@safe.example,Dana Lee,3,2030-01-01,yes,yes\n"
        "alex.teacher@safe.example,Alex Teacher,2,2030-01-01,yes,no\n"
    )
    assert run("directory", "import", "staff", str(staff)).exit_code == 0
    not_lead = run("queue", "retry", entry, "--as", "alex.teacher@safe.example")
    assert not_lead.exit_code == 2 and "is not a safeguarding lead" in not_lead.output
    asked = run("queue", "retry", entry, "--as", "dana.lee@safe.example")
    assert asked.exit_code == 2 and "Not at a terminal: add --yes" in asked.output
    # The reference the 250 reply and the notices quote names it too.
    lead = ("--as", "dana.lee@safe.example", "--yes")
    released = run("queue", "retry", reference.lower(), *lead)
    assert released.exit_code == 0, released.output
    # In the organisation's zone (the default pack's here), as `queue list` and `search` show.
    assert (
        "held for office hours until 2030-01-01 00:00 (Europe/London). Released:" in released.output
    )
    assert "2030-01-01" not in run("queue", "list").output
    # Mail held for office hours sent early is a release, on the record as the console's are.
    engine = open_engine(load_settings(config))
    [entry_row] = AuditLog(engine).entries(action="release")
    engine.dispose()
    assert entry_row.detail["via"] == "cli" and entry_row.detail["entry"] == int(entry)
    assert entry_row.actor == "dana.lee@safe.example"
    assert entry_row.detail["run_by"] == local_user()
    again = run("queue", "retry", entry)  # no longer held: an ordinary nudge
    assert again.exit_code == 0 and "will be tried at once" in again.output
    missing = run("queue", "retry", "99999")
    assert missing.exit_code == 2 and "no waiting queue entry 99999" in missing.output
    unknown = run("queue", "retry", "2TLPB88MYNXQBJS8FGZ")
    assert unknown.exit_code == 2
    assert "nothing waits for delivery under the reference '2TLPB88MYNXQBJS8FGZ'" in unknown.output


def test_queue_list_fits_its_columns_and_names_the_zone_of_its_times(tmp_path: Path):
    """A review: `queue list` printed UTC in fixed columns while `search` printed local time.
    Now the organisation's zone, named in the header as search does, and columns as wide as
    their longest value (as `audit`'s), the last error under RECIPIENTS."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[organisation]\ndomains = ["safe.example"]\ntimezone = "America/New_York"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "archive.db"}"\n[directory]\ndemo = false\n'
    )
    engine = open_engine(load_settings(config))
    for n, when in enumerate(
        [datetime(2030, 7, 1, 12, tzinfo=UTC), datetime(2030, 7, 2, tzinfo=UTC)]
    ):
        Archive(engine).store(
            ArchiveRecord(
                queue_id=f"Q{n}",
                received_at=datetime.now(UTC),
                raw=b"Subject: held\r\n\r\nx\r\n",
                verdict="defer",
            ),
            [
                QueueItem(
                    kind="deliver",
                    mail_from="alex.teacher@safe.example",
                    recipients=(f"sam{n}@home.example",),
                    not_before=when,
                )
            ],
        )
    with engine.begin() as conn:  # the second has been tried and deferred many times
        conn.execute(
            update(queue)
            .where(queue.c.id == select(func.max(queue.c.id)).scalar_subquery())
            .values(attempts=12345, last_error="451 4.2.0 mailbox busy")
        )
    engine.dispose()
    result = CliRunner().invoke(cli, ["--config", str(config), "queue", "list"])
    assert result.exit_code == 0, result.output
    header, first, second, error = result.stdout.splitlines()
    assert header.endswith("  NEXT TRY (America/New_York)  RECIPIENTS / LAST ERROR")
    assert "2030-07-01 08:00:00" in first and "2030-07-01 20:00:00" in second  # EDT, not UTC
    # Each column starts where its heading does; the widest value sets the width.
    for heading in ("QUEUE ID", "KIND", "STATUS", "NEXT TRY", "RECIPIENTS"):
        column = header.index(heading)
        assert first[column - 2 : column] == "  " and first[column] != " ", heading
    assert first.index("sam0@home.example") == header.index("RECIPIENTS")
    assert second.index("sam1@home.example") == header.index("RECIPIENTS")
    assert second[: header.index("TRIES") + len("TRIES")].endswith("12345")  # right-aligned
    assert error.index("451 4.2.0 mailbox busy") == header.index("RECIPIENTS")
    assert error.strip() == "451 4.2.0 mailbox busy"


def test_a_config_error_is_one_line_naming_file_line_and_key(tmp_path: Path):
    from click.testing import CliRunner

    bad = tmp_path / "gateway.toml"
    bad.write_text('[server]\nlisten = "127.0.0.1:2525"\nmax_message_size = "ten megabytes"\n')
    result = CliRunner().invoke(cli, ["--config", str(bad), "queue", "list"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"safeguard: {bad}:3: [server] max_message_size: expected int, got 'ten megabytes'"
    )


def test_a_misspelt_key_is_refused_with_the_nearest_known_one(tmp_path: Path):
    """A typo must not silently leave a default in place (here: no auditors at all)."""
    from click.testing import CliRunner

    bad = tmp_path / "gateway.toml"
    bad.write_text('[web]\nlisten = "127.0.0.1:0"\nauditor = ["morgan.hughes@safe.example"]\n')
    result = CliRunner().invoke(cli, ["--config", str(bad), "queue", "list"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"safeguard: {bad}:3: [web] auditor: unknown key (did you mean 'auditors'?)"
    )


def test_a_misspelt_organisation_key_is_refused_against_gateway_toml(tmp_path: Path):
    """[organisation] also sets the pack's defaults; a typo there is still this file's line."""
    from click.testing import CliRunner

    bad = tmp_path / "gateway.toml"
    bad.write_text(
        '[organisation]\ndomains = ["safe.example"]\noffice_hour = "Mon-Fri 08:00-18:00"\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(bad), "queue", "list"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"safeguard: {bad}:3: [organisation] office_hour: "
        "unknown key (did you mean 'office_hours'?)"
    )


def test_rules_lint_names_the_broken_rule(run, tmp_path: Path):
    pack = tmp_path / "broken.toml"
    pack.write_text(
        '[pack]\nname = "broken"\n[organisation]\ndomains = ["x.example"]\n'
        '[[rule]]\nid = "r1"\ncheck = "nope"\naction = "reject"\npolicy = "P."\n'
    )
    result = run("rules", "lint", str(pack))
    assert result.exit_code == 1
    assert f"{pack}:7: rule 'r1': unknown check 'nope'" in result.output


def _serve_with(pack: Path, tmp_path: Path):
    """`safeguard serve` with a gateway.toml naming `pack`."""
    from click.testing import CliRunner

    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[policy]\npack = "{pack}"\n[database]\nurl = "sqlite:///a.db"\n'
        '[server]\nlisten = "127.0.0.1:0"\n'
    )
    return CliRunner().invoke(cli, ["--config", str(config), "serve"])


def test_a_pack_with_several_problems_is_one_line_on_stderr_and_all_listed_on_stdout(
    tmp_path: Path,
):
    pack = tmp_path / "broken.toml"
    pack.write_text(
        '[pack]\nname = "broken"\n[organisation]\ndomains = ["x.example"]\n'
        '[[rule]]\nid = "r1"\ncheck = "nope"\naction = "reject"\npolicy = "P."\n'
        '[[rule]]\nid = "r2"\ncheck = "nope_again"\naction = "reject"\npolicy = "P."\n'
    )
    result = _serve_with(pack, tmp_path)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"safeguard: {pack}:7: rule 'r1': unknown check 'nope' (")
    assert result.stderr.endswith("(and 1 more)\n")
    assert "The problems to fix in the policy pack:" in result.stdout
    assert f"{pack}:12: rule 'r2': unknown check 'nope_again'" in result.stdout


def test_rules_lint_of_a_pack_that_does_not_exist_is_bad_usage(run):
    result = run("rules", "lint", "teens-in-a")
    assert result.exit_code == 2
    assert "no such policy pack (available: " in result.output
    assert "teens-in-ai" in result.output


def test_rules_show_prints_each_rule_with_its_sentence(run):
    result = run("rules", "show", "tests/data/packs/no-rules.toml")
    assert result.exit_code == 0
    assert "Safe Example" in result.output


def test_serve_refuses_to_start_with_a_broken_pack_naming_file_line_and_rule(tmp_path: Path):
    pack = tmp_path / "broken.toml"
    pack.write_text(
        '[pack]\nname = "broken"\n[organisation]\ndomains = ["x.example"]\n'
        '[[rule]]\nid = "r1"\ncheck = "missing_required_cc"\naction = "block"\n'
        'policy = "P."\n[rule.settings]\nany_of = ["guardian"]\n'
    )
    result = _serve_with(pack, tmp_path)
    assert result.exit_code == 2
    assert f"safeguard: {pack}:8: rule 'r1': action 'block' must be one of" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_to_start_with_a_broken_notice_template(tmp_path: Path):
    """A site's own wording with a syntax error stops start-up with file and line, rather than
    turning every bounce it would have rendered into a temporary failure."""
    from click.testing import CliRunner

    wording = tmp_path / "wording" / "notices"
    wording.mkdir(parents=True)
    (wording / "policy_bounce.txt.j2").write_text("Dear {{ sender }\n")
    config = tmp_path / "gateway.toml"
    for processes in (1, 2):  # never binds: it stops before any listener
        config.write_text(
            '[database]\nurl = "sqlite:///a.db"\n[notify]\ntemplates = "wording"\n'
            f'[server]\nlisten = "127.0.0.1:2599"\nprocesses = {processes}\n'
        )
        result = CliRunner().invoke(cli, ["--config", str(config), "serve"])
        assert result.exit_code == 2, result.output
        assert "policy_bounce.txt.j2:1: unexpected '}'" in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("line", "error"),
    [
        # It would switch the console's lockout off without a word.
        ("lockout_minutes = 0", "[web] lockout_minutes: expected 0.01 to"),
        ('url = "safeguarding.safe.example"', "[web] url: expected an http:// or https://"),
    ],
)
def test_a_console_setting_that_cannot_work_is_refused(tmp_path: Path, line: str, error: str):
    from click.testing import CliRunner

    bad = tmp_path / "gateway.toml"
    bad.write_text(f"[web]\n{line}\n")
    result = CliRunner().invoke(cli, ["--config", str(bad), "queue", "list"])
    assert result.exit_code == 2
    assert f"{bad}:2: {error}" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["queue", "list", "--config", "{bad}"],
        ["queue", "--config", "{bad}", "list"],
        ["--config", "{good}", "audit", "--config", "{bad}"],  # the later one wins
    ],
)
def test_every_command_takes_config_after_its_name_too(tmp_path: Path, args: list[str]):
    """interface.md: "Every command takes `--config PATH`" - `safeguard serve --config X`
    as well as `safeguard --config X serve`."""
    from click.testing import CliRunner

    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nmax_message_size = "ten megabytes"\n')
    good = tmp_path / "gateway.toml"
    good.write_text('[database]\nurl = "sqlite:///archive.db"\n[directory]\ndemo = false\n')
    argv = [a.format(bad=bad, good=good) for a in args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2
    assert f"safeguard: {bad}:2: [server] max_message_size" in result.output


def test_config_after_the_command_is_the_file_used(tmp_path: Path):
    from click.testing import CliRunner

    good = tmp_path / "gateway.toml"
    good.write_text('[database]\nurl = "sqlite:///archive.db"\n[directory]\ndemo = false\n')
    # A command that may make the archive (a reading one refuses to: none is there yet).
    result = CliRunner().invoke(cli, ["api", "token", "list", "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "archive.db").exists()


def test_web_with_the_console_switched_off_is_bad_input(tmp_path: Path):
    from click.testing import CliRunner

    config = tmp_path / "gateway.toml"
    config.write_text('[web]\nlisten = ""\n[directory]\ndemo = false\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "web"])
    assert result.exit_code == 2
    assert result.output.strip() == 'safeguard: [web] listen is "": the console is switched off'


def test_the_audited_local_user_names_who_ran_sudo(monkeypatch):
    """Audit rows from the CLI name a person: run through sudo, the one who ran it."""
    monkeypatch.setenv("USER", "root")
    monkeypatch.setenv("LOGNAME", "root")
    monkeypatch.setenv("SUDO_USER", "alice")
    assert local_user() == "alice (as root)"
    monkeypatch.delenv("SUDO_USER")
    assert local_user() == "root"


def test_rules_lint_of_a_misspelt_check_key_suggests_check_and_says_it_once(run, tmp_path: Path):
    """A review: `chek = ...` gave "unknown key 'chek'" with no hint, then "unknown check
    None" as a second problem."""
    pack = tmp_path / "typo.toml"
    pack.write_text(
        '[pack]\nname = "typo"\n[organisation]\ndomains = ["x.example"]\n'
        '[[rule]]\nid = "r1"\nchek = "informal_sign_off"\naction = "flag"\npolicy = "P."\n'
    )
    result = run("rules", "lint", str(pack))
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"{pack}:7: rule 'r1': unknown key 'chek' (did you mean 'check'?)"
    )


def test_check_says_when_a_held_draft_goes_in_the_notices_one_format(tmp_path: Path):
    """A review: the header said "Tuesday 08 December 2026 at 09:00" above findings saying
    "Tuesday 8 December 2026, 09:00". Both are now the notices' `local_time`."""
    from click.testing import CliRunner

    draft = tmp_path / "draft.eml"
    draft.write_bytes(
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Cc: priya.shah@parents.example, jordan.ellis@safe.example\r\nSubject: Room\r\n\r\n"
        b"The session moves to room 4.\r\n\r\nKind regards,\r\nAlex\r\n"
    )
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[organisation]\ndomains = ["safe.example"]\n'
        f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n[policy]\npack = "thread-and-press"\n'
    )
    saturday = "2026-12-05T11:00:00"
    result = CliRunner().invoke(
        cli, ["--config", str(config), "check", str(draft), "--at", saturday]
    )
    assert result.exit_code == 1, result.output
    assert "It would be delivered Monday 7 December 2026, 09:00.\n" in result.output
    assert "when the office opens, Monday 7 December 2026, 09:00." in result.output
    assert " at 09:00" not in result.output and "07 December" not in result.output


@pytest.mark.parametrize("mode", ["enforce", "monitor"])
def test_check_json_says_the_policy_mode(tmp_path: Path, mode: str):
    """README: `[policy] mode = "monitor"` "records what would have happened without blocking
    or holding". `check --json` (and the API, which answers with the same object) says which
    mode judged it; the verdict is the same either way."""
    import json

    draft = tmp_path / "draft.eml"
    draft.write_bytes(
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Subject: Room\r\n\r\nThe session moves to room 4.\r\n"
    )
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[organisation]\ndomains = ["safe.example"]\n'
        f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n'
        f'[policy]\npack = "default"\nmode = "{mode}"\n'
    )
    result = CliRunner().invoke(
        cli, ["--config", str(config), "check", str(draft), "--json", "--at", "2026-11-23T10:15"]
    )
    assert result.exit_code == 1, result.output
    checked = json.loads(result.output)
    assert (checked["verdict"], checked["mode"]) == ("reject", mode)
