from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import cli
from gateway.config import load_settings
from gateway.service import open_engine


def make_archive(config: Path) -> Path:
    """The archive `config` names, made as `serve` makes it on its first run: the commands that
    read it refuse to make one (a mistyped path would read as an empty archive)."""
    open_engine(load_settings(config)).dispose()
    return config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[organisation]\ndomains = ["safe.example"]\n'
        '[database]\nurl = "sqlite:///archive.db"\n'
        "[directory]\ndemo = false\n"
    )
    return make_archive(path)


@pytest.fixture
def run(config: Path) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)

    return invoke
