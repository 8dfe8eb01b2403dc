"""A chat message (a DM from a chat tool) as the HTTP API receives it, checked field by field,
and as the archive keeps it: a small RFC 5322 message, so that search, export and the hash
chain treat mail and chat alike."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import format_datetime
from typing import Any

MAX_TEXT = 100_000  # characters; a chat message, not an attachment
MAX_PARTICIPANTS = 500
_TOKEN_RE = re.compile(r"[^A-Za-z0-9._-]+")


class ChatInvalid(ValueError):
    """A request that cannot be judged; the message names the field and what is wrong."""


@dataclass(frozen=True)
class ChatMessage:
    channel: str
    conversation: str
    message_id: str
    sender: str
    participants: tuple[str, ...]
    text: str
    sent_at: datetime

    @property
    def dedupe_on(self) -> str:
        """The API archives a message once per channel and message id."""
        return f"chat\0{self.channel}\0{self.message_id}"

    @property
    def rfc822_id(self) -> str:
        digest = hashlib.sha256(self.dedupe_on.encode()).hexdigest()[:16]
        return f"{_TOKEN_RE.sub('-', self.message_id)[:64]}.{digest}@{self.channel}.chat.invalid"

    def as_rfc822(self) -> bytes:
        """What the archive keeps: headers naming channel and conversation, the text as body."""
        mail = EmailMessage(policy=SMTPUTF8)
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.participants)
        mail["Subject"] = f"{self.channel} message in conversation {self.conversation}"
        mail["Date"] = format_datetime(self.sent_at)
        mail["Message-ID"] = f"<{self.rfc822_id}>"
        mail["X-Safeguard-Channel"] = self.channel
        mail["X-Safeguard-Conversation"] = self.conversation
        mail["X-Safeguard-Chat-Message-Id"] = self.message_id
        mail.set_content(self.text, cte="8bit")
        return mail.as_bytes()


def _string(data: dict[str, Any], key: str, *, required: bool = True, limit: int = 320) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ChatInvalid(f"{key}: required")
        return ""
    if not isinstance(value, str):
        raise ChatInvalid(f"{key}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ChatInvalid(f"{key}: longer than {limit} characters")
    if any(ch in value for ch in "\r\n\0") and limit <= 320:
        raise ChatInvalid(f"{key}: must be one line")
    return value.strip()


def _address(value: str, key: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(ch.isspace() for ch in value):
        raise ChatInvalid(f"{key}: {value[:100]!r} is not an e-mail address")
    return value.lower()


def chat_from_json(data: object) -> ChatMessage:
    """The request body of `/api/v1/check` and `/api/v1/messages`, or ChatInvalid."""
    if not isinstance(data, dict):
        raise ChatInvalid("the body must be one JSON object")
    participants = data.get("participants")
    if not isinstance(participants, list) or not participants:
        raise ChatInvalid("participants: expected a non-empty list of e-mail addresses")
    if len(participants) > MAX_PARTICIPANTS:
        raise ChatInvalid(f"participants: more than {MAX_PARTICIPANTS}")
    for index, participant in enumerate(participants):
        if not isinstance(participant, str):
            raise ChatInvalid(f"participants[{index}]: expected a string")
    sender = _address(_string(data, "sender"), "sender")
    people = tuple(
        dict.fromkeys(_address(p.strip(), f"participants[{i}]") for i, p in enumerate(participants))
    )
    text = data.get("text")
    if not isinstance(text, str):
        raise ChatInvalid("text: expected a string")
    if len(text) > MAX_TEXT:
        raise ChatInvalid(f"text: longer than {MAX_TEXT} characters")
    sent = _string(data, "sent_at", limit=64)
    try:
        sent_at = datetime.fromisoformat(sent)
    except ValueError:
        raise ChatInvalid(f"sent_at: {sent!r} is not an ISO-8601 time") from None
    if sent_at.tzinfo is None or sent_at.utcoffset() is None:
        raise ChatInvalid("sent_at: needs a time zone (e.g. +00:00 or Z)")
    return ChatMessage(
        channel=_TOKEN_RE.sub("-", _string(data, "channel", limit=64)).lower(),
        conversation=_string(data, "conversation", limit=200),
        message_id=_string(data, "message_id", limit=200),
        sender=sender,
        participants=tuple(p for p in people if p != sender),
        text=text,
        sent_at=sent_at,
    )
