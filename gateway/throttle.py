"""A limit on failed attempts per client address: wrong SMTP AUTH passwords, wrong API tokens.

Counted in memory for speed, and, given a `FailureLog`, in the database too, so that the limit
holds for every relay process and gateway on it. A process learns of the others' failures when
it sees one of its own (only failures touch the database): an address that reached the limit
elsewhere gets at most one more try from each other process, not a fresh allowance (for
guesses sent one after another: guesses sent at once are each checked before any is counted).

Attempts still being checked are not counted: many staff behind one school's NAT, or a chat
bridge, may rightly send many at once from one address.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime, timedelta

import structlog

from gateway.clock import Clock
from gateway.store.failures import FailureLog

log = structlog.get_logger("gateway.throttle")

RECORD_TIMEOUT = 5.0  # seconds to wait for the database to record a failure


class FailureLimiter:
    """At most `limit` failed attempts per client address in a sliding `window` seconds."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Clock,
        action: str,
        failures: FailureLog | None = None,
        record_timeout: float = RECORD_TIMEOUT,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.failures = failures
        self.action = action
        self.record_timeout = record_timeout
        self._times: dict[str, deque[datetime]] = {}

    def _recent(self, address: str) -> deque[datetime]:
        since = self.clock.now().astimezone(UTC) - timedelta(seconds=self.window)
        times = self._times.get(address)
        if times is None:
            return deque()
        while times and times[0] < since:
            times.popleft()
        if not times:
            del self._times[address]
        return times

    def blocked(self, address: str) -> bool:
        return len(self._recent(address)) >= self.limit

    async def failed(self, address: str, actor: str) -> None:
        """Count a failure from `address` (`actor`: who it claimed to be, for the audit log)."""
        now = self.clock.now().astimezone(UTC)
        self._recent(address)
        # Only the newest `limit` matter to `blocked`: a flood cannot grow the deque.
        local = self._times.setdefault(address, deque(maxlen=self.limit))
        local.append(now)
        if self.failures is None:
            return
        try:
            # A slow or locked database must not hold the client's reply (nor a thread) long.
            shared = await asyncio.wait_for(
                asyncio.to_thread(
                    self.failures.record,
                    self.action,
                    address,
                    actor,
                    now,
                    timedelta(seconds=self.window),
                ),
                self.record_timeout,
            )
        except Exception as exc:  # the database is down: this process's count still holds
            log.warning("failure_not_recorded", client=address, error=repr(exc))
            return
        if len(shared) > len(local):
            self._times[address] = deque(shared, maxlen=self.limit)
