"""Staff authentication for the relay: argon2 hashes, verified off the event loop, and a
per-address limit on failed attempts (aiosmtpd has none across connections)."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.store.credentials import CredentialStore

# A fixed hash to verify against when the user is unknown, so timing does not reveal who exists.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a real password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


class Authenticator:
    def __init__(self, store: CredentialStore) -> None:
        self.store = store

    def _verify(self, login: str, password: str) -> bool:
        stored = self.store.hash_for(login)
        try:
            return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, login: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, login.strip().lower(), password)


class FailureLimiter:
    """At most `limit` failed AUTH attempts per client address in a sliding `window` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        now = time.monotonic()
        times = self._failures.setdefault(address, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return deque()
        return times

    def blocked(self, address: str) -> bool:
        return len(self._recent(address)) >= self.limit

    def failed(self, address: str) -> None:
        self._recent(address)
        self._failures.setdefault(address, deque()).append(time.monotonic())
