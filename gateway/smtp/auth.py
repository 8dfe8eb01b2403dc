"""Staff authentication for the relay: argon2 hashes, verified off the event loop. The limit on
failed attempts per address (aiosmtpd has none across connections) is `gateway.throttle`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.store.credentials import CredentialStore

log = structlog.get_logger("gateway.smtp.auth")

# A fixed hash to verify against when the user is unknown, so timing does not reveal who exists.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a real password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def anyone(login: str) -> bool:
    """Every login with a password may sign in (the console, whose roles decide the rest)."""
    return True


class Authenticator:
    """`allowed(login)`: whether this login may sign in at all, password apart. For the relay,
    a member of staff in the directory now: a leaver removed from it, or an address that was
    never staff (a young person's, say), is refused whatever its password."""

    def __init__(self, store: CredentialStore, allowed: Callable[[str], bool]) -> None:
        self.store = store
        self.allowed = allowed

    def _verify(self, login: str, password: str) -> bool:
        stored = self.store.hash_for(login)
        try:
            right = _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
        if right and not self.allowed(login):
            # Answered as a wrong password is (nothing said of who exists); the log says why.
            log.warning("smtp_auth_not_staff", user=login)
            return False
        return right

    async def verify(self, login: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, login.strip().lower(), password)
