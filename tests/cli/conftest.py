from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import cli


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[organisation]\ndomains = ["safe.example"]\n'
        '[database]\nurl = "sqlite:///archive.db"\n'
        "[directory]\ndemo = false\n"
    )
    return path


@pytest.fixture
def run(config: Path) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)

    return invoke
