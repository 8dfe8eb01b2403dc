"""Values the store is given and gives back; it stores them and never evaluates policy."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any


def utc_naive(moment: datetime) -> datetime:
    """The storage convention: naive UTC (see schema.py)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def as_aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class ArchiveRecord:
    """One message as it will be archived: raw bytes plus what search and review need."""

    queue_id: str
    received_at: datetime
    raw: bytes
    verdict: str
    channel: str = "email"
    client_address: str = ""
    helo: str = ""
    auth_user: str | None = None
    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()
    from_addr: str = ""
    to_addrs: tuple[str, ...] = ()
    cc_addrs: tuple[str, ...] = ()
    bcc_addrs: tuple[str, ...] = ()
    subject: str = ""
    message_id: str | None = None
    body_text: str = ""
    mode: str = "enforce"
    findings: tuple[dict[str, Any], ...] = ()
    evaluation: dict[str, Any] = field(default_factory=dict)
    dedupe: bool = True  # a client's resend after a lost 250 is recognised, not archived twice
    dedupe_on: str | None = None  # what identifies a resend, when not Message-ID + bytes (chat)
    youngest_minor_born: date | None = None  # retention: "until the youngest minor is 25"

    @property
    def raw_sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def dedupe_key(self) -> str | None:
        if not self.dedupe:
            return None
        if self.dedupe_on is not None:
            return hashlib.sha256(self.dedupe_on.encode()).hexdigest()
        if not self.message_id:
            return None
        return hashlib.sha256(f"{self.message_id}\0{self.raw_sha256}".encode()).hexdigest()


@dataclass(frozen=True)
class QueueItem:
    """A message to send: the archived body (or `content`) behind `prefix`, to `recipients`."""

    kind: str  # deliver | bounce | notice | alert
    mail_from: str
    recipients: tuple[str, ...]
    prefix: bytes = b""
    content: bytes | None = None
    not_before: datetime | None = None


@dataclass(frozen=True)
class QueueEntry:
    """A queue entry leased to one delivery worker, with the body it is to send."""

    id: int
    archive_id: int
    queue_id: str
    kind: str
    mail_from: str
    recipients: tuple[str, ...]
    attempts: int
    created_at: datetime
    expires_at: datetime
    body: bytes  # prefix + content (or the archived raw message)
    lease_until: datetime | None = None  # naive UTC: after it, another worker may take it


@dataclass(frozen=True)
class Lease:
    """Queue entries written already leased to a delivery worker of this process, which is
    handed them in memory: no claim transaction (nor reading the body back) between the commit
    and the send. If the process dies first, the lease runs out and any worker retries them."""

    owner: str
    until: datetime


@dataclass(frozen=True)
class Stored:
    archive_id: int
    queue_id: str
    duplicate: bool  # the same message was archived before; nothing new was queued
    leased: tuple[QueueEntry, ...] = ()  # its queue entries written leased (see Lease)
    unleased: bool = False  # some of its entries wait in the queue for a worker to claim them


def chain_hash(
    prev_hash: str,
    raw_sha256: str,
    verdict: str,
    received_at: datetime,
    queue_id: str,
    content_sha256: str | None = None,
) -> str:
    """A link of the archive's hash chain: altering any of these fields breaks every later link.
    `content_sha256` (records archived since migration 0010): what the gateway recorded about
    the message besides its bytes (`content_digest`); records before it have none."""
    text = f"{prev_hash}|{raw_sha256}|{verdict}|{utc_naive(received_at).isoformat()}|{queue_id}"
    if content_sha256 is not None:
        text += f"|{content_sha256}"
    return hashlib.sha256(text.encode()).hexdigest()


# The archive row's columns that say what the gateway made of a message (its findings above
# all, which a cover-up would remove), besides the bytes `raw_sha256` covers: chained through
# `content_sha256`. A purge empties them and keeps the digest, as it keeps raw_sha256.
CHAINED_COLUMNS = (
    "channel",
    "client_address",
    "helo",
    "auth_user",
    "envelope_from",
    "envelope_to",
    "from_addr",
    "to_addrs",
    "cc_addrs",
    "bcc_addrs",
    "subject",
    "message_id",
    "mode",
    "findings",
    "evaluation",
    "youngest_minor_born",
)


def content_digest(values: Mapping[str, Any]) -> str:
    """SHA-256 of `CHAINED_COLUMNS` of an archive row, as JSON with sorted keys: the same for
    the row as written and as read back (JSON columns come back as lists and dicts)."""
    chosen = {name: values[name] for name in CHAINED_COLUMNS}
    text = json.dumps(
        chosen, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()
