"""Changes the gateway makes to a delivered copy, on raw bytes, leaving the rest untouched.

The archive always keeps the original; these produce what recipients receive.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from email.errors import HeaderParseError
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage

from gateway.message.model import Address

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def split_header(raw: bytes) -> tuple[bytes, bytes]:
    """(header block including its final line break, body); no blank line: all header."""
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    cut = match.start() + (2 if raw[match.start() : match.start() + 2] == b"\r\n" else 1)
    return raw[:cut], raw[cut:]


def _fields(header: bytes) -> list[bytes]:
    """Header fields with their folded continuation lines kept together."""
    fields: list[bytes] = []
    for line in header.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def _name(field: bytes) -> bytes:
    return field.split(b":", 1)[0].strip().lower()


def header_value(raw: bytes, name: str) -> str | None:
    """The first `name:` field's unfolded value, decoded leniently (no full parse)."""
    header, _ = split_header(raw)
    wanted = name.lower().encode()
    for field in _fields(header):
        if _name(field) == wanted:
            value = field.split(b":", 1)[1]
            return " ".join(value.decode("utf-8", "replace").split())
    return None


def replace_headers(raw: bytes, remove: Sequence[str], add: Sequence[tuple[str, str]]) -> bytes:
    """Drop every field named in `remove`, then add `add` where the first removed one stood."""
    header, body = split_header(raw)
    names = {n.lower().encode() for n in remove}
    newline = b"\r\n" if b"\r\n" in header else b"\n"
    # A folded value's lines end "\n": written with the message's own line ending.
    added = b"".join(f"{k}: {v}".replace("\n", newline.decode()).encode() + newline for k, v in add)
    out: list[bytes] = []
    placed = False
    for field in _fields(header):
        if _name(field) in names:
            if not placed:
                out.append(added)
                placed = True
            continue
        out.append(field)
    if not placed:
        # Before the blank line that ends the header (which split_header kept on the block).
        if out and out[-1].strip() == b"":
            out.insert(len(out) - 1, added)
        else:
            out.append(added)
    return b"".join(out) + body


def hide_recipients(
    raw: bytes, keep_to: Sequence[Address] = (), keep_cc: Sequence[Address] = ()
) -> bytes:
    """The Bcc fix for mass mail: nobody sees the addresses but `keep_to` and `keep_cc` (staff:
    "moving external addresses to BCC"); delivery is unchanged because the envelope, not the
    header, says who receives it. An address a plain header cannot carry (a non-ASCII local
    part) is hidden too, rather than fail the message."""
    shown_to, shown_cc = _header_addresses(keep_to), _header_addresses(keep_cc)
    add = [("To", _fold("To", shown_to) if shown_to else "undisclosed-recipients:;")]
    if shown_cc:
        add.append(("Cc", _fold("Cc", shown_cc)))
    return replace_headers(raw, ["To", "Cc", "Bcc"], add)


# Folded at 78 characters, display names RFC 2047-encoded where they are not ASCII.
_FOLDING = email.policy.SMTP.clone(linesep="\n")
_LONGEST_NAME = 200  # longer display names are left out: the address alone


def header_writable(address: Address) -> bool:
    """Whether `hide_recipients` can show `address` in To or Cc (else it is hidden)."""
    return _header_address(address) is not None


def _header_address(a: Address) -> HeaderAddress | None:
    name = a.name if len(a.name) <= _LONGEST_NAME else ""
    try:
        return HeaderAddress(display_name=name, addr_spec=a.email)
    except (ValueError, HeaderParseError):  # NonASCIILocalPartDefect, a malformed one
        return None


def _header_addresses(addresses: Sequence[Address]) -> list[HeaderAddress]:
    return [h for h in map(_header_address, addresses) if h is not None]


def _fold(name: str, addresses: Sequence[HeaderAddress]) -> str:
    """The field's value, its lines joined by "\n " (replace_headers writes the message's own
    line ending)."""
    message = EmailMessage(policy=_FOLDING)
    message[name] = addresses
    return _FOLDING.fold(name, message[name])[len(name) + 2 :].rstrip("\n")
