"""`--since PERIOD` means the same to every command that looks back: `digest --since 30m` was
refused where `audit --since 30m` took it (a review)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import cli
from tests.cli.conftest import make_archive


def _run(tmp_path: Path, *args: str) -> Result:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[organisation]\ndomains = ["safe.example"]\ntimezone = "Europe/London"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "archive.db"}"\n'
        "[directory]\ndemo = false\n"
    )
    make_archive(config)
    return CliRunner().invoke(cli, ["--config", str(config), *args])


@pytest.mark.parametrize("command", ["audit", "digest"])
@pytest.mark.parametrize("period", ["30m", "24h", "7d", "2W", " 90 m "])
def test_every_command_takes_the_same_periods(tmp_path: Path, command: str, period: str):
    result = _run(tmp_path, command, "--since", period)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["audit", "digest"])
@pytest.mark.parametrize(
    ("period", "said"),
    [
        ("yesterday", "--since 'yesterday' is not a period such as 30m, 24h, 7d or 2w"),
        ("30s", "--since '30s' is not a period such as 30m, 24h, 7d or 2w"),
        ("5300w", "--since '5300w' is more than 100 years"),
    ],
)
def test_every_command_refuses_the_same_periods_in_the_same_words(
    tmp_path: Path, command: str, period: str, said: str
):
    result = _run(tmp_path, command, "--since", period)
    assert result.exit_code == 2
    assert result.stderr == f"safeguard: {said}\n"


def test_the_digest_of_the_last_half_hour_covers_half_an_hour(tmp_path: Path):
    result = _run(tmp_path, "digest", "--since", "30m")
    assert result.exit_code == 0, result.output
    # "Monday 7 December 2026, 14:54 to Monday 7 December 2026, 15:24"
    start, end = (
        int(hours) * 60 + int(minutes)
        for hours, minutes in re.findall(r", (\d\d):(\d\d)", result.stdout.splitlines()[1])
    )
    assert (end - start) % (24 * 60) == 30
