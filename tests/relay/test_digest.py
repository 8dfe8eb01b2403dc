"""The safeguarding lead's digest: flags by rule and by member of staff, once a day."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner

from gateway.cli import cli
from gateway.notify.schedule import claim_day, queue_digest
from tests.relay.test_relay import send
from tests.support import DATA, Sink

PACK = {"pack": str(DATA / "packs" / "directory-only.toml")}


def _traffic(gateway, sink: Sink) -> None:
    bare = (
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Subject: no parent\r\nMessage-ID: <d1@safe.example>\r\n\r\nHi Sam\r\n"
    )
    send(gateway.port, bare, rcpts=["sam.minor@home.example"])
    crowd = [f"p{i}@parents.example" for i in range(6)]
    mass = (
        f"From: alex.teacher@safe.example\r\nTo: {', '.join(crowd)}\r\nSubject: show\r\n"
        "Message-ID: <d2@safe.example>\r\n\r\nFriday\r\n"
    ).encode()
    send(gateway.port, mass, rcpts=crowd)
    # The bounce, the rewritten mass mail and the notice to its sender that it was changed.
    sink.handler.wait_for(3)


def test_the_digest_counts_by_verdict_rule_and_sender(start_gateway, sink: Sink, tmp_path):
    gateway = start_gateway(policy=PACK)
    _traffic(gateway, sink)
    config = tmp_path / "digest.toml"
    url = gateway.gateway.engine.url.render_as_string(hide_password=False)
    config.write_text(
        f'[database]\nurl = "{url}"\n[policy]\npack = "{PACK["pack"]}"\n'
        '[web]\nurl = "https://safeguarding.safe.example/"\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "digest", "--since", "24h"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2 messages had findings" in out
    assert "Review them: https://safeguarding.safe.example/review" in out  # [web] url
    assert "1  returned to the sender" in out
    assert "1  delivered with outside recipients moved to Bcc" in out
    assert "copy-guardian" in out and "mass-mail-bcc" in out
    assert "2  alex.teacher@safe.example" in out


def test_a_bad_since_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "digest"])
    assert result.exit_code == 2  # no such config file
    config = tmp_path / "g.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "digest", "--since", "yesterday"])
    assert result.exit_code == 2
    assert "--since 'yesterday' is not a period such as 30m, 24h, 7d or 2w" in result.output


def test_the_daily_digest_is_sent_once_even_with_two_gateways(start_gateway, sink: Sink):
    gateway = start_gateway(policy=PACK)
    _traffic(gateway, sink)
    g = gateway.gateway
    now = datetime.now(UTC)
    assert claim_day(g.engine, "2026-11-23", now) is True
    assert claim_day(g.engine, "2026-11-23", now) is False  # the other gateway
    assert claim_day(g.engine, "2026-11-24", now) is True
    queue_id = queue_digest(
        engine=g.engine,
        archive=g.archive,
        env=g.templates,
        org=g.policy.pack.organisation,
        hostname="gw",
        now=now,
    )
    assert queue_id
    g.worker.wake()
    got = sink.handler.wait_for(4)
    [digest] = [m for m in got if m.rcpt_tos == ["dsl@safe.example"]]
    assert b"Safeguarding digest" in digest.data


def test_the_digest_counts_a_flag_against_who_sent_it_not_the_from_line(
    start_gateway, sink: Sink, tmp_path
):
    """A From line is the writer's to fill in; the address the relay let them send from is
    not. A flag is counted against that, and the From line is shown beside it."""
    gateway = start_gateway(policy=PACK)
    forged = (
        b"From: head.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Subject: no parent\r\nMessage-ID: <d3@safe.example>\r\n\r\nHi Sam\r\n"
    )
    send(gateway.port, forged, rcpts=["sam.minor@home.example"])
    sink.handler.wait_for(1)  # the bounce
    config = tmp_path / "digest.toml"
    url = gateway.gateway.engine.url.render_as_string(hide_password=False)
    config.write_text(f'[database]\nurl = "{url}"\n[policy]\npack = "{PACK["pack"]}"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "digest", "--since", "24h"])
    assert result.exit_code == 0, result.output
    assert "1  alex.teacher@safe.example" in result.output
    assert "head.teacher" not in result.output.split("By member of staff")[1].split("\n\n")[0]
