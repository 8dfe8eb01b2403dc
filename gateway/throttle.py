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

A login's relay failures are forgiven by `safeguard staff unlock` or a new password, written to
the database (`gateway.store.failures`). A running process finds out when it is about to refuse
(`still_blocked`): only then does it ask the database whether anything was forgiven since its
counts were last taken from there (one indexed look-up), and if so it counts again from the
database. Attempts that are let through, the hot path, never wait for the database, and a
refusal that the database cannot confirm in time stands.
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
        # Per count: the newest forgiving row (an unlock, a new password) in the database when
        # the count was last taken from there; a newer one sends the next refusal to look.
        self._settled: dict[_Key, int] = {}
        # Refusals being confirmed against the database, so that a flood of attempts from a
        # blocked address waits on one look-up, not one each.
        self._confirming: dict[_Key, asyncio.Task[None]] = {}

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

    async def still_blocked(self, address: str, login: str | None = None) -> bool:
        """`blocked`, unless an unlock or new password recorded in the database since this
        process last counted from there has forgiven enough of the failures. Only a refusal
        costs a look-up; if the database does not answer in time, the refusal stands."""
        if not self.blocked(address, login):
            return False
        if self.failures is None or not self.failures.forgivable(self.action):
            return True
        key: _Key = (address, login)
        task = self._confirming.get(key)
        if task is None:
            task = asyncio.create_task(self._confirm(address, login))
            self._confirming[key] = task
            task.add_done_callback(lambda _: self._confirming.pop(key, None))
        # Shielded: one waiter's connection closing must not cancel the others' look-up.
        await asyncio.shield(task)
        return self.blocked(address, login)

    async def _confirm(self, address: str, login: str | None) -> None:
        """Count `address` (and `login`) again from the database if a forgiving row newer
        than the counts' is there."""
        assert self.failures is not None
        keys: list[_Key] = [(address, None)] + ([(address, login)] if login is not None else [])
        try:
            newest = await asyncio.wait_for(
                asyncio.to_thread(self.failures.newest_forgiving, self.action),
                self.record_timeout,
            )
            if all(self._settled.get(key, 0) >= newest for key in keys):
                return
            shared = await asyncio.wait_for(
                asyncio.to_thread(
                    self.failures.recent,
                    self.action,
                    address,
                    login,
                    self.clock.now().astimezone(UTC),
                    timedelta(seconds=self.window),
                ),
                self.record_timeout,
            )
        except Exception as exc:  # the database is down: this process's count still holds
            log.warning("unlock_not_checked", client=address, login=login, error=repr(exc))
            return
        self._learn(shared, address, login)
        if shared.forgiven_address:
            log.info("failures_forgiven", client=address, login=login)

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
        """Take the database's counts where they are higher than this process's own, or
        where an unlock or new password forgave some of them: the database's count is then
        the one that holds (a failure this process could not record is forgotten with them)."""
        found: list[tuple[_Key, list[datetime], int, int]] = [
            ((address, None), shared.address, shared.forgiven_address, self.address_limit)
        ]
        if login is not None:
            found.append(((address, login), shared.actor, shared.forgiven_actor, self.limit))
        for key, times, forgiven, most in found:
            if forgiven or len(times) > len(self._times.get(key, ())):
                if times:
                    self._times[key] = deque(times, maxlen=most)
                else:
                    self._times.pop(key, None)
            self._settled[key] = max(self._settled.get(key, 0), shared.settled)

    def _sweep(self) -> None:
        """Forget counts that left the window: addresses and logins seen once are not kept."""
        self._since_sweep += 1
        if self._since_sweep < SWEEP_EVERY:
            return
        self._since_sweep = 0
        for key in list(self._times):
            self._recent(key)
        for key in list(self._settled):
            if key not in self._times:  # counted afresh, should it fail again
                del self._settled[key]
        since = self._since()
        for address, tried in list(self._tried.items()):
            if not tried or max(tried.values()) < since:
                del self._tried[address]
