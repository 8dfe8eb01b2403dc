"""Parse a submitted mail (or a chat message) once into an immutable, channel-neutral Message."""

from __future__ import annotations

from gateway.message.limits import MessageTooComplex, ParseLimits
from gateway.message.model import Address, Attachment, Message, normalise_email
from gateway.message.parse import parse_chat, parse_message

__all__ = [
    "Address",
    "Attachment",
    "Message",
    "MessageTooComplex",
    "ParseLimits",
    "normalise_email",
    "parse_chat",
    "parse_message",
]
