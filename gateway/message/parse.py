"""Raw submitted bytes (or a chat message) to one immutable `Message`.

The MIME structure is parsed with the email package's parser (as `BytesParser` would: bytes
decoded as ASCII with surrogateescape) under the compat32 policy, not
policy.default: measured here, policy.default re-parses every part's Content-Type with a
parser that is superlinear on long parameter lists (a 2 MB message of 1000 parts with 2 kB
Content-Type headers took 27 s, against 20 ms under compat32; a typical 5 kB message 0.31 ms
against 0.07 ms). Header values are decoded by our own linear code (`text`, `addresses`).

`parse_message` raises only `MessageTooComplex`. Anything else going wrong gives a valid
Message with a defect; if the MIME structure itself cannot be parsed the body is read as
plain text and ``degraded`` is set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import Message as MimePart
from email.parser import BytesParser, Parser
from email.utils import decode_params, parsedate_to_datetime
from typing import Any

from gateway.message.addresses import parse_address_list, unique
from gateway.message.limits import MessageTooComplex, ParseLimits, header_block_size, prescan
from gateway.message.model import Address, Attachment, Message, normalise_email
from gateway.message.quoting import TOKEN_RE, split_reply
from gateway.message.text import (
    clean_header_value,
    crude_html_text,
    decode_bytes,
    from_surrogates,
    header_text,
    html_to_text,
    normalise_newlines,
)

__all__ = ["MessageTooComplex", "ParseLimits", "parse_chat", "parse_message"]

EMAIL_CHANNEL = "email"
DEFAULT_LIMITS = ParseLimits()
DEGRADED_DEFECT = "MIME structure could not be parsed; body read as plain text"

_ADDRESS_HEADERS = (("from", "From"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc"))
_MESSAGE_ID_RE = re.compile(r"<([^<>\s]+)>")
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list"})
_FORWARDED_TYPES = frozenset({"message/rfc822", "message/global"})
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_PARAM_TOKEN_RE = re.compile(r'\\"|"|;')
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")
_BLANK_LINE_RE = re.compile(rb"\r\n|\r|\n")
_DEFECT_TEXT = {
    "NoBoundaryInMultipartDefect": "multipart without a boundary",
    "StartBoundaryNotFoundDefect": "broken MIME: start boundary not found",
    "CloseBoundaryNotFoundDefect": "broken MIME: closing boundary missing",
    "FirstHeaderLineIsContinuationDefect": "header block starts with a continuation line",
    "MisplacedEnvelopeHeaderDefect": "misplaced Unix From line",
    "MissingHeaderBodySeparatorDefect": "no blank line between headers and body",
    "MultipartInvariantViolationDefect": "multipart type with a non-multipart body",
    "InvalidMultipartContentTransferEncodingDefect": "invalid transfer encoding on multipart",
    "InvalidBase64PaddingDefect": "invalid base64 (padding)",
    "InvalidBase64CharactersDefect": "invalid base64 (characters)",
    "InvalidBase64LengthDefect": "invalid base64 (length)",
}


def _defect_text(defect: object) -> str:
    name = type(defect).__name__
    known = _DEFECT_TEXT.get(name)
    if known:
        return known
    return _CAMEL_RE.sub(" ", name.removesuffix("Defect")).lower() or "MIME defect"


class _Defects:
    """Ordered, de-duplicated defect strings."""

    def __init__(self) -> None:
        self._items: dict[str, None] = {}

    def add(self, text: str | None) -> None:
        if text:
            self._items.setdefault(text, None)

    def extend(self, texts: Sequence[str]) -> None:
        for text in texts:
            self.add(text)

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(self._items)


def _check_sent_at(sent_at: datetime) -> None:
    if sent_at.tzinfo is None or sent_at.utcoffset() is None:
        raise ValueError("sent_at must be timezone-aware")


def _check_addresses(values: Sequence[str], what: str) -> None:
    # A bare string would be iterated character by character.
    if isinstance(values, str | bytes):
        raise TypeError(f"{what} must be a sequence of addresses, not a string")


def _unique_emails(values: Sequence[str]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for value in values:
        email = normalise_email(value)
        if email:
            out.setdefault(email, None)
    return tuple(out)


def split_params(value: str) -> list[str]:
    """Split a MIME header value at semicolons outside quotes, in linear time.

    The same rule as the stdlib's ``email.message._parseparam`` (a quote preceded by a
    backslash does not count), which rescans the value for every parameter and took 2 s
    on 64 kB of quoted semicolons.
    """
    out: list[str] = []
    start = 0
    in_quotes = False
    for match in _PARAM_TOKEN_RE.finditer(value):
        token = match.group()
        if token == '"':
            in_quotes = not in_quotes
        elif token == ";" and not in_quotes:
            out.append(value[start : match.start()])
            start = match.end()
    out.append(value[start:])
    return out


class _LimitedPart(MimePart):
    """A compat32 MIME part hardened against hostile parameters.

    Its boundary is refused when too long (RFC 2231 continuations included), before the
    parser compiles it into a regex; and its parameters are split in linear time.
    """

    max_boundary_length = DEFAULT_LIMITS.max_boundary_length

    def _get_params_preserve(self, failobj: object, header: str) -> object:
        # Overrides the one private helper behind get_param(s), get_filename, get_boundary
        # and get_content_charset; the rest mirrors the stdlib's version.
        value = self.get(header)
        if value is None:
            return failobj
        params: list[tuple[str, str]] = []
        for param in split_params(str(value)):
            name, equals, val = param.partition("=")
            params.append((name.strip().lower() if equals else name.strip(), val.strip()))
        return decode_params(params)

    def get_boundary(self, failobj: Any = None) -> Any:
        boundary = super().get_boundary(failobj)
        if isinstance(boundary, str) and len(boundary) > self.max_boundary_length:
            raise MessageTooComplex(
                f"MIME boundary longer than max_boundary_length={self.max_boundary_length}"
            )
        return boundary


class _PartCounter:
    """Message factory for the parser that refuses to create more than ``max_parts`` parts.

    The pre-scan counts declared boundaries; a boundary it cannot see (RFC 2231-encoded, for
    example) is still caught here, after at most ``max_parts`` parts' worth of work.
    """

    def __init__(self, max_parts: int, max_boundary_length: int) -> None:
        self.max_parts = max_parts
        self.max_boundary_length = max_boundary_length
        # The parser calls the factory once to probe its signature, and the top-level
        # message is not a part.
        self.allowed = max_parts + 2
        self.count = 0

    def __call__(self, policy: email_policy.Policy = email_policy.compat32) -> MimePart:
        self.count += 1
        if self.count > self.allowed:
            raise MessageTooComplex(f"more than max_parts={self.max_parts} MIME parts")
        part = _LimitedPart(policy=policy)
        part.max_boundary_length = self.max_boundary_length
        return part


# The blank line that ends the header block, as the parser splits lines (CRLF, CR or LF):
# atomic, so that a CRLF is never taken as a CR and then an LF.
_HEADER_END_RE = re.compile(r"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")


def _parse_mime(raw: bytes, limits: ParseLimits) -> MimePart:
    factory = _PartCounter(limits.max_parts, limits.max_boundary_length)
    text = raw.decode("ascii", "surrogateescape")  # what BytesParser.parsebytes does first
    # The parser reads a single-part body line by line only to join the lines again (a third
    # of its work on a 5 kB message). Given just the header block, it gives the same headers
    # and defects; the rest of the text is then exactly the body it would have joined. Used
    # only where the block parsed whole and the part is not multipart or message/*; a block
    # that names either (most mail: multipart/alternative) goes straight to the whole parse.
    end = _HEADER_END_RE.search(text)
    head = text[: end.end()] if end is not None else ""
    lowered = head.lower()
    if end is not None and "multipart" not in lowered and "message/" not in lowered:
        part = Parser(_class=factory, policy=email_policy.compat32).parsestr(head)
        if (
            part.get_payload() == ""
            and not part.defects
            and part.get_content_maintype() not in ("multipart", "message")
        ):
            part.set_payload(text[end.end() :])
            return part
        factory = _PartCounter(limits.max_parts, limits.max_boundary_length)
    return Parser(_class=factory, policy=email_policy.compat32).parsestr(text)


# --- headers -------------------------------------------------------------------------------


def _header_map(part: MimePart, defects: _Defects) -> dict[str, list[str]]:
    """Lower-cased name -> raw values, in order; notes 8-bit header bytes."""
    headers: dict[str, list[str]] = {}
    for name, value in part.raw_items():
        key = from_surrogates(str(name)).strip().lower()
        value = str(value)
        if not value.isascii():
            defects.add(f"8-bit characters in {clean_header_value(str(name))[:40]} header")
        headers.setdefault(key, []).append(value)
    return headers


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _message_id(value: str | None) -> str | None:
    if value is None:
        return None
    value = clean_header_value(value)
    match = _MESSAGE_ID_RE.search(value)
    if match:
        return match.group(1)
    token = value.strip("<> \t")
    return token.split()[0] if token else None


def _date(value: str | None, defects: _Defects) -> datetime | None:
    if value is None:
        return None
    text = clean_header_value(value)
    try:
        parsed = parsedate_to_datetime(text) if len(text) <= 200 else None
    except Exception:  # ValueError, TypeError, OverflowError, IndexError on odd input
        parsed = None
    if parsed is None:
        defects.add("unparseable Date header")
        return None
    # "-0000" means "UTC, local zone unknown" (RFC 5322 §3.3); the parser leaves it naive.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _auto_submitted(headers: dict[str, list[str]], envelope_from: str) -> bool:
    if not envelope_from:  # the null sender: bounces and other automatic replies
        return True
    auto = _first(headers, "auto-submitted")
    if auto is not None:
        keyword = clean_header_value(auto).split(";", 1)[0].strip().lower()
        if keyword and keyword != "no":
            return True
    precedence = _first(headers, "precedence")
    return (
        precedence is not None
        and clean_header_value(precedence).strip().lower() in _AUTO_PRECEDENCE
    )


@dataclass
class _Headers:
    sender: Address | None = None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    subject: str = ""
    message_id: str | None = None
    date: datetime | None = None
    auto_submitted: bool = False
    is_reply: bool = False


def _read_headers(headers: dict[str, list[str]], envelope_from: str, defects: _Defects) -> _Headers:
    out = _Headers()
    found: dict[str, list[Address]] = {"from": [], "to": out.to, "cc": out.cc, "bcc": out.bcc}
    for key, label in _ADDRESS_HEADERS:
        for value in headers.get(key, ()):
            addresses, problems = parse_address_list(clean_header_value(value), label)
            found[key].extend(addresses)
            defects.extend(problems)
    from_values = headers.get("from", [])
    if not from_values:
        defects.add("missing From header")
    elif len(from_values) > 1:
        defects.add("more than one From header")
    elif not found["from"]:
        defects.add("no valid address in From header")
    out.sender = found["from"][0] if found["from"] else None
    subject = _first(headers, "subject")
    out.subject = header_text(subject) if subject is not None else ""
    out.message_id = _message_id(_first(headers, "message-id"))
    out.date = _date(_first(headers, "date"), defects)
    out.auto_submitted = _auto_submitted(headers, envelope_from)
    out.is_reply = bool(headers.get("in-reply-to") or headers.get("references"))
    return out


# --- body ----------------------------------------------------------------------------------


@dataclass
class _Body:
    texts: list[str] = field(default_factory=list)  # shown as this message's body
    forwarded: list[str] = field(default_factory=list)  # message/rfc822 content
    alternatives: list[tuple[str, str]] = field(default_factory=list)  # unread ones
    attachments: list[Attachment] = field(default_factory=list)


def _children(part: MimePart) -> list[MimePart]:
    payload = part.get_payload()
    return (
        [child for child in payload if isinstance(child, MimePart)]
        if isinstance(payload, list)
        else []
    )


def _filename(part: MimePart) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # odd RFC 2231 continuations
        return None
    if not isinstance(name, str):
        return None
    cleaned = header_text(name)[:255]
    return cleaned or None


def _disposition(part: MimePart) -> str | None:
    try:
        value = part.get_content_disposition()
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _content_type(part: MimePart) -> str:
    try:
        value = part.get_content_type()
    except Exception:
        return "application/octet-stream"
    return clean_header_value(value).lower()[:127] or "application/octet-stream"


def _payload_bytes(part: MimePart) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


def _leaf_text(part: MimePart, content_type: str, defects: _Defects) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text, problem = decode_bytes(_payload_bytes(part), charset)
    defects.add(problem)
    text = normalise_newlines(text)
    if content_type == "text/html":
        text, problem = html_to_text(text)
        defects.add(problem)
    return text


def _raw_size(part: MimePart) -> int:
    """Approximate size in bytes of an attached message as it was sent.

    Summed from raw headers and undecoded payloads: re-generating it (as_bytes) would
    re-fold every header, which is slow on long 8-bit ones.
    """
    total = 0
    stack = [part]
    while stack:
        current = stack.pop()
        total += sum(len(name) + len(value) + 4 for name, value in current.raw_items()) + 2
        payload = current.get_payload()
        if isinstance(payload, list):
            stack.extend(child for child in payload if isinstance(child, MimePart))
        elif isinstance(payload, str):
            total += len(payload)
    return total


def _forwarded_text(
    inner: MimePart, body: _Body, depth: int, limits: ParseLimits, defects: _Defects
) -> str:
    """An attached or forwarded message, rendered as a reader sees it: headers, then text."""
    inner_body = _Body(attachments=body.attachments)
    _collect(inner, inner_body, depth + 1, limits, defects, want_text=True)
    headers = _header_map(inner, _Defects())  # its 8-bit headers are not ours to report
    lines = []
    for name in ("From", "Date", "Subject", "To", "Cc"):
        value = _first(headers, name.lower())
        if value is not None:
            lines.append(f"{name}: {header_text(value)}")
    content = "\n\n".join(t for t in inner_body.texts if t.strip())
    # Its HTML alternative, when that says more: what the young person would be shown.
    alternatives = inner_body.alternatives
    unread = _unread_text(alternatives, content, is_reply=False) if alternatives else ""
    nested = "\n\n".join(inner_body.forwarded)
    pieces = ("\n".join(lines), content, unread, nested)
    return "\n\n".join(piece for piece in pieces if piece)


def _choose_alternative(children: list[MimePart]) -> MimePart | None:
    # Plain text is preferred (as the brief for checks asks); otherwise the richest,
    # i.e. the last alternative (RFC 2046 §5.1.4), that is HTML or a container.
    for child in children:
        if _content_type(child) == "text/plain" and _disposition(child) != "attachment":
            return child
    for child in reversed(children):
        content_type = _content_type(child)
        if content_type == "text/html" or child.is_multipart():
            return child
    return children[0] if children else None


def _collect(
    part: MimePart,
    body: _Body,
    depth: int,
    limits: ParseLimits,
    defects: _Defects,
    *,
    want_text: bool,
) -> None:
    """Walk one entity: body text into ``body.texts``, files into ``body.attachments``."""
    if depth > limits.max_mime_depth:
        defects.add(f"MIME nesting deeper than {limits.max_mime_depth}; inner parts ignored")
        return
    content_type = _content_type(part)
    disposition = _disposition(part)
    children = _children(part)
    if content_type in _FORWARDED_TYPES or (content_type.startswith("message/") and children):
        if disposition == "attachment" or content_type not in _FORWARDED_TYPES:
            size = sum(map(_raw_size, children)) if children else 0
            body.attachments.append(Attachment(_filename(part), content_type, size))
        if content_type in _FORWARDED_TYPES:
            for inner in children:
                body.forwarded.append(_forwarded_text(inner, body, depth, limits, defects))
    elif content_type.startswith("multipart/") and not children:
        # The parser could not split it (no or wrong boundary): what a reader may see is
        # the raw body, so that is what the checks read.
        if want_text:
            body.texts.append(_leaf_text(part, "text/plain", defects))
    elif part.is_multipart():
        chosen = _choose_alternative(children) if content_type == "multipart/alternative" else None
        for child in children:
            child_wants = want_text and (chosen is None or child is chosen)
            _collect(child, body, depth + 1, limits, defects, want_text=child_wants)
            if want_text and not child_wants:
                _alternative_texts(child, body.alternatives, depth + 1, limits)
    elif content_type in _BODY_TYPES and disposition != "attachment":
        if want_text:
            body.texts.append(_leaf_text(part, content_type, defects))
        filename = _filename(part)
        if filename is not None:  # an inline text file: shown, and still a file
            body.attachments.append(Attachment(filename, content_type, len(_payload_bytes(part))))
    else:
        body.attachments.append(
            Attachment(_filename(part), content_type, len(_payload_bytes(part)))
        )
    for defect in getattr(part, "defects", ()):
        defects.add(_defect_text(defect))


def _alternative_texts(
    part: MimePart, out: list[tuple[str, str]], depth: int, limits: ParseLimits
) -> None:
    """(content type, text) of each part of an alternative the checks do not read.

    Most clients show the HTML beside a plain part, not the plain part, so what that HTML
    says must not escape the checks.
    """
    if depth > limits.max_mime_depth:
        return
    content_type = _content_type(part)
    children = _children(part)
    if content_type.startswith("multipart/") and children:
        for child in children:
            _alternative_texts(child, out, depth + 1, limits)
    elif content_type in _BODY_TYPES and _disposition(part) != "attachment":
        try:
            charset = part.get_content_charset()
        except Exception:
            charset = None
        text, _ = decode_bytes(_payload_bytes(part), charset)
        out.append((content_type, normalise_newlines(text)))


def _in_order(tokens: Sequence[str], within: Sequence[str]) -> bool:
    """Is `tokens` a subsequence of `within` (all of them, in that order, others between)?"""
    rest = iter(within)
    return all(token in rest for token in tokens)  # `in` consumes the iterator up to the match


def _tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text.casefold())


def _unread_text(alternatives: Sequence[tuple[str, str]], read: str, is_reply: bool) -> str:
    """What the unread alternatives say, unless it is the read text's words in its order.

    A client's HTML and plain parts say the same thing, the plain one often with more (link
    addresses, list markers), so the HTML's words and symbols (emoji included) normally occur
    in the plain part in the same order, and nothing is returned. Otherwise the HTML is what
    most readers see, and all of it is returned for the checks: comparing word by word or line
    by line would let a sender reorder the same words. Tags are first stripped cheaply; only
    HTML that differs is laid out, once, so that its blockquotes are known: in a reply, quoted
    lines are the answered message's words and are left out, as `quoted_text` is.
    """
    html = [text for content_type, text in alternatives if content_type == "text/html"]
    plain = [text for content_type, text in alternatives if content_type != "text/html"]
    known = _tokens(read)
    if _in_order(_tokens("\n".join([*plain, *map(crude_html_text, html)])), known):
        return ""
    texts = [*plain, html_to_text("<br>".join(html))[0]] if html else plain
    lines = [line.strip() for text in texts for line in text.split("\n")]
    if is_reply:
        lines = [line for line in lines if not line.startswith(">")]
    shown = "\n".join(lines).strip()
    return "" if _in_order(_tokens(shown), known) else shown


# --- assembly ------------------------------------------------------------------------------


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    end = header_block_size(raw, len(raw))
    body = raw[end:]
    match = _BLANK_LINE_RE.match(body)
    return raw[:end], body[match.end() :] if match else body


def _degraded_body(raw: bytes) -> _Body:
    _, body_bytes = _split_head(raw)
    text, _ = decode_bytes(body_bytes, None)
    return _Body(texts=[normalise_newlines(text)])


def _assemble(
    *,
    headers: _Headers,
    body: _Body,
    envelope_from: str,
    envelope_to: tuple[str, ...],
    sent_at: datetime,
    defects: _Defects,
    degraded: bool,
) -> Message:
    to = unique(headers.to)
    cc = unique(headers.cc)
    named = {address.email for address in (*to, *cc, *headers.bcc)}
    # Envelope recipients no header names were sent a blind copy.
    blind = [Address(email) for email in envelope_to if email not in named]
    text = "\n\n".join(piece for piece in body.texts if piece.strip())
    split = split_reply(text)
    quoted = "\n\n".join(piece for piece in (split.quoted, *body.forwarded) if piece)
    alternative = (
        _unread_text(body.alternatives, text, headers.is_reply) if body.alternatives else ""
    )
    return Message(
        channel=EMAIL_CHANNEL,
        sender=headers.sender or Address(envelope_from),
        envelope_from=envelope_from,
        envelope_to=envelope_to,
        to=to,
        cc=cc,
        bcc=unique([*headers.bcc, *blind]),
        subject=headers.subject,
        message_id=headers.message_id,
        date=headers.date,
        sent_at=sent_at,
        new_text=split.new,
        signature=split.signature,
        quoted_text=quoted,
        alternative_text=alternative,
        attachments=tuple(body.attachments),
        auto_submitted=headers.auto_submitted,
        defects=defects.as_tuple(),
        degraded=degraded,
        is_reply=headers.is_reply,
    )


def _parse(
    raw: bytes,
    envelope_from: str,
    envelope_to: tuple[str, ...],
    sent_at: datetime,
    limits: ParseLimits,
) -> Message:
    prescan(raw, limits)
    defects = _Defects()
    if b"\x00" in raw:
        defects.add("NUL bytes in message")
    degraded = False
    mime: MimePart | None
    try:
        mime = _parse_mime(raw, limits)
    except MessageTooComplex:
        raise
    except Exception:  # RecursionError included: it is a RuntimeError
        mime, degraded = None, True
        defects.add(DEGRADED_DEFECT)

    if mime is not None:
        header_source = mime
    else:
        try:
            header_source = BytesParser(policy=email_policy.compat32).parsebytes(
                _split_head(raw)[0], headersonly=True
            )
        except Exception:
            header_source = MimePart()
    headers = _read_headers(_header_map(header_source, defects), envelope_from, defects)

    body = _Body()
    if mime is not None:
        try:
            _collect(mime, body, 0, limits, defects, want_text=True)
        except MessageTooComplex:
            raise
        except Exception:
            body, degraded = _Body(), True
            defects.add(DEGRADED_DEFECT)
    if degraded:
        body = _degraded_body(raw)
    return _assemble(
        headers=headers,
        body=body,
        envelope_from=envelope_from,
        envelope_to=envelope_to,
        sent_at=sent_at,
        defects=defects,
        degraded=degraded,
    )


def _last_resort(
    raw: bytes,
    envelope_from: str,
    envelope_to: tuple[str, ...],
    sent_at: datetime,
    error: BaseException,
) -> Message:
    """A Message built without the email package at all: the whole input as text."""
    text = normalise_newlines(raw.decode("utf-8", "replace"))
    return Message(
        channel=EMAIL_CHANNEL,
        sender=Address(envelope_from),
        envelope_from=envelope_from,
        envelope_to=envelope_to,
        to=(),
        cc=(),
        bcc=tuple(Address(email) for email in envelope_to),
        subject="",
        message_id=None,
        date=None,
        sent_at=sent_at,
        new_text=text,
        signature="",
        quoted_text="",
        attachments=(),
        auto_submitted=not envelope_from,
        defects=(f"message could not be parsed ({type(error).__name__}); read as text",),
        degraded=True,
    )


def parse_message(
    raw: bytes,
    *,
    envelope_from: str,
    envelope_to: Sequence[str],
    sent_at: datetime,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> Message:
    """Parse one submitted mail. Raises only `MessageTooComplex` for any ``raw`` bytes.

    ``envelope_from``/``envelope_to`` are the SMTP MAIL FROM / RCPT TO addresses (angle
    brackets optional; ``""`` or ``"<>"`` for the null sender). ``sent_at`` must be aware.
    A wrong argument type (a str for ``envelope_to``, a naive ``sent_at``) is a caller bug
    and raises TypeError/ValueError.
    """
    _check_sent_at(sent_at)
    _check_addresses(envelope_to, "envelope_to")
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError("raw must be bytes")
    raw = bytes(raw)
    sender = normalise_email(envelope_from)
    recipients = _unique_emails(envelope_to)
    try:
        return _parse(raw, sender, recipients, sent_at, limits)
    except MessageTooComplex:
        raise
    except Exception as exc:  # a bug of ours or of the email package: never lose a message
        return _last_resort(raw, sender, recipients, sent_at, exc)


def parse_chat(
    *,
    channel: str,
    sender: str,
    participants: Sequence[str],
    text: str,
    sent_at: datetime,
    message_id: str | None = None,
) -> Message:
    """A direct message from the HTTP API, in the same shape as a mail.

    ``participants`` become ``to`` (and ``envelope_to``); the sender is left out of them if
    listed. The whole text is ``new_text``: ``quoted_text`` is empty and there is no signature.
    A "> " line is not mail's reply quoting here: in chat tools (Teams, Slack, Discord) it is a
    blockquote the sender wrote and the recipient sees, so the checks that read only new text
    (personal contact details, for one) must read it too. ``date`` is ``sent_at``.
    """
    _check_sent_at(sent_at)
    _check_addresses(participants, "participants")
    defects = _Defects()
    from_address = normalise_email(sender)
    if not from_address:
        defects.add("missing sender")
    recipients = tuple(p for p in _unique_emails(participants) if p != from_address)
    if not recipients:
        defects.add("no participants")
    new_text = normalise_newlines(text).strip()
    return Message(
        channel=clean_header_value(channel).lower() or "chat",
        sender=Address(from_address),
        envelope_from=from_address,
        envelope_to=recipients,
        to=tuple(Address(p) for p in recipients),
        cc=(),
        bcc=(),
        subject="",
        message_id=_message_id(message_id),
        date=sent_at,
        sent_at=sent_at,
        new_text=new_text,
        signature="",
        quoted_text="",
        attachments=(),
        auto_submitted=False,
        defects=defects.as_tuple(),
    )
