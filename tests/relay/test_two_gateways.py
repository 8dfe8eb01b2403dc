"""Two `safeguard serve` processes, one PostgreSQL database, mixed load (issue 7).

README "Guarantees": 'Several gateways may share one PostgreSQL database: the queue hands each
entry to one worker (FOR UPDATE SKIP LOCKED), and the hash chain is extended under a row lock.'
test_shared_queue.py shows it for plain mail in one process; here the two gateways are separate
processes, the pack delivers, flags, rewrites and returns mail, and the operator's tools
(`archive verify`, `search --json`) are run against what both wrote.
"""

from __future__ import annotations

import json
import re
import smtplib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from gateway.store.schema import archive, queue
from tests.relay.serving import ServeProcess, run_cli, write_config
from tests.support import DATA, Sink, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PACK = DATA / "packs" / "search-corpus.toml"
ALEX = "alex.teacher@safe.example"
MORGAN = "morgan.hughes@safe.example"
SAM = "sam.minor@home.example"
PRIYA = "priya.shah@parents.example"  # Sam's guardian
COACH = "coach@sports.example"  # nobody in the directory
ADULTS = ("tom.harris@mail.example", "grace.adeyemi@mail.example", "careers@school.example")

# kind -> (sender, To, Cc, verdict); the search-corpus pack and the demo directory decide.
KINDS = {
    "deliver": (ALEX, (SAM,), (PRIYA,), "deliver"),
    "flag": (ALEX, (SAM,), (PRIYA, COACH), "flag"),  # unapproved_third_party
    "reject": (ALEX, (SAM,), (), "reject"),  # missing_required_cc: returned to Alex
    "rewrite": (MORGAN, ADULTS, ("volunteers@charity.example",), "rewrite"),  # mass mail: Bcc
}
TOTAL = 48


def _kind(n: int) -> str:
    return list(KINDS)[n % len(KINDS)]


def _raw(n: int, via: str) -> bytes:
    sender, to, cc, _ = KINDS[_kind(n)]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = f"twogw {_kind(n)} {n} {via}"
    message["Message-ID"] = f"<twogw-{n}@safe.example>"
    message.set_content(f"Message {n}, sent through gateway {via}.")
    return message.as_bytes(policy=policy.SMTP)


def test_two_gateways_on_one_postgres_share_the_work_and_the_archive(
    tmp_path: Path, postgres_url: str, sink: Sink
):
    """'Two gateways, one PostgreSQL: every message delivered exactly once, `safeguard archive
    verify` passes and `safeguard search` sees all messages from both gateways.'"""
    gateways = {}
    for via in ("a", "b"):  # one after the other: the first migrates and seeds the directory
        port = free_port()
        config = write_config(
            tmp_path / f"gateway-{via}.toml",
            port=port,
            upstream=sink.url,
            database_url=postgres_url,
            policy={"pack": str(PACK)},
            server={"hostname": f"gateway-{via}.safe.example"},
        )
        gateways[via] = ServeProcess(config, port, tmp_path / f"gateway-{via}.log").start()

    def client(n: int) -> str:
        via = "ab"[n % 2]
        sender, to, cc, _ = KINDS[_kind(n)]
        with smtplib.SMTP("127.0.0.1", gateways[via].port, timeout=30) as smtp:
            smtp.ehlo("client.safe.example")
            smtp.sendmail(sender, [*to, *cc], _raw(n, via))
        return via

    try:
        with ThreadPoolExecutor(8) as pool:
            assert Counter(pool.map(client, range(TOTAL))) == {"a": TOTAL // 2, "b": TOTAL // 2}
        rejected = {n for n in range(TOTAL) if _kind(n) == "reject"}
        passed = set(range(TOTAL)) - rejected
        # One copy of each message that passes, one bounce to Alex for each that does not,
        # and one notice to Morgan for each mass mail sent with the addresses hidden.
        changed = {n for n in range(TOTAL) if _kind(n) == "rewrite"}
        sink.handler.wait_for(TOTAL + len(changed), timeout=30)
        time.sleep(1.0)  # a second delivery of anything would arrive now
        got = list(sink.handler.received)
    finally:
        stopped = {via: gateway.terminate() for via, gateway in gateways.items()}
    assert stopped == {"a": 0, "b": 0}, {via: g.tail() for via, g in gateways.items()}

    originals = Counter(r.message_id for r in got if r.message_id.startswith("twogw-"))
    assert originals == {f"twogw-{n}@safe.example": 1 for n in passed}
    notices = [r for r in got if r.rcpt_tos == [MORGAN]]
    told = Counter(
        int(m) for r in notices for m in set(re.findall(rb"twogw rewrite (\d+)", r.data))
    )
    assert told == {n: 1 for n in changed}, "each changed message is told of once"
    bounces = [r for r in got if not r.message_id.startswith("twogw-") and r not in notices]
    assert all(b.rcpt_tos == [ALEX] and b.mail_from in ("", "<>") for b in bounces)
    returned = Counter(
        int(m) for b in bounces for m in set(re.findall(rb"twogw-(\d+)@safe\.example", b.data))
    )
    assert returned == {n: 1 for n in rejected}, "each refused message is returned once"
    for r in got:
        if r.message_id.startswith("twogw-"):
            n = int(r.message_id[6:].split("@")[0])
            _, to, cc, _ = KINDS[_kind(n)]
            assert sorted(r.rcpt_tos) == sorted([*to, *cc])

    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        statuses = Counter(conn.execute(select(queue.c.status)).scalars())
        per_message = Counter(
            dict(
                conn.execute(
                    select(archive.c.message_id, func.count())
                    .where(archive.c.message_id.like("twogw-%"))
                    .group_by(archive.c.message_id)
                ).all()
            )
        )
    engine.dispose()
    assert statuses == {"delivered": len(passed) + len(rejected) + len(changed)}
    assert per_message == {f"twogw-{n}@safe.example": 1 for n in range(TOTAL)}

    # The operator's tools see one archive: the chain both wrote verifies ...
    config = gateways["a"].config
    verify = run_cli(config, "archive", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "hash chain intact" in verify.stdout
    # ... and a search finds every message, whichever gateway took it, with its verdict.
    search = run_cli(config, "search", "subject:twogw", "--json", "--limit", "1000")
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    seen = {}
    for hit in hits:
        _, kind, n, via = hit["subject"].split()
        seen[int(n)] = (kind, via, hit["verdict"])
    assert seen == {n: (_kind(n), "ab"[n % 2], KINDS[_kind(n)][3]) for n in range(TOTAL)}
