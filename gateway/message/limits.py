"""Size and structure limits, checked on the raw bytes before the MIME parser runs.

The email package needs memory and time in proportion to the number of parts, and recurses
once per nesting level (about 1000 levels end in RecursionError). A few byte-level counts,
all done in C by `bytes.count` and `re`, catch the usual cases cheaply; a slower but exact
line scan runs only when a cheap count is over its limit, so that an unusual but legitimate
message (a patch full of ``--`` lines, a digest of 150 forwarded mails) is not refused.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass


class MessageTooComplex(ValueError):
    """The message exceeds a parse limit; the text says which one."""


@dataclass(frozen=True)
class ParseLimits:
    """Limits on what the gateway agrees to parse."""

    max_mime_depth: int = 100  # Postfix and Haraka use 100
    max_parts: int = 1000  # Haraka's number
    max_header_bytes: int = 102_400  # Postfix header_size_limit
    # RFC 2046 allows 70 characters; the parser compiles (and caches) a regex per boundary.
    # Checked while parsing, where the boundary is known exactly.
    max_boundary_length: int = 998


# The top-level header block exactly as email.feedparser delimits it: consecutive lines that
# look like a header field, a continuation or a Unix "From " line. CR, LF and CRLF all end a
# line for the feedparser, so they do here.
_HEADER_BLOCK_RE = re.compile(
    rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[ \t])[^\r\n]*(?:\r\n|\r|\n|\Z))*"
)
# A Content-Type header that makes a container (compat32 accepts only "type/subtype" with no
# space before the slash, so neither do we), possibly folded once.
_CONTAINER_HEADER_RE = re.compile(
    rb"(?:\A|(?<=[\r\n]))content-type:[ \t]*(?:(?:\r\n|\r|\n)[ \t]+)?(?:multipart|message)/",
    re.IGNORECASE,
)
_BOUNDARY_PARAM_RE = re.compile(rb'boundary[ \t]*=[ \t]*(?:"([^"\r\n]*)"|([^;\r\n]*))', re.I)
_DELIMITER_LINE_RE = re.compile(rb"(?:\A|(?<=[\r\n]))--([^\r\n]*)")
_HEADER_LINE_RE = re.compile(rb"[\x21-\x39\x3b-\x7e]*:")
_CONTENT_TYPE_LINE_RE = re.compile(rb"content-type:", re.IGNORECASE)
_CONTAINER_VALUE_RE = re.compile(rb"[ \t\r\n]*(multipart|message)/(digest\b)?", re.I)


def header_block_size(raw: bytes, cap: int) -> int:
    """Bytes in the top-level header block, counting at most ``cap + 1``."""
    match = _HEADER_BLOCK_RE.match(raw, 0, cap + 1)
    return match.end() if match else 0


def prescan(raw: bytes, limits: ParseLimits) -> None:
    """Raise `MessageTooComplex` if ``raw`` is over a limit; cost is linear in its size."""
    size = header_block_size(raw, limits.max_header_bytes)
    if size > limits.max_header_bytes:
        raise MessageTooComplex(
            f"header block larger than max_header_bytes={limits.max_header_bytes}"
        )
    # Every part needs a delimiter line, and every delimiter line starts with "--".
    dash_lines = raw.count(b"\n--") + raw.count(b"\r--") + raw.startswith(b"--")
    if dash_lines > limits.max_parts:
        parts = count_delimiters(raw)
        if parts > limits.max_parts:
            raise MessageTooComplex(f"{parts} MIME parts, more than max_parts={limits.max_parts}")
    # Every nesting level needs a multipart/* or message/* Content-Type header.
    # Each such header names "multipart/" or "message/": counting those (in C) bounds them.
    lowered = raw.lower()
    if lowered.count(b"multipart/") + lowered.count(b"message/") <= limits.max_mime_depth:
        return
    containers = len(_CONTAINER_HEADER_RE.findall(raw))
    if containers > limits.max_mime_depth:
        depth = mime_depth(raw, limits.max_mime_depth)
        if depth > limits.max_mime_depth:
            raise MessageTooComplex(
                f"MIME nesting deeper than max_mime_depth={limits.max_mime_depth}"
            )


def _declared_boundaries(raw: bytes) -> set[bytes]:
    found: set[bytes] = set()
    for quoted, plain in _BOUNDARY_PARAM_RE.findall(raw):
        value = (quoted or plain).rstrip()
        if value:
            found.add(value)
    return found


def count_delimiters(raw: bytes) -> int:
    """Lines that open a part of some multipart declared anywhere in ``raw``."""
    boundaries = _declared_boundaries(raw)
    if not boundaries:
        return 0
    total = 0
    # Counter does the per-line work in C; only distinct line texts reach Python.
    for rest, count in Counter(_DELIMITER_LINE_RE.findall(raw)).items():
        rest = rest.rstrip(b" \t")
        if rest in boundaries:  # close delimiters ("--b--") open no part
            total += count
    return total


def _container(content_type: bytes, in_digest: bool) -> tuple[bool, bytes | None, bool]:
    """(is a container, boundary if multipart, is a digest) for one Content-Type value."""
    if not content_type.strip():
        # Parts of a multipart/digest are message/rfc822 unless they say otherwise.
        return in_digest, None, False
    match = _CONTAINER_VALUE_RE.match(content_type)
    if not match:
        return False, None, False
    if match.group(1).lower() == b"message":
        return True, None, False
    param = _BOUNDARY_PARAM_RE.search(content_type)
    boundary = (param.group(1) or param.group(2) or b"").rstrip() if param else b""
    # A multipart without a boundary is parsed as a single text body.
    return bool(boundary), boundary or None, match.group(2) is not None


def mime_depth(raw: bytes, stop_above: int) -> int:
    """Nesting depth of multipart/message containers, following the feedparser's rules.

    Stops counting once the depth exceeds ``stop_above``.
    """
    # Open containers, innermost last: a boundary for multipart/*, None for message/*.
    stack: list[bytes | None] = []
    digest = [False]  # per level (top-level message first): is it a multipart/digest?
    open_boundaries: Counter[bytes] = Counter()
    in_headers = True
    content_type: list[bytes] = []  # lines of the current part's Content-Type value
    collecting = False
    deepest = 0
    for line in raw.splitlines():  # CR, LF and CRLF, like the feedparser
        if line.startswith(b"--") and open_boundaries:
            rest = line[2:].rstrip(b" \t")
            boundary: bytes | None = None
            closing = False
            if rest in open_boundaries:
                boundary = rest
            elif rest.endswith(b"--") and rest[:-2] in open_boundaries:
                boundary, closing = rest[:-2], True
            if boundary is not None:
                index = len(stack) - 1
                while stack[index] != boundary:
                    index -= 1
                # A delimiter closes every part opened inside it; a close delimiter also
                # closes its own multipart.
                cut = index if closing else index + 1
                for popped in stack[cut:]:
                    if popped is not None:
                        open_boundaries[popped] -= 1
                        if not open_boundaries[popped]:
                            del open_boundaries[popped]
                del stack[cut:]
                del digest[cut + 1 :]
                in_headers = not closing  # a new part starts with its headers
                content_type, collecting = [], False
                continue
        if not in_headers:
            continue
        if line[:1] in (b" ", b"\t"):
            if collecting:
                content_type.append(line)
            continue
        if line and _HEADER_LINE_RE.match(line):
            # The first Content-Type counts, as for Message.get().
            collecting = not content_type and bool(_CONTENT_TYPE_LINE_RE.match(line))
            if collecting:
                content_type = [line.split(b":", 1)[1]]
            continue
        # A blank or non-header line ends the header block: open the container, if any.
        is_container, boundary, is_digest = _container(b"".join(content_type), digest[-1])
        content_type, collecting = [], False
        in_headers = False
        if is_container:
            stack.append(boundary)
            digest.append(is_digest)
            if boundary is not None:
                open_boundaries[boundary] += 1
            else:
                in_headers = True  # a message/* body starts with the inner message's headers
            deepest = max(deepest, len(stack))
            if deepest > stop_above:
                break
    return deepest
