"""A limit on failed attempts: wrong SMTP AUTH passwords, wrong API tokens.

Counted per client address and login (per address alone where there is no login, as for API
tokens), so that one member of staff's wrong passwords lock out that login at that address, not
everyone behind a school's NAT; and per address across every login, at a higher limit, so that
trying many logins from one address is stopped too. The same wrong password sent again from the
same address counts once: a phone retrying an out-of-date password is not guessing, and would
otherwise lock its owner out for good (and, counted per address, the whole school).

Counted in memory for speed, and, given a `FailureLog`, in the database too, so that the limit
holds for every relay process and gateway on it. A process learns of the others' failures when
it sees one of its own (only failures touch the database): an address or login that reached the
limit elsewhere gets at most one more try from each other process, not a fresh allowance (for
guesses sent one after another: guesses sent at once are each checked before any is counted).

Attempts still being checked are not counted: many staff behind one school's NAT, or a chat
bridge, may rightly send many at once from one address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections import OrderedDict, deque
from datetime import UTC, datetime, timedelta

import structlog

from gateway.clock import Clock
from gateway.store.failures import FailureLog, Recent

log = structlog.get_logger("gateway.throttle")

RECORD_TIMEOUT = 5.0  # seconds to wait for the database to record a failure
LOGINS_PER_ADDRESS = 10  # a relay address may fail this many times the per-login limit
SWEEP_EVERY = 1_000  # failures between sweeps of counts no longer in the window

_Key = tuple[str, str | None]  # (client address, login); None: the address across all logins


class FailureLimiter:
    """At most `limit` failed attempts per client address and login, and `address_limit`
    (default `limit`) per address across logins, in a sliding `window` seconds."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Clock,
        action: str,
        failures: FailureLog | None = None,
        record_timeout: float = RECORD_TIMEOUT,
        address_limit: int | None = None,
    ) -> None:
        self.limit = limit
        self.address_limit = address_limit or limit
        self.window = window
        self.clock = clock
        self.failures = failures
        self.action = action
        self.record_timeout = record_timeout
        self._times: dict[_Key, deque[datetime]] = {}
        # Per address: keyed digests of the wrong (login, password) pairs counted, and when.
        # The key is this process's own, so a digest is no use outside it.
        self._tried: dict[str, OrderedDict[bytes, datetime]] = {}
        self._secret = os.urandom(32)
        self._since_sweep = 0

    def _since(self) -> datetime:
        return self.clock.now().astimezone(UTC) - timedelta(seconds=self.window)

    def _recent(self, key: _Key) -> deque[datetime]:
        since = self._since()
        times = self._times.get(key)
        if times is None:
            return deque()
        while times and times[0] < since:
            times.popleft()
        if not times:
            del self._times[key]
        return times

    def blocked(self, address: str, login: str | None = None) -> bool:
        """Whether `address` (trying `login`, if known yet) has had its failures."""
        if len(self._recent((address, None))) >= self.address_limit:
            return True
        return login is not None and len(self._recent((address, login))) >= self.limit

    def _repeat(self, address: str, attempt: bytes | None, now: datetime) -> bool:
        """Whether this exact attempt already failed from `address` within the window."""
        if attempt is None:
            return False
        digest = hmac.digest(self._secret, attempt, hashlib.sha256)
        tried = self._tried.setdefault(address, OrderedDict())
        since = self._since()
        while tried and next(iter(tried.values())) < since:
            tried.popitem(last=False)
        seen = digest in tried
        tried[digest] = now
        tried.move_to_end(digest)
        while len(tried) > self.address_limit:  # more than that and the address is blocked
            tried.popitem(last=False)
        return seen

    async def failed(
        self,
        address: str,
        actor: str,
        *,
        login: str | None = None,
        attempt: bytes | None = None,
    ) -> None:
        """Count a failure from `address` (`actor`: who it claimed to be, for the audit log;
        `login`: the login it is counted against; `attempt`: what was tried, login and
        password, so that the same one again is not counted twice)."""
        now = self.clock.now().astimezone(UTC)
        self._sweep()
        if self._repeat(address, attempt, now):
            log.info("failure_repeated", client=address, login=login)
            return
        keys: list[tuple[_Key, int]] = [((address, None), self.address_limit)]
        if login is not None:
            keys.append(((address, login), self.limit))
        for key, most in keys:
            self._recent(key)
            # Only the newest `most` matter to `blocked`: a flood cannot grow the deque.
            self._times.setdefault(key, deque(maxlen=most)).append(now)
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
        self._learn(shared, address, login)

    def _learn(self, shared: Recent, address: str, login: str | None) -> None:
        """Take the database's counts where they are higher than this process's own."""
        found: list[tuple[_Key, list[datetime], int]] = [
            ((address, None), shared.address, self.address_limit)
        ]
        if login is not None:
            found.append(((address, login), shared.actor, self.limit))
        for key, times, most in found:
            if len(times) > len(self._times.get(key, ())):
                self._times[key] = deque(times, maxlen=most)

    def _sweep(self) -> None:
        """Forget counts that left the window: addresses and logins seen once are not kept."""
        self._since_sweep += 1
        if self._since_sweep < SWEEP_EVERY:
            return
        self._since_sweep = 0
        for key in list(self._times):
            self._recent(key)
        since = self._since()
        for address, tried in list(self._tried.items()):
            if not tried or max(tried.values()) < since:
                del self._tried[address]
