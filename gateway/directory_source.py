"""The directory view the pipeline reads: loaded from the store, reloaded when an import
changes it (checked at most every few seconds, so every message does not ask the database)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import structlog

from gateway.directory.csvfile import (
    DEMO_CONTACTS_CSV,
    DEMO_STAFF_CSV,
    read_contacts_csv,
    read_staff_csv,
)
from gateway.directory.model import DirectoryView
from gateway.store.directory import DirectoryStore

log = structlog.get_logger("gateway.directory")


class DirectorySource:
    def __init__(self, store: DirectoryStore, *, recheck: float = 5.0) -> None:
        self.store = store
        self.recheck = recheck
        self._lock = threading.Lock()
        self._version = ""
        self._view = DirectoryView.empty()
        self._checked = 0.0

    def __call__(self) -> DirectoryView:
        now = time.monotonic()
        if now - self._checked >= self.recheck:
            with self._lock:
                if now - self._checked >= self.recheck:
                    version = self.store.version()
                    if version != self._version:
                        self._view = self.store.view()
                        self._version = version
                        log.info(
                            "directory_loaded",
                            version=version,
                            contacts=len(self._view.contacts),
                            staff=len(self._view.staff),
                        )
                    # Only once loaded: until then other threads wait on the lock rather than
                    # judge a message against the empty view (no minors known: all delivered).
                    self._checked = time.monotonic()
        return self._view


def demo_view(now: datetime) -> DirectoryView:
    return DirectoryView(
        read_contacts_csv(DEMO_CONTACTS_CSV, today=now.date()), read_staff_csv(DEMO_STAFF_CSV)
    )


def seed_demo_if_empty(store: DirectoryStore, now: datetime) -> bool:
    """The embedded default: a small demo directory, so a fresh clone shows the gateway working."""
    if store.version() != "0":
        return False
    store.replace("staff", read_staff_csv(DEMO_STAFF_CSV), now)
    store.replace("contact", read_contacts_csv(DEMO_CONTACTS_CSV, today=now.date()), now)
    log.warning(
        "demo_directory_loaded",
        hint="import your own with `safeguard directory import staff|contacts FILE.csv`",
    )
    return True
