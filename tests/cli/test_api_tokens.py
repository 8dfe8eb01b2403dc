"""`safeguard api token create NAME` / `revoke NAME`: "create prints the token alone on its
last line"; and `safeguard serve` runs the HTTP API on `[api] listen`."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from gateway.cli.actor import local_user
from gateway.config import load_settings
from gateway.service import open_engine
from gateway.store.audit import AuditLog
from gateway.store.tokens import PREFIX, TokenStore, digest
from tests.relay.serving import ServeProcess, run_cli, write_config
from tests.support import free_port


def test_create_prints_the_token_alone_on_its_last_line_and_stores_only_its_hash(run, config: Path):
    result = run("api", "token", "create", "chat-bridge")
    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[-1]
    assert token.startswith(PREFIX) and " " not in token and len(token) > 40
    engine = open_engine(load_settings(config))
    store = TokenStore(engine)
    assert store.name_for(token) == "chat-bridge"
    assert store.name_for(token + "x") is None
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_sha256 FROM api_tokens").scalars().all()
    assert stored == [digest(token)]
    engine.dispose()
    assert "chat-bridge" in run("api", "token", "list").output


def test_a_second_token_for_a_name_and_a_bad_name_are_refused(run):
    assert run("api", "token", "create", "bridge").exit_code == 0
    again = run("api", "token", "create", "bridge")
    assert again.exit_code == 2
    assert "'bridge' already has a token; revoke it first" in again.output
    bad = run("api", "token", "create", "my bridge")
    assert bad.exit_code == 2 and "a token name is 1-64 letters" in bad.output


def test_revoke_removes_the_token_and_names_an_unknown_one(run, config: Path):
    token = run("api", "token", "create", "bridge").output.splitlines()[-1]
    assert run("api", "token", "revoke", "bridge").exit_code == 0
    engine = open_engine(load_settings(config))
    assert TokenStore(engine).name_for(token) is None
    engine.dispose()
    unknown = run("api", "token", "revoke", "bridge")
    assert unknown.exit_code == 2 and "no token named 'bridge'" in unknown.output
    # Each token lets a chat tool put messages into the archive: who made and revoked it is
    # on the record (and a revoke of nothing is not).
    engine = open_engine(load_settings(config))
    log = AuditLog(engine)
    made, revoked = log.entries(action="api_token_created"), log.entries(action="api_token_revoked")
    engine.dispose()
    assert [(e.actor, e.detail["name"]) for e in made] == [(local_user(), "bridge")]
    assert [(e.actor, e.detail["name"]) for e in revoked] == [(local_user(), "bridge")]
    header, *lines = run("audit").output.splitlines()
    assert all(line.index("token bridge") == header.index("QUERY") for line in lines)  # aligned


def test_serve_runs_the_api_and_a_taken_port_stops_it_with_a_clear_error(tmp_path: Path):
    port, api_port = free_port(), free_port()
    config = write_config(
        tmp_path / "gateway.toml",
        port=port,
        upstream=f"maildir://{tmp_path / 'maildir'}",
        database_url=f"sqlite:///{tmp_path / 'archive.db'}",
        api={"listen": f"127.0.0.1:{api_port}"},
    )
    token = run_cli(config, "api", "token", "create", "bridge").stdout.splitlines()[-1]
    gateway = ServeProcess(config, port, tmp_path / "gateway.log").start()
    try:
        # The API starts listening just after the relay's port, which `start` waited for.
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{api_port}/healthz", timeout=10
                ) as r:
                    assert json.load(r) == {"status": "ok"}
                break
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ConnectionRefusedError):
                    raise
                assert time.monotonic() < deadline, gateway.tail()
                time.sleep(0.05)
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/api/v1/check",
            data=json.dumps(
                {
                    "channel": "teams",
                    "conversation": "c-1",
                    "message_id": "1",
                    "sender": "alex.teacher@safe.example",
                    "participants": ["priya.shah@parents.example"],
                    "text": "The trip is on.",
                    "sent_at": "2026-11-23T10:15:00Z",
                }
            ).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            assert json.load(r)["verdict"] == "deliver"
    finally:
        assert gateway.terminate() == 0

    with socket.create_server(("127.0.0.1", api_port)):
        taken = run_cli(config, "serve")
    assert taken.returncode != 0
    assert "cannot start" in taken.stderr and str(api_port) in taken.stderr
    assert f"[api] listen 127.0.0.1:{api_port}" in taken.stderr  # which of the ports
    assert "Traceback" not in taken.stderr
