"""`/metrics` with `[server] processes = 2`: whichever process the kernel hands a scrape to,
it reports the whole gateway's counters, so Prometheus never sees them fall."""

from __future__ import annotations

import json
import re
import smtplib
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.metrics import (
    ARCHIVE_RECORDS,
    ARCHIVE_TRANSACTIONS,
    CPU_SECONDS,
    Metrics,
    SharedCounters,
)
from tests.relay.serving import ServeProcess, write_config
from tests.support import Sink, free_port


def test_a_process_adds_the_counts_the_others_published(tmp_path: Path):
    mine, theirs = Metrics(), Metrics()
    mine.inc("safeguard_smtp_transactions_total", result="accepted", verdict="deliver")
    theirs.inc("safeguard_smtp_transactions_total", 2, result="accepted", verdict="deliver")
    theirs.inc("safeguard_api_requests_total", endpoint='/a"b', status="200")
    SharedCounters(tmp_path, pid=2).publish(theirs.snapshot())
    SharedCounters(tmp_path, pid=1).publish(mine.snapshot())  # its own file is not added
    text = mine.render(others=SharedCounters(tmp_path, pid=1).others())
    assert 'safeguard_smtp_transactions_total{result="accepted",verdict="deliver"} 3' in text
    assert 'safeguard_api_requests_total{endpoint="/a\\"b",status="200"} 1' in text


def test_a_total_another_thread_keeps_is_read_at_each_snapshot_and_published(tmp_path: Path):
    """The archive writer's CPU is its own thread's to count: the metrics read it when asked,
    and another process's published value adds to this one's."""
    mine, theirs = Metrics(), Metrics()
    spent = [0.25]
    part = (("part", "archive_writer"),)
    mine.add_source(lambda: [(CPU_SECONDS, part, spent[0])])
    theirs.add_source(lambda: [(CPU_SECONDS, part, 1.0)])
    mine.inc(CPU_SECONDS, 0.5, part="policy")
    assert mine.snapshot()[CPU_SECONDS] == {part: 0.25, (("part", "policy"),): 0.5}
    spent[0] = 0.75
    SharedCounters(tmp_path, pid=2).publish(theirs.snapshot())
    text = mine.render(others=SharedCounters(tmp_path, pid=1).others())
    assert f'{CPU_SECONDS}{{part="archive_writer"}} 1.75' in text
    assert f'{CPU_SECONDS}{{part="policy"}} 0.5' in text
    assert f"# TYPE {CPU_SECONDS} counter" in text


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def _total(port: int) -> int:
    return sum(
        int(value)
        for value in re.findall(
            r"^safeguard_smtp_transactions_total\{[^}]*\} (\d+)$", _scrape(port), re.M
        )
    )


@pytest.mark.slow
def test_every_scrape_of_two_processes_reports_every_transaction(tmp_path: Path, sink: Sink):
    port, api_port = free_port(), free_port()
    config = write_config(
        tmp_path / "gateway.toml",
        port=port,
        upstream=sink.url,
        database_url=f"sqlite:///{tmp_path / 'archive.db'}",
        server={"processes": 2},
        api={"listen": f"127.0.0.1:{api_port}"},
    )
    gateway = ServeProcess(config, port, tmp_path / "gateway.log").start()
    try:
        sent = 12
        for n in range(sent):  # a new connection each: the kernel spreads them
            message = EmailMessage()
            message["From"] = "alex.teacher@safe.example"
            message["To"] = "volunteer@example.org"
            message["Subject"] = f"Rota {n}"
            message.set_content("The rota is attached.")
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.send_message(message)
        time.sleep(2.5)  # PUBLISH_EVERY, and a little
        assert [_total(api_port) for _ in range(8)] == [sent] * 8
        # Both processes took some of them (else this would prove nothing).
        published = [
            sum(
                row[2]
                for row in json.loads(path.read_text())
                if row[0].startswith("safeguard_smtp")
            )
            for path in (tmp_path / "var" / "metrics").glob("*.json")
        ]
        assert len(published) == 2 and all(published) and sum(published) == sent
        # Where the CPU went, the whole gateway's: the policy stage and the archive writer.
        cpu = dict(re.findall(rf'^{CPU_SECONDS}{{part="(\w+)"}} (\S+)$', _scrape(api_port), re.M))
        assert set(cpu) == {"policy", "archive_writer"} and all(float(v) > 0 for v in cpu.values())
        # Group commit's batches: every message archived, in at most as many transactions.
        text = _scrape(api_port)
        records = re.search(rf"^{ARCHIVE_RECORDS} (\S+)$", text, re.M)
        transactions = re.search(rf'^{ARCHIVE_TRANSACTIONS}{{held="records"}} (\S+)$', text, re.M)
        assert records and transactions, text
        assert float(records[1]) == sent and 1 <= float(transactions[1]) <= sent
    finally:
        assert gateway.terminate() == 0, gateway.tail()
