"""Address-list headers (From, To, Cc, Bcc) to `Address` values.

`email.utils.getaddresses` is used rather than policy.default's header objects: measured
here, the latter's parser is quadratic on some inputs (100 kB of backslashes in a To: header
took 36 s; 1000 parts with 2 kB Content-Type headers, 27 s), while getaddresses stays linear.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from email_validator import validate_email

from gateway.message.model import Address, clean_display_name, normalise_email
from gateway.message.text import decode_rfc2047


def checked_address(text: str) -> str:
    """An address as the relay takes it in RCPT TO: checked by email-validator without DNS
    (the gateway may run offline; `test_environment` lets *.test through as well as
    *.example), normalised and lower-cased. Raises EmailNotValidError, saying why."""
    return validate_email(
        text, check_deliverability=False, test_environment=True
    ).normalized.lower()


# After normalisation: a local part (dot-atom-ish or quoted) and a domain (name or literal).
# Deliberately loose; what it rejects is what cannot be a mailbox at all.
# No space or angle bracket anywhere, even where RFC 5322 would allow one in quotes: such
# addresses do not occur in practice and would not survive being written into a header.
_ADDR_SPEC_RE = re.compile(
    r'(?:"[^"\\\s<>]*(?:\\[^\s<>][^"\\\s<>]*)*"|[^\s@<>()\[\],;:"\\]+)'
    r'@(?:[^\s@<>()\[\],;:"\\]+|\[[^\[\]\s\\<>]*\])'
)
# Tokens of an address list: quoted string, comment, angle address, other text, one char.
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"?|\([^()]*\)?|<[^<>]*>?|[^",(<]+|.', re.DOTALL)
_GROUP_PREFIX_RE = re.compile(r'^[^:<>"@,()]*:')
# Used when getaddresses itself fails (it recurses on nested comments and on ':' runs):
# split at anything that cannot be inside a bare address, keep words with one "@". (A
# findall for "x+@x+" would be quadratic on long runs without "@".)
_NOT_IN_BARE_ADDR_RE = re.compile(r'[\s<>()\[\],;:"\\]+')
# The everyday mailbox: "name@example.org", "Alex Teacher <alex@example.org>" or a quoted
# name. getaddresses reads it character by character (most of the parse time of a message
# with a few recipients); for this ASCII subset it gives what the pattern's groups hold.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
# Possessive throughout: a long run of spaces or words that is not a mailbox fails in one
# pass instead of trying every split (quadratic: 100 kB of spaces took 10 s).
_PLAIN_ADDR = rf"[{_ATEXT}]++(?:\.[{_ATEXT}]++)*+@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)*+"
_PLAIN_MAILBOX_RE = re.compile(
    rf"[ \t]*+(?:(?P<bare>{_PLAIN_ADDR})"
    rf'|(?:"(?P<quoted>[^"\\\r\n]*+)"|(?P<words>[.{_ATEXT}]++(?: [.{_ATEXT}]++)*+))?'
    rf"[ \t]*+<(?P<angle>{_PLAIN_ADDR})>)[ \t]*+"
)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _segments(value: str) -> list[str]:
    """Split at top-level commas: not inside quotes, comments or angle brackets."""
    segments: list[str] = []
    current: list[str] = []
    for match in _TOKEN_RE.finditer(value):
        token = match.group(0)
        if token == ",":
            segments.append("".join(current))
            current = []
        else:
            current.append(token)
    segments.append("".join(current))
    return segments


def _is_blank(segment: str) -> bool:
    """Nothing but group syntax ("Team:", ";") and space: not an attempt at an address."""
    return not _GROUP_PREFIX_RE.sub("", segment.strip(), count=1).strip(" \t;")


def plain_mailbox(segment: str) -> tuple[str, str] | None:
    """(display name, address) of a segment in the everyday form, else None."""
    match = _PLAIN_MAILBOX_RE.fullmatch(segment)
    if match is None:
        return None
    bare, quoted, words, angle = match.group("bare", "quoted", "words", "angle")
    return ("", bare) if bare else (quoted or words or "", angle)


def parse_address_list(value: str, header: str) -> tuple[list[Address], list[str]]:
    """Mailboxes of one (already unfolded and cleaned) header value, plus defects.

    Groups are flattened; each comma-separated entry that yields no valid mailbox is
    dropped and reported. Never raises.
    """
    defects: list[str] = []
    addresses: list[Address] = []
    for segment in _segments(value):
        if _is_blank(segment):
            continue
        plain = plain_mailbox(segment)
        try:
            pairs = [plain] if plain else getaddresses([segment])
        except Exception:  # RecursionError on nested comments and ':' runs, among others
            defects.append(f"unparseable {header} header; bare addresses taken from it")
            words = _NOT_IN_BARE_ADDR_RE.split(segment)
            pairs = [("", word) for word in words if word.count("@") == 1]
        found = False
        for name, addr in pairs:
            email = normalise_email(addr)
            if _ADDR_SPEC_RE.fullmatch(email):
                name = clean_display_name(decode_rfc2047(name))
                addresses.append(Address(email=email, name=name))
                found = True
        if not found:
            defects.append(f"malformed address in {header} header: {_shown(segment.strip())}")
    return addresses, defects


def unique(addresses: list[Address] | tuple[Address, ...]) -> tuple[Address, ...]:
    """Each address once, first occurrence (and its display name) kept."""
    seen: set[str] = set()
    out: list[Address] = []
    for address in addresses:
        if address.email not in seen:
            seen.add(address.email)
            out.append(address)
    return tuple(out)
