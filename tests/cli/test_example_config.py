"""deploy/gateway.example.toml is what an IT admin copies: it must load, with every key known."""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"


def test_the_example_configuration_loads_with_its_documented_defaults():
    settings = load_settings(str(EXAMPLE))
    assert settings.server.processes == 1
    assert settings.server.max_message_size == 10240000
    assert settings.upstream.display
