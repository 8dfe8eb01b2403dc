"""A Maildir upstream the gateway cannot write to: refused at start with the key that names
it; one that goes away while the gateway runs defers mail (451, retried, logged), and neither
stops delivery for good nor a clean stop."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from sqlalchemy import select

from gateway.service import Gateway
from gateway.store.db import make_engine
from gateway.store.schema import queue
from tests.relay.test_relay import MESSAGE, send
from tests.support import RunningGateway, make_settings, serve_refused


def test_serve_refuses_a_maildir_it_cannot_make_naming_the_key(tmp_path: Path):
    taken = tmp_path / "not-a-folder"
    taken.write_text("a file where the Maildir would go\n")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "a.db"}"\n'
        f'[upstream]\nurl = "maildir://{taken}"\n'
    )
    said = serve_refused(config)
    assert said.startswith(f"safeguard: [upstream] url maildir://{taken}: cannot make")
    assert "Not a directory" in said


def _status(gateway) -> tuple[str, int, str | None]:
    with gateway.gateway.engine.connect() as conn:
        return conn.execute(select(queue.c.status, queue.c.attempts, queue.c.last_error)).one()


def test_a_maildir_gone_while_running_defers_mail_until_it_is_back(start_gateway, tmp_path):
    maildir = tmp_path / "maildir"
    gateway = start_gateway(upstream=f"maildir://{maildir}")
    shutil.rmtree(maildir, ignore_errors=True)
    maildir.write_text("the disk was swapped for a file\n")  # nothing can be made there
    send(gateway.port)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _status(gateway)[1] == 0:
        time.sleep(0.05)
    status, attempts, error = _status(gateway)
    assert attempts >= 1 and status in ("queued", "sending")
    assert error is not None and "maildir write failed" in error

    maildir.unlink()  # back: the next retry delivers it
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _status(gateway)[0] != "delivered":
        time.sleep(0.05)
    assert _status(gateway)[0] == "delivered"
    assert len(list((maildir / "new").iterdir())) == 1


def test_senders_that_cannot_make_a_transport_neither_stall_nor_hang_the_stop(
    tmp_path, database_url, sink
):
    """Forty messages, more than the senders' hand-off holds, while no transport can be made:
    each is acknowledged and stays queued (its lease runs out, and it is sent again), and the
    gateway still stops at once."""
    settings = make_settings(tmp_path, database_url, upstream=sink.url)
    gateway = RunningGateway(Gateway(settings))

    def broken():
        raise OSError(28, "No space left on device")

    gateway.gateway.worker.transport_factory = broken
    with gateway:
        for n in range(40):
            message = MESSAGE.replace(b"thursday-1@", f"thursday-{n}@".encode())
            send(gateway.port, message)
        time.sleep(0.5)
        began = time.monotonic()
    assert time.monotonic() - began < 15
    engine = make_engine(database_url)
    with engine.connect() as conn:
        statuses = conn.execute(select(queue.c.status)).scalars().all()
    engine.dispose()
    assert len(statuses) == 40 and "delivered" not in statuses
