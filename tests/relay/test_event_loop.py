"""`[server] event_loop`: the relay runs on uvloop by default, and on Python's own loop when
asked; either way a message is archived and delivered before the stop completes."""

from __future__ import annotations

import json
import smtplib
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.config import ConfigError, load_settings, settings_from_dict
from gateway.eventloop import loop_factory
from tests.relay.serving import ServeProcess, write_config
from tests.support import Sink, free_port


def test_event_loop_defaults_to_uvloop_and_is_checked(tmp_path: Path):
    path = tmp_path / "gateway.toml"
    assert settings_from_dict({}, path).server.event_loop == "uvloop"
    loop = settings_from_dict({"server": {"event_loop": "asyncio"}}, path).server.event_loop
    assert loop == "asyncio"
    path.write_text('[server]\nevent_loop = "trio"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert str(refused.value) == (
        f"{path}:2: [server] event_loop: expected 'uvloop' or 'asyncio', got 'trio'"
    )


def test_without_uvloop_pythons_own_loop_is_chosen_with_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where no wheel is built
    with capture_logs() as logs:
        assert loop_factory("uvloop") is None  # asyncio.Runner's default: Python's own loop
    assert [log["event"] for log in logs] == ["event_loop_unavailable"]


@pytest.mark.parametrize("kind", [None, "asyncio"])
def test_serve_relays_on_the_loop_it_is_given(tmp_path: Path, sink: Sink, kind: str | None):
    port = free_port()
    server: dict[str, object] = {} if kind is None else {"event_loop": kind}
    config = write_config(
        tmp_path / "gateway.toml",
        port=port,
        upstream=sink.url,
        database_url=f"sqlite:///{tmp_path / 'archive.db'}",
        server=server,
    )
    gateway = ServeProcess(config, port, tmp_path / "gateway.log").start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                "alex.teacher@safe.example",
                ["colleague@safe.example"],
                b"Subject: rota\r\n\r\nThe rota for Saturday is attached.\r\n",
            )
        assert len(sink.handler.wait_for(1)) == 1
    finally:
        assert gateway.terminate() == 0
    ready = [
        json.loads(line) for line in gateway.log.read_text().splitlines() if '"relay_ready"' in line
    ]
    assert [r["event_loop"] for r in ready] == [kind or "uvloop"]
