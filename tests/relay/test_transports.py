"""Upstream transports other than a smarthost: direct MX delivery."""

from __future__ import annotations

import asyncio

from gateway.config import UpstreamSettings
from gateway.delivery.transports import MxTransport
from tests.support import Sink, free_port


def test_mx_delivery_tries_hosts_in_preference_order_and_groups_by_domain(sink: Sink):
    """DNS cannot be asked here; the resolver is the one part replaced. The first MX is down,
    so the second (the sink) takes the mail; an unknown domain is a permanent failure."""
    dead = free_port()
    asked: list[str] = []

    async def resolver(domain: str) -> list[tuple[str, int]]:
        asked.append(domain)
        if domain == "nowhere.example":
            return []
        return [("127.0.0.1", dead), ("127.0.0.1", sink.port)]

    transport = MxTransport(UpstreamSettings(scheme="mx", timeout=5), resolver)
    body = b"From: a@safe.example\r\nSubject: mx\r\n\r\nhello\r\n"
    outcomes = asyncio.run(
        transport.send(
            "a@safe.example", ["x@home.example", "y@home.example", "z@nowhere.example"], body
        )
    )
    assert sorted(asked) == ["home.example", "nowhere.example"]
    assert outcomes["x@home.example"].delivered and outcomes["y@home.example"].delivered
    assert outcomes["z@nowhere.example"].permanent
    [got] = sink.handler.wait_for(1)
    assert sorted(got.rcpt_tos) == ["x@home.example", "y@home.example"]
