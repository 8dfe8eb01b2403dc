"""The first messages after a start are judged against the directory, not an empty one.

Found by test_two_gateways.py: while one pipeline thread loaded the directory for the first
time, DirectorySource handed the other threads its initial empty view, so a message to a
child with no parent copied was delivered instead of returned - on every start of `serve`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from gateway.store.directory import DirectoryStore
from gateway.store.schema import archive
from tests.relay.test_relay import send
from tests.support import Sink

ORG = {"domains": ["safe.example"], "dsl": ["dsl@safe.example"]}


def test_mail_sent_the_moment_the_gateway_starts_meets_the_whole_policy(
    start_gateway, sink: Sink, monkeypatch
):
    """'When sending emails to young people under the age of 18, parents need to be copied at
    all times' - from the first message on: four sessions arrive together as the gateway
    opens, while reading the directory is slow."""
    real_view = DirectoryStore.view

    def slow_view(self):
        time.sleep(0.5)
        return real_view(self)

    monkeypatch.setattr(DirectoryStore, "view", slow_view)
    gateway = start_gateway(policy={"pack": "teens-in-ai"}, organisation=ORG)

    def to_sam_alone(n: int) -> str:
        raw = (
            f"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
            f"Subject: Room change {n}\r\nMessage-ID: <at-start-{n}@safe.example>\r\n\r\n"
            "Hi Sam, we are in room 5 now. Kind regards, Alex\r\n"
        ).encode()
        return send(gateway.port, raw, rcpts=["sam.minor@home.example"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(to_sam_alone, range(4)))
    with gateway.gateway.engine.connect() as conn:
        verdicts = conn.execute(
            select(archive.c.message_id, archive.c.verdict).where(
                archive.c.message_id.like("at-start-%")
            )
        ).all()
    assert sorted(verdicts) == [(f"at-start-{n}@safe.example", "reject") for n in range(4)]
    got = sink.handler.wait_for(4)
    assert all(r.rcpt_tos == ["alex.teacher@safe.example"] for r in got), "Sam got mail"
