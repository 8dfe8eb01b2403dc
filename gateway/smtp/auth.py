"""Staff authentication for the relay: argon2 hashes, verified off the event loop. The limit on
failed attempts per address (aiosmtpd has none across connections) is `gateway.throttle`."""

from __future__ import annotations

import asyncio

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
