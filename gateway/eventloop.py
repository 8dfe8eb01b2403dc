"""The event loop the long-running commands run on (`[server] event_loop`).

uvloop (libuv) by default: the relay's own event loop thread spends much of each message in
asyncio's transports, timers and selector, which uvloop does in C. On c-sqlite of
`bench/throughput.py` it cut the relay processes' CPU per message by 5-20 % in three pairs
(bench/results/throughput.md, "Session 20"). `asyncio` is Python's own loop, for a platform
without uvloop or to rule it out when chasing a fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("gateway.eventloop")

_T = TypeVar("_T")


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for `asyncio.Runner`; None is asyncio's own loop."""
    if kind != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:  # not built for this platform: Python's loop does the same, slower
        log.warning("event_loop_unavailable", wanted="uvloop", using="asyncio")
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, _T], kind: str) -> _T:
    """`asyncio.run(main)`, on the loop `kind` names (one of `config.EVENT_LOOPS`)."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
