"""A clean stop "finishes sessions in flight", but an idle client cannot hold it for ever:
`[server] drain_timeout` bounds the wait."""

from __future__ import annotations

import smtplib
import time


def test_an_idle_session_holds_a_stop_only_for_drain_timeout(start_gateway):
    gateway = start_gateway(server={"drain_timeout": 0.5})
    client = smtplib.SMTP("127.0.0.1", gateway.port, timeout=10)
    client.ehlo("idle.safe.example")
    started = time.monotonic()
    gateway.call(gateway.gateway.stop(), timeout=20)
    assert time.monotonic() - started < 5
    client.close()
