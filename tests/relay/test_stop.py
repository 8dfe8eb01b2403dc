"""A clean stop "finishes sessions in flight" (README, issue 7: "SIGTERM: sessions in flight
finish, then exit 0"), but a client between transactions does not hold it: it is told `421`
and closed at once. A transaction under way has `[server] drain_timeout` to finish."""

from __future__ import annotations

import smtplib
import socket
import threading
import time

from tests.relay.test_relay import MESSAGE, RCPTS


def test_an_idle_session_is_told_421_and_does_not_hold_the_stop(start_gateway):
    """A review found a stop waiting the whole drain_timeout (30 s) for a client that had only
    sent EHLO, and the client never told why it was dropped."""
    gateway = start_gateway(server={"drain_timeout": 30})
    client = smtplib.SMTP("127.0.0.1", gateway.port, timeout=10)
    client.ehlo("idle.safe.example")
    started = time.monotonic()
    gateway.call(gateway.gateway.stop(), timeout=60)
    assert time.monotonic() - started < 5
    code, reply = client.getreply()
    assert (code, reply[:5]) == (421, b"4.3.2")
    client.close()


def test_a_message_under_way_at_a_stop_is_finished_and_acknowledged(start_gateway, sink):
    """The client is inside DATA when the stop begins: its message is archived, delivered and
    answered 250 before the session is closed."""
    gateway = start_gateway(server={"drain_timeout": 30})
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        sock.sendall(b"EHLO client.safe.example\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        sock.sendall(b"MAIL FROM:<alex.teacher@safe.example>\r\n")
        assert reader.readline().startswith(b"250")
        for rcpt in RCPTS:
            sock.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
            assert reader.readline().startswith(b"250")
        sock.sendall(b"DATA\r\n")
        assert reader.readline().startswith(b"354")
        head, _, rest = MESSAGE.partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        stopping = threading.Thread(
            target=gateway.call, args=(gateway.gateway.stop(),), kwargs={"timeout": 60}
        )
        stopping.start()
        time.sleep(0.5)  # the stop has begun; the message is still coming
        sock.sendall(rest.replace(b"\r\n.", b"\r\n..") + b".\r\n")  # dot-stuffed
        assert reader.readline().startswith(b"250 2.0.0 Ok: queued as ")
        assert reader.readline().startswith(b"421 4.3.2")  # then closed: nothing more to do
        stopping.join(30)
        assert not stopping.is_alive()
        reader.close()
    [got] = sink.handler.wait_for(1)
    assert got.data.endswith(rest)
