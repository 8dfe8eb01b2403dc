"""aiosmtpd reflects over the protocol object and the handler for every connection; ours lists
only the names that reflection looks for, and the tables it builds come out the same."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from gateway.smtp.handler import GatewaySMTP, RelayHandler


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _tables(protocol: SMTP) -> tuple[Any, ...]:
    return (
        {
            name: (impl.method.__func__, impl.is_builtin)
            for name, impl in protocol._auth_methods.items()
        },
        {name: hook.__func__ for name, hook in protocol._handle_hooks.items()},
        {name: method.__func__ for name, method in protocol._smtp_methods.items()},
    )


def test_the_command_hook_and_auth_tables_are_aiosmtpds_own(loop: asyncio.AbstractEventLoop):
    handler = RelayHandler.__new__(RelayHandler)  # the tables depend on its class alone
    ours = GatewaySMTP(handler, loop=loop, auth_require_tls=False)
    # What aiosmtpd builds for the same class when dir() lists everything.
    reference = GatewaySMTP.__new__(GatewaySMTP)
    with pytest.MonkeyPatch.context() as patch:
        patch.delattr(GatewaySMTP, "__dir__")
        patch.delattr(RelayHandler, "__dir__")
        SMTP.__init__(reference, handler, loop=loop, auth_require_tls=False)
    assert _tables(ours) == _tables(reference)
    assert set(ours._auth_methods) == {"LOGIN", "PLAIN"}
    assert {"DATA", "MAIL", "RCPT", "exception"} <= set(ours._handle_hooks)
    assert {"EHLO", "MAIL", "RCPT", "DATA", "QUIT", "STARTTLS", "AUTH"} <= set(ours._smtp_methods)
