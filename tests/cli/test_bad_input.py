"""Bad input gets a clear error: one line on stderr, never a traceback (found by probing every
command with a mistaken or hostile value)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway import export as exporting
from gateway.cli import cli
from gateway.store.archive import Archive
from gateway.store.db import make_engine
from gateway.store.migrate import upgrade
from gateway.store.records import ArchiveRecord
from tests.cli.conftest import make_archive
from tests.support import free_port


def _invoke(config: Path, *args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)


def _one_clear_line(result: Result) -> str:
    """The command failed with exactly one line of its own on stderr, and no traceback."""
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.output
    assert lines[-1].startswith(("safeguard: ", "Error: ")), result.stderr
    return lines[-1]


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(body + "\n[directory]\ndemo = false\n")
    return path


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql+psycopg://x@127.0.0.1:1/none", "the database could not be used"),
        ("notaurl", "[database] url cannot be used"),
        ("mysql://x@localhost/db", "for SQLite or PostgreSQL"),
        ("sqlite://", "an in-memory database keeps nothing"),
        # Read commands: no archive there (they never make one); `serve` says "File exists".
        ("sqlite:///{tmp}/a-file/archive.db", "there is no archive at"),
        ("sqlite:///{tmp}", "the database could not be used"),  # a folder
    ],
)
def test_a_database_that_cannot_be_used_is_one_line(tmp_path: Path, url: str, said: str):
    (tmp_path / "a-file").write_text("not a folder")
    config = _config(tmp_path, f'[database]\nurl = "{url.format(tmp=tmp_path)}"')
    for command in (["search", "hello"], ["audit"], ["queue", "list"]):
        assert said in _one_clear_line(_invoke(config, *command)), command


def test_a_missing_module_of_the_installation_is_not_blamed_on_the_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Any ModuleNotFoundError was worded as a database driver missing from [database] url."""
    from gateway.cli import queue as queue_command

    def missing(*args: object, **kwargs: object) -> None:
        raise ModuleNotFoundError("No module named 'holidays'", name="holidays")

    monkeypatch.setattr(queue_command, "QueueStore", missing)
    config = make_archive(_config(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"'))
    line = _one_clear_line(_invoke(config, "queue", "list"))
    assert "No module named 'holidays'" in line and "installation is incomplete" in line
    assert "[database] url" not in line


def test_a_database_error_with_no_text_is_still_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The catch-all took the driver's first line of text, and had none to take (IndexError)."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from gateway.cli import queue as queue_command

    def silent(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError())

    monkeypatch.setattr(queue_command, "QueueStore", silent)
    config = make_archive(_config(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"'))
    line = _one_clear_line(_invoke(config, "queue", "list"))
    assert "the database could not be used: OperationalError" in line


def test_a_configuration_that_is_a_folder_or_not_text_is_one_line(tmp_path: Path):
    folder = tmp_path / "conf.d"
    folder.mkdir()
    assert "is a folder, not a file" in _one_clear_line(_invoke(folder, "search", "x"))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[server]\n")
    assert "not UTF-8 text (byte 1)" in _one_clear_line(_invoke(binary, "search", "x"))


def test_a_pack_that_is_a_folder_or_not_text_is_refused(tmp_path: Path):
    config = _config(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"')
    folder = tmp_path / "pack"
    folder.mkdir()
    lint = _invoke(config, "rules", "lint", str(folder))
    assert lint.exit_code != 0 and f"{folder}: is a folder, not a file" in lint.output
    binary = tmp_path / "pack.toml"
    binary.write_bytes(b'[pack]\nname = "\xff"\n')
    lint = _invoke(config, "rules", "lint", str(binary))
    assert lint.exit_code != 0 and "not UTF-8 text" in lint.output
    assert "Traceback" not in lint.output


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("[delivery]\nworkers = 99999999999", "[delivery] workers: expected 1 to 1000"),
        ("[delivery]\nlifetime = 1e20", "[delivery] lifetime: expected"),
        ("[server]\ntimeout = nan", "[server] timeout: expected"),
        ("[server]\nmax_message_size = -5", "[server] max_message_size: expected"),
        # These were read unchecked: 1e20 minutes failed in timedelta, as "unexpected error".
        ("[web]\nlockout_minutes = 1e20", "[web] lockout_minutes: expected"),
        ("[web]\nsession_hours = nan", "[web] session_hours: expected"),
        ("[auth]\nfailure_window = 1e20", "[auth] failure_window: expected"),
        ("[auth]\nmax_failures = 0", "[auth] max_failures: expected"),
        ("[upstream]\ntimeout = nan", "[upstream] timeout: expected"),
        ("[server]\nmin_free_disk = -1", "[server] min_free_disk: expected"),
    ],
)
def test_numbers_no_one_means_are_refused_with_their_line(tmp_path: Path, setting: str, said: str):
    config = _config(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n{setting}')
    assert said in _one_clear_line(_invoke(config, "search", "x"))


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., Result]:
    config = make_archive(_config(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"'))
    return lambda *args, input=None: _invoke(config, *args, input=input)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["search", "(" * 40 + "a" + ")" * 40], "nested more than 32 deep"),
        (["search", "--", " ".join(f"-from:a{i}@x.example" for i in range(300))], "more than 256"),
        (["search", "hello", "--page", "9223372036854775807"], "'--page'"),
        (["audit", "--since", "99999999999999999999d"], "more than 100 years"),
        (["audit", "--since", "10000000d"], "more than 100 years"),
        (["audit", "--limit", "9223372036854775808"], "'--limit'"),
        (["digest", "--since", "99999999999999999999d"], "more than 100 years"),
        (["queue", "retry", "99999999999999999999"], "nothing waits for delivery under"),
        (["archive", "purge", "--dry-run", "--on", "0001-01-01"], "give a date from 1970 on"),
        (["serve", "--log-level", "banana"], "'--log-level'"),
        (["export", "hello", "--format", "mbox", "-o", "/nonexistent/dir/o.mbox"], "not a folder"),
    ],
)
def test_out_of_range_arguments_are_one_line(run, args: list[str], said: str):
    assert said in _one_clear_line(run(*args))


def test_a_password_that_is_not_text_is_refused(run):
    result = run("staff", "set-password", "bob@safe.example", input=b"\xff\xfeabcdefghijkl\n")
    assert "the password is not UTF-8 text" in _one_clear_line(result)


def test_a_password_for_someone_the_directory_does_not_know_is_set_with_a_note(run):
    result = run("staff", "set-password", "nobdoy@safe.example", input="a long passphrase\n")
    assert result.exit_code == 0
    assert "Password set for nobdoy@safe.example." in result.stdout
    assert "is not a member of staff in the directory; check the spelling" in result.stderr


def test_a_young_persons_address_is_never_given_a_password(run, tmp_path: Path):
    """A review: `staff set-password sam.minor@home.example` succeeded with only a note."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "email,name,date_of_birth,category,guardian_emails,school_emails,consent\n"
        "sam.minor@home.example,Sam Taylor,2011-05-04,participant,p@parents.example,,yes\n"
    )
    assert run("directory", "import", "contacts", str(contacts)).exit_code == 0
    result = run("staff", "set-password", "Sam.Minor@home.example", input="a long passphrase\n")
    assert result.exit_code == 2
    assert "is in the directory's contacts (young people and others" in result.stderr
    assert "Password set" not in result.stdout


def test_an_unexpected_failure_is_one_line_and_its_details_go_to_a_file(run, monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr("gateway.store.search.ArchiveSearch.search", broken)
    line = _one_clear_line(run("search", "hello"))
    assert line.startswith("safeguard: unexpected error: RuntimeError: something nobody foresaw")
    report = Path(line.rsplit("the details are in ", 1)[1])
    assert "Traceback" in report.read_text() and "something nobody foresaw" in report.read_text()
    report.unlink()


def test_an_export_that_fails_midway_leaves_no_file_behind(tmp_path: Path, monkeypatch):
    """A disk that fills mid-export: nothing is left that could pass for (part of) an export."""
    engine = make_engine(f"sqlite:///{tmp_path}/a.db")
    upgrade(engine)
    record = ArchiveRecord(
        queue_id="Q1", received_at=datetime.now(UTC), raw=b"Subject: a\r\n\r\nb\r\n", verdict="x"
    )
    stored = Archive(engine).store(record, [])

    def full(*args: object) -> bytes:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exporting, "_csv", full)  # the manifest, after the messages
    for fmt in exporting.FORMATS:
        out = tmp_path / f"history.{fmt}"
        with pytest.raises(OSError):
            exporting.export(engine, [stored.archive_id], fmt=fmt, out=out, cover=lambda m: "x")
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("history")] == []
    engine.dispose()


def test_a_site_template_that_is_not_text_is_found_by_lint_not_by_an_export(tmp_path: Path):
    (tmp_path / "wording" / "notices").mkdir(parents=True)
    (tmp_path / "wording" / "notices" / "export_cover.html.j2").write_bytes(b"\xff{{ x }}")
    config = _config(
        tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n[notify]\ntemplates = "wording"'
    )
    lint = _invoke(config, "rules", "lint", "default")
    assert lint.exit_code == 1
    assert "template notices/export_cover.html.j2: not UTF-8 text (byte 1)" in lint.output
    assert "Traceback" not in lint.output


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    path = tmp_path / "draft.eml"
    path.write_bytes(
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Subject: Thursday\r\n\r\nHi Sam,\r\n\r\nSee you Thursday.\r\n"
    )
    return path


def test_check_refuses_a_time_an_address_or_a_size_the_relay_never_would_see(
    tmp_path: Path, draft: Path
):
    database = f'[database]\nurl = "sqlite:///{tmp_path}/a.db"'
    config = _config(tmp_path, f"{database}\n[server]\nmax_message_size = 1000")
    at = _invoke(config, "check", str(draft), "--at", "0001-01-01T00:00")
    assert "give a time from 1970 on" in _one_clear_line(at)  # it said "Sam is -2011"
    rcpt = _invoke(config, "check", str(draft), "--rcpt", "not an address")
    assert "--rcpt 'not an address' is not an e-mail address" in _one_clear_line(rcpt)
    big = tmp_path / "big.eml"
    big.write_bytes(draft.read_bytes() + b"x" * 2000)
    size = _invoke(config, "check", str(big))
    assert "larger than [server] max_message_size (1000 bytes)" in _one_clear_line(size)


def test_check_names_a_broken_site_finding_template(tmp_path: Path, draft: Path):
    """`check` said only "unexpected error" (the relay and `rules lint` named the template)."""
    (tmp_path / "wording" / "findings").mkdir(parents=True)
    broken = "{% macro explanation() %}{{ p.name }{% endmacro %}"
    (tmp_path / "wording" / "findings" / "missing_required_cc.j2").write_text(broken)
    config = _config(
        tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n[notify]\ntemplates = "wording"'
    )
    checked = _invoke(config, "check", str(draft))
    assert checked.exit_code == 2
    assert "findings/missing_required_cc.j2:1: unexpected '}'" in checked.stderr, checked.output
    assert "unexpected error" not in checked.output and "Traceback" not in checked.output


def test_a_long_bad_token_name_is_not_echoed_whole(run):
    line = _one_clear_line(run("api", "token", "create", "x" * 100_000))
    assert "(100000 characters): a token name is 1-64 letters" in line and len(line) < 300


def test_output_cut_short_by_its_reader_ends_quietly(tmp_path: Path):
    """`safeguard rules show default | head -1`: no traceback, no error line. (`true` reads
    nothing and has exited long before Python has started: every write meets a closed pipe.)"""
    config = _config(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"')
    shown = subprocess.run(
        f"set -o pipefail; {sys.executable} -m gateway --config {config} rules show default | true",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stderr == ""
    # The handler's own exit status: proof that a write did meet the closed pipe (a write that
    # all went into the pipe first would have ended 0 without it).
    assert shown.returncode == 1


@pytest.mark.parametrize(
    "command",
    [
        ["archive", "verify"],
        ["export", "--contact", "sam.minor@home.example", "--format", "mbox", "-o", "x.mbox"],
    ],
)
def test_evidence_commands_refuse_an_archive_that_is_not_there(tmp_path: Path, command):
    """A mistyped path must not become a new, empty archive reported as "0 records, hash chain
    intact", or a child's history exported as empty: the command names the path, makes
    nothing, and exits 2."""
    missing = tmp_path / "typo" / "archiv.db"
    config = _config(tmp_path, f'[database]\nurl = "sqlite:///{missing}"')
    said = _one_clear_line(_invoke(config, *command))
    assert f"there is no archive at {missing}; check the path" in said
    assert not missing.parent.exists()


def test_an_audit_action_that_does_not_exist_is_refused_not_reported_as_nothing(tmp_path: Path):
    """`--action reviewed` (the action is `review`) said "No audit entries.": as if nothing had
    happened. It is refused, listing the actions there are."""
    config = _config(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"')
    said = _one_clear_line(_invoke(config, "audit", "--action", "reviewed"))
    assert "--action 'reviewed' is not an action" in said and "review," in said


@pytest.mark.parametrize("processes", [1, 2])
def test_serve_with_a_broken_pack_makes_nothing(tmp_path: Path, processes: int):
    """A gateway that cannot start leaves no folders behind: not the Maildir it would deliver
    to, not the archive (an admin trying a pack should not have to clean up after it)."""
    (tmp_path / "broken.toml").write_text("x = = 1\n")
    config = _config(
        tmp_path,
        f'[server]\nprocesses = {processes}\n[policy]\npack = "broken.toml"\n'
        f'[upstream]\nurl = "maildir://{tmp_path}/out"\n'
        f'[database]\nurl = "sqlite:///{tmp_path}/state/archive.db"',
    )
    said = _one_clear_line(_invoke(config, "serve"))
    assert "broken.toml: not valid TOML" in said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.toml", "gateway.toml"]


def test_a_port_already_taken_is_named_by_its_key(tmp_path: Path):
    """An admin's review: "Error: cannot start: [Errno 98]" did not say which of the gateway's
    ports (SMTP, console, API) was taken."""
    port = free_port()
    config = _config(
        tmp_path,
        f'[server]\nlisten = "127.0.0.1:{port}"\n[web]\nlisten = ""\n[api]\nlisten = ""\n'
        f'[database]\nurl = "sqlite:///{tmp_path}/archive.db"',
    )
    with socket.create_server(("127.0.0.1", port)):
        said = _one_clear_line(_invoke(config, "serve"))
    assert f"cannot start: [server] listen 127.0.0.1:{port}:" in said
    assert "Errno" not in said
