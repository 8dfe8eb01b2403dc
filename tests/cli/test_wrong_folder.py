"""An admin command run in a folder with no configuration and no archive: the live gateway's
configuration is elsewhere (named only in its systemd unit), so the command must not make a
new, empty database here and report success on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import cli

CONTACTS = (
    "email,name,date_of_birth,category,guardian_emails,school_emails,consent\n"
    "sam.minor@home.example,Sam Taylor,2011-05-04,participant,priya.shah@parents.example,,yes\n"
)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAFEGUARD_CONFIG", raising=False)
    (tmp_path / "contacts.csv").write_text(CONTACTS)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["staff", "set-password", "dsl@safe.example"], "a long enough password\n"),
        (["directory", "import", "contacts", "contacts.csv"], None),
        (["search", "room"], None),
        (["audit"], None),
        (["queue", "list"], None),
        (["api", "token", "list"], None),
        (["digest"], None),
    ],
)
def test_an_admin_command_in_the_wrong_folder_changes_nothing_and_says_where_to_run_it(
    elsewhere: Path, args: list[str], stdin: str | None
):
    """A review: `staff set-password` and `directory import` in an empty folder said
    "Password set" and "12 added", into a fresh ./var/archive.db the gateway never reads."""
    result = CliRunner().invoke(cli, args, input=stdin)
    assert result.exit_code == 2, result.output
    assert "no configuration file" in result.output and "nothing was changed" in result.output
    assert "--config" in result.output and "Traceback" not in result.output
    assert [p.name for p in elsewhere.iterdir()] == ["contacts.csv"]


def test_a_named_configuration_may_make_its_database_for_an_import_before_the_first_serve(
    elsewhere: Path,
):
    (elsewhere / "gateway.toml").write_text("[directory]\ndemo = false\n")
    result = CliRunner().invoke(cli, ["directory", "import", "contacts", "contacts.csv"])
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output
    # Said, as a configuration copied away from its state_dir would make one unremarked.
    assert "a new, empty one was made there" in result.stderr
    again = CliRunner().invoke(cli, ["directory", "import", "contacts", "contacts.csv"])
    assert again.exit_code == 0 and "a new, empty one" not in again.stderr
