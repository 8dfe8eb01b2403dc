"""The channel-neutral message value that policy checks read.

A `Message` is built once per submission (by `gateway.message.parse`) and never changes. It
holds only values: no reference to the raw MIME tree, the SMTP session or any store.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

# C0 controls and DEL. CR/LF inside an address or name is how header-injection attacks
# start (CVE-2024-6923, CVE-2026-1299), and NUL has no business in either.
_CONTROLS_RE = re.compile(r"[\x00-\x1f\x7f]")


def normalise_email(value: str) -> str:
    """The one spelling under which an address is stored and compared.

    Control characters (CR, LF, NUL, ...) are removed, surrounding space and angle brackets
    stripped, and the whole address lower-cased after NFC (the same rule as
    `gateway.directory`, so lookups agree). The null sender ``<>`` becomes ``""``.
    """
    value = _CONTROLS_RE.sub("", value).strip().strip("<>").strip()
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    return value.lower()


def clean_display_name(value: str) -> str:
    """A display name safe to show or to put back into a header: no controls, trimmed."""
    return " ".join(_CONTROLS_RE.sub(" ", value).split())


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: a normalised address and its (decoded) display name."""

    email: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A part that is not (only) body text: a file, an image, an attached message, ...

    ``size`` is the decoded payload size in bytes; for an attached message (message/*) it
    is the approximate size of that message as sent. Inline text parts that carry a
    filename are listed here and also read as body text.
    """

    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Message:
    """A submitted mail or chat message, parsed once, read by every check.

    ``bcc`` holds the Bcc: header addresses plus every envelope recipient that no To:/Cc:
    header names, so every real recipient has a role. ``new_text`` is what the sender wrote
    in this message; ``signature`` and ``quoted_text`` are split off it but remain
    sender-controlled text (a check that must not be evaded should read `all_text`).
    ``alternative_text`` holds the text of an alternative the checks otherwise skip (the
    HTML beside a plain part, which is what most clients show) when it does not say what the
    read text says, in the same order; normally empty.
    ``degraded`` is true when the MIME structure could not be parsed and the body was read as
    plain text; ``defects`` then says why.
    """

    channel: str
    sender: Address
    envelope_from: str
    envelope_to: tuple[str, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    subject: str
    message_id: str | None
    date: datetime | None
    sent_at: datetime
    new_text: str
    signature: str
    quoted_text: str
    attachments: tuple[Attachment, ...]
    auto_submitted: bool
    defects: tuple[str, ...]
    degraded: bool = False
    is_reply: bool = False  # In-Reply-To or References: the quoted text answers a real message
    alternative_text: str = ""

    # Derived once, at construction: every rule of a pack reads them.
    recipients: tuple[Address, ...] = field(init=False, repr=False, compare=False)
    """To, Cc and Bcc addresses in that order, each address once (first role wins)."""
    receiving: tuple[Address, ...] = field(init=False, repr=False, compare=False)
    """Who actually gets the message: the recipients the envelope names (a header address
    the envelope leaves out receives nothing; envelope-only ones are already in bcc). With
    no envelope (a message checked on its own), every recipient."""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        recipients: list[Address] = []
        for address in (*self.to, *self.cc, *self.bcc):
            if address.email not in seen:
                seen.add(address.email)
                recipients.append(address)
        object.__setattr__(self, "recipients", tuple(recipients))
        envelope = set(self.envelope_to)
        receiving = [a for a in recipients if a.email in envelope] if envelope else recipients
        object.__setattr__(self, "receiving", tuple(receiving))

    def role_of(self, email: str) -> str | None:
        """``"to"``, ``"cc"`` or ``"bcc"`` for a recipient (first role wins), else None."""
        wanted = normalise_email(email)
        if not wanted:
            return None
        for role, addresses in (("to", self.to), ("cc", self.cc), ("bcc", self.bcc)):
            if any(address.email == wanted for address in addresses):
                return role
        return None

    @property
    def all_text(self) -> str:
        """Subject, new text, signature, quoted and alternative text: all the sender sent."""
        return "\n\n".join(
            part
            for part in (
                self.subject,
                self.new_text,
                self.signature,
                self.quoted_text,
                self.alternative_text,
            )
            if part
        )
