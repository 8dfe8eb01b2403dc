"""A chat message (a DM from a chat tool) as the HTTP API receives it, checked field by field,
and as the archive keeps it: a small RFC 5322 message, so that search, export and the hash
chain treat mail and chat alike."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.policy import SMTPUTF8, compat32
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from gateway.message.parse import EMAIL_CHANNEL
from gateway.message.text import normalise_newlines

MAX_TEXT = 100_000  # characters; a chat message, not an attachment
MAX_PARTICIPANTS = 500
_TOKEN_RE = re.compile(r"[^A-Za-z0-9._-]+")
# A plain address: no display names, groups, comments or lists; a comma would make the archived
# To: name people the policy never saw.
_ADDRESS_RE = re.compile(
    r"[^\s@,;:<>()\[\]\"\\]{1,64}@[^\s@,;:<>()\[\]\"\\]+\.[^\s@,;:<>()\[\]\"\\]+"
)
_EARLIEST_YEAR, _LATEST_YEAR = 1990, 2200
# C0 controls but tab, newline and carriage return: chat text needs none of them, and ESC
# sequences and BEL act on a terminal that shows the archived text (`safeguard search`, a log).
_TEXT_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0, DEL, C1
# How far a chat tool's clock may run ahead of the gateway's (as Kerberos allows).
CLOCK_SKEW = timedelta(minutes=5)
# Sent and received further apart than this (a tool passing on what it held during an outage),
# the console and the lead's alert show both times: the console lists and searches by receipt.
SENT_APART = timedelta(minutes=5)


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
        """A resend (same channel, message id and content) is archived once; the same id with
        other content (an edit, or a channel whose ids repeat across chats) is archived too,
        never dropped. The same content is the same people in any order and the same instant
        however its offset is written: a retry that lists the participants afresh, or gives
        10:15Z as 11:15+01:00, is a resend."""
        content = "\0".join(
            (
                self.conversation,
                self.sender,
                *sorted(self.participants),
                self.text,
                self.sent_at.astimezone(UTC).isoformat(),
            )
        )
        digest = hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
        return f"chat\0{self.channel}\0{self.message_id}\0{digest}"

    @property
    def rfc822_id(self) -> str:
        digest = hashlib.sha256(self.dedupe_on.encode()).hexdigest()[:16]
        return f"{_TOKEN_RE.sub('-', self.message_id)[:64]}.{digest}@{self.channel}.chat.invalid"

    @property
    def subject(self) -> str:
        """What the archive, the console and the lead's alert call it (it has no subject)."""
        return f"{self.channel} message in conversation {self.conversation}"

    def as_rfc822(self) -> bytes:
        """What the archive keeps: headers naming channel and conversation, the text as body."""
        mail = EmailMessage(policy=SMTPUTF8)
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.participants)
        mail["Subject"] = self.subject
        mail["Date"] = format_datetime(self.sent_at)
        mail["Message-ID"] = f"<{self.rfc822_id}>"
        mail["X-Safeguard-Channel"] = self.channel
        mail["X-Safeguard-Conversation"] = self.conversation
        mail["X-Safeguard-Chat-Message-Id"] = self.message_id
        mail.set_content(self.text, cte="8bit")
        return mail.as_bytes()


def sent_at_of(raw: bytes) -> datetime | None:
    """When the chat tool says it sent an archived chat message (`as_rfc822`'s Date: header,
    its `sent_at` to the second), or None if the header is missing or unreadable. The archive's
    own time is when the gateway received it, which for a message a tool held during an outage
    is later."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Date")
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else None


def text_of(raw: bytes) -> str:
    """An archived chat message's whole text (`as_rfc822`'s body), as the checks read it: a
    "> " line in it is a blockquote its recipient saw, not quoted mail (`parse_chat`)."""
    part = BytesParser(policy=compat32).parsebytes(raw)
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, "replace")
    except LookupError:
        text = payload.decode("utf-8", "replace")
    return normalise_newlines(text).strip()


def passed_on_late(sent: datetime, received: datetime) -> bool:
    """Whether a chat tool passed a message on more than `SENT_APART` after sending it."""
    return abs(received - sent) > SENT_APART


def sent_apart(channel: str, raw: bytes | None, received_at: datetime) -> datetime | None:
    """When a chat message was sent (by the chat tool), if it was passed on late; None for
    mail, whose Date: header its sender's program writes, and for a tombstone."""
    if channel == EMAIL_CHANNEL or not raw:
        return None
    sent = sent_at_of(raw)
    return sent if sent is not None and passed_on_late(sent, received_at) else None


def _printable(value: str, key: str) -> str:
    for ch in value:
        if not ch.isprintable() or "\ud800" <= ch <= "\udfff":
            raise ChatInvalid(f"{key}: contains a control or invalid character ({ch!r})")
    return value


def _string(data: dict[str, Any], key: str, *, required: bool = True, limit: int = 320) -> str:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ChatInvalid(f"{key}: expected a string, got {type(value).__name__}")
    value = (value or "").strip()
    if not value:
        if required:
            raise ChatInvalid(f"{key}: required")
        return ""
    if len(value) > limit:
        raise ChatInvalid(f"{key}: longer than {limit} characters")
    return _printable(value, key)


def _address(value: str, key: str) -> str:
    if len(value) > 254 or not _ADDRESS_RE.fullmatch(value):
        raise ChatInvalid(
            f"{key}: {value[:100]!r} is not one plain e-mail address (local@domain, no name)"
        )
    return _printable(value, key).lower()


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
    if any("\ud800" <= ch <= "\udfff" or ch == "\0" for ch in text):
        raise ChatInvalid("text: contains a NUL or an unpaired surrogate")
    control = _TEXT_CONTROL_RE.search(text)
    if control is not None:
        raise ChatInvalid(
            f"text: contains a control character ({control.group()!r}); "
            "only tab, newline and carriage return are allowed"
        )
    if len(text) > MAX_TEXT:
        raise ChatInvalid(f"text: longer than {MAX_TEXT} characters")
    sent = _string(data, "sent_at", limit=64)
    try:
        sent_at = datetime.fromisoformat(sent)
    except ValueError:
        raise ChatInvalid(f"sent_at: {sent!r} is not an ISO-8601 time") from None
    if sent_at.tzinfo is None or sent_at.utcoffset() is None:
        raise ChatInvalid("sent_at: needs a time zone (e.g. +00:00 or Z)")
    if not _EARLIEST_YEAR <= sent_at.year <= _LATEST_YEAR:
        raise ChatInvalid(f"sent_at: {sent!r} is not a plausible time")
    recipients = tuple(p for p in people if p != sender)
    if not recipients:
        raise ChatInvalid("participants: nobody but the sender")
    channel = _TOKEN_RE.sub("-", _string(data, "channel", limit=32)).lower()
    if channel == EMAIL_CHANNEL:
        # The archive's channel for mail: the console would show the message as mail the
        # relay refused or held, though the chat tool sends it itself.
        raise ChatInvalid(
            f"channel: {EMAIL_CHANNEL!r} is mail, which comes through the SMTP relay; "
            "name the chat tool (e.g. teams, slack, whatsapp)"
        )
    return ChatMessage(
        channel=channel,
        conversation=_string(data, "conversation", limit=200),
        message_id=_string(data, "message_id", limit=200),
        sender=sender,
        participants=recipients,
        text=text,
        sent_at=sent_at,
    )


def check_sent_by(chat: ChatMessage, now: datetime) -> None:
    """A message archived as sent (`/api/v1/messages`) was sent by `now`, give or take
    `CLOCK_SKEW`: one dated later would be judged, office hours included, at a time that has not
    come. An earlier time is accepted, as a tool sends what it held during an outage; the archive
    records when the gateway received it too."""
    ahead = chat.sent_at - now
    if ahead > CLOCK_SKEW:
        raise ChatInvalid(
            f"sent_at: {chat.sent_at.isoformat()} is {_duration(ahead)} after the gateway's "
            f"clock ({now.isoformat(timespec='seconds')}); a message cannot have been sent "
            "later than now: check the chat tool's clock"
        )


def _duration(span: timedelta) -> str:
    # Rounded up: "6 minutes" for 5 min 20 s, never the 5 minutes the rule allows.
    minutes = math.ceil(span.total_seconds() / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = round(minutes / 60)
    return f"{hours} hours" if hours < 48 else f"{round(hours / 24)} days"
