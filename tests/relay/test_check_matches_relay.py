"""`safeguard check` and the relay share one evaluation path: the same draft gets the same
verdict and findings from both."""

from __future__ import annotations

import json
import smtplib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gateway.cli import cli
from gateway.clock import FixedClock
from gateway.store.schema import archive
from tests.support import Sink

AT = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/London"))
ORG = {"domains": ["safe.example"], "dsl": ["dsl@safe.example"]}

SCENARIOS = {
    "compliant": (
        "sam.minor@home.example",
        "priya.shah@parents.example, jordan.ellis@safe.example",
        "The session moves to room 4.\n\nKind regards,\nAlex",
    ),
    "no parent": (
        "sam.minor@home.example",
        "jordan.ellis@safe.example",
        "The session moves to room 4.\n\nKind regards,\nAlex",
    ),
    "no staff copy": (
        "sam.minor@home.example",
        "priya.shah@parents.example",
        "The session moves to room 4.\n\nKind regards,\nAlex",
    ),
    "kiss": (
        "sam.minor@home.example",
        "priya.shah@parents.example, jordan.ellis@safe.example",
        "Great work today!\n\nAlex x",
    ),
    "secret": (
        "sam.minor@home.example",
        "priya.shah@parents.example, jordan.ellis@safe.example",
        "This is our little secret, don't tell your parents.\n\nKind regards,\nAlex",
    ),
    "no consent": (
        "ethan.clarke@home.example",
        "lucy.clarke@home.example, jordan.ellis@safe.example",
        "Welcome to the club.\n\nKind regards,\nAlex",
    ),
    "adult": ("grace.adeyemi@mail.example", "", "Thanks for volunteering!\n\nAlex x"),
}


def _raw(name: str) -> tuple[bytes, list[str]]:
    to, cc, body = SCENARIOS[name]
    headers = ["From: alex.teacher@safe.example", f"To: {to}"]
    if cc:
        headers.append(f"Cc: {cc}")
    headers += [f"Subject: {name}", f"Message-ID: <{name.replace(' ', '-')}@safe.example>"]
    raw = "\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n"
    rcpts = [a.strip() for a in f"{to},{cc}".split(",") if a.strip()]
    return raw.encode(), rcpts


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_check_and_relay_agree(name, start_gateway, sink: Sink, tmp_path):
    raw, rcpts = _raw(name)
    draft = tmp_path / "draft.eml"
    draft.write_bytes(raw)
    config = tmp_path / "check.toml"
    config.write_text(
        '[organisation]\ndomains = ["safe.example"]\ndsl = ["dsl@safe.example"]\n'
        f'[database]\nurl = "sqlite:///{tmp_path}/check.db"\n[policy]\npack = "teens-in-ai"\n'
    )
    result = CliRunner().invoke(
        cli, ["--config", str(config), "check", str(draft), "--json", "--at", AT.isoformat()]
    )
    checked = json.loads(result.output)
    assert result.exit_code == (0 if not checked["findings"] else 1)

    gateway = start_gateway(clock=FixedClock(AT), policy={"pack": "teens-in-ai"}, organisation=ORG)
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.safe.example")
        client.sendmail("alex.teacher@safe.example", rcpts, raw)
    with gateway.gateway.engine.connect() as conn:
        row = conn.execute(
            select(archive.c.verdict, archive.c.findings).where(archive.c.subject == name)
        ).one()
    assert row.verdict == checked["verdict"]
    assert sorted((f["code"], f["rule"], f["recipient"]) for f in row.findings) == sorted(
        (f["code"], f["rule"], f["recipient"]) for f in checked["findings"]
    )


def test_risk_language_alerts_the_safeguarding_lead_with_only_the_matched_passage(
    start_gateway, sink: Sink
):
    gateway = start_gateway(clock=FixedClock(AT), policy={"pack": "teens-in-ai"}, organisation=ORG)
    raw, rcpts = _raw("secret")
    raw = raw.replace(b"Kind regards", b"PS the answer to question 3 is 42.\r\n\r\nKind regards")
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.sendmail("alex.teacher@safe.example", rcpts, raw)
    got = sink.handler.wait_for(2)
    alert = next(r for r in got if r.rcpt_tos == ["dsl@safe.example"])
    delivered = next(r for r in got if r is not alert)
    assert sorted(delivered.rcpt_tos) == sorted(rcpts)
    text = alert.data.decode()
    assert "our little secret" in text
    assert "alex.teacher@safe.example" in text and "sam.minor@home.example" in text
    assert "question 3 is 42" not in text  # never the whole body
