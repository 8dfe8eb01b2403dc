"""`[server] event_loop`: the relay runs on uvloop by default, and on Python's own loop when
asked; either way a message is archived and delivered before the stop completes."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

import pytest

from gateway.config import ConfigError, settings_from_dict
from tests.relay.serving import ServeProcess, write_config
from tests.support import Sink, free_port


def test_event_loop_defaults_to_uvloop_and_is_checked(tmp_path: Path):
    path = tmp_path / "gateway.toml"
    assert settings_from_dict({}, path).server.event_loop == "uvloop"
    loop = settings_from_dict({"server": {"event_loop": "asyncio"}}, path).server.event_loop
    assert loop == "asyncio"
    with pytest.raises(ConfigError, match=r"\[server\] event_loop: expected 'uvloop' or 'asyncio'"):
        settings_from_dict({"server": {"event_loop": "trio"}}, path)


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
