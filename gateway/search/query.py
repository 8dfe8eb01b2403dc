"""The archive's search language: a tokenizer and a recursive-descent parser to a small AST.

Grammar (interface.md, "Search query language"), lowest precedence first:

    query   := conj EOF
    conj    := disj ( ["AND"] disj )*        terms side by side must all match
    disj    := unary ( "OR" unary )*         OR binds tighter than the implied AND
    unary   := ("-" | "NOT") unary | atom    a leading '-' negates the next term or group
    atom    := "(" conj ")" | term
    term    := FIELD ":" value | WORD | "quoted phrase"

OR binds tighter than AND, as in Gmail and most search boxes: `from:a OR from:b flag:x` means
(from a or from b) and flagged, which is what someone typing it into a search box means.
`OR`, `AND` and `NOT` are operators only in capitals; quote them to search for the word.

Text (bare words, phrases, `subject:`) is cut into tokens the way both full-text indexes cut
it: runs of letters and digits, case-folded. A word such as `well-being` or `Sam's` is several
tokens and matches them adjacent and in order, like a phrase.

Everything here is pure: no database, no configuration, no clock.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal, TypeAlias

AddressField = Literal["from", "to", "cc", "bcc", "contact"]
ADDRESS_FIELDS: tuple[AddressField, ...] = ("from", "to", "cc", "bcc", "contact")
FIELDS = (*ADDRESS_FIELDS, "subject", "flag", "verdict", "after", "before")

# The finding codes and verdicts of interface.md ("Verdicts and finding codes"): the contract
# a safeguarding lead searches by. A misspelt code would otherwise silently match nothing.
FINDING_CODES = (
    "missing_required_cc",
    "no_consent",
    "mass_mail_visible_recipients",
    "informal_sign_off",
    "out_of_hours",
    "personal_contact_details",
    "unapproved_third_party",
    "risk_language",
    "sender_not_permitted",
    # The gateway's own, beyond interface.md: a check that failed on a message (a bug, logged),
    # which flags it for review so that nothing goes unchecked unseen.
    "check_error",
)
VERDICTS = ("reject", "defer", "rewrite", "flag", "deliver")

# Names people reach for that difflib cannot map to a field by spelling alone.
_HINTS: dict[str, tuple[str, ...]] = {
    "date": ("after", "before"),
    "on": ("after", "before"),
    "since": ("after",),
    "until": ("before",),
    "sender": ("from",),
    "recipient": ("to", "contact"),
    "rcpt": ("to", "contact"),
    "is": ("flag", "verdict"),
    "code": ("flag",),
    "finding": ("flag",),
    "status": ("verdict",),
}

_TOKEN_RE = re.compile(r"[^\W_]+")  # letters and digits: what FTS5 unicode61 and PG keep
_FIELD_RE = re.compile(r"([A-Za-z_]+):")
_ADDRESS_RE = re.compile(r"(?:[^\s@]+@)?[^\s@]+")  # the tokenizer already stopped at ( ) "


_WHOLE_ADDRESS_RE = re.compile(r"[^\s@()\"<>]+@[^\s@()\"<>]+")


def is_whole_address(value: str) -> bool:
    """Whether `value` can follow `contact:` (or `from:` ...) as one whole address: the
    console's and `export --contact`'s check before they write it into a query."""
    return _WHOLE_ADDRESS_RE.fullmatch(value) is not None


class QueryError(ValueError):
    """A query that cannot be parsed; `position` is a 0-based index into the query text."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    @property
    def column(self) -> int:
        return self.position + 1

    def __str__(self) -> str:
        return f"{self.message} (at column {self.column})"


# ---------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Text:
    """Words that must appear adjacent and in order, in the subject or body (or subject only)."""

    tokens: tuple[str, ...]
    subject_only: bool = False


@dataclass(frozen=True)
class Address:
    """An address field: a whole address (`value` has '@') or every address at a domain."""

    field: AddressField
    value: str  # lower-case; an address, or a domain without the '@'
    domain: bool


@dataclass(frozen=True)
class Flag:
    code: str


@dataclass(frozen=True)
class Verdict:
    verdict: str


@dataclass(frozen=True)
class After:
    """Received on or after this date (from its first moment)."""

    day: date


@dataclass(frozen=True)
class Before:
    """Received before this date (up to its first moment, not including it)."""

    day: date


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Term: TypeAlias = Text | Address | Flag | Verdict | After | Before
Node: TypeAlias = Term | And | Or | Not


def text_tokens(text: str) -> tuple[str, ...]:
    """Lower-cased runs of letters and digits: how a query's words are cut, and on PostgreSQL
    the archived text's too (store.search.text_vector). Lower, not casefold: the indexes keep
    "ß" (FTS5's unicode61 too), and a casefolded "strasse" found no "Straße"."""
    if text.isascii():
        # ~5x faster than the pattern on a message's text; the same words (a test compares).
        return tuple(text.lower().translate(_ASCII_SEPARATORS).split())
    return tuple(t.lower() for t in _TOKEN_RE.findall(text))


_ASCII_SEPARATORS = {c: " " for c in range(128) if not chr(c).isalnum()}


# ---------------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Tok:
    kind: Literal["word", "phrase", "field", "lparen", "rparen", "or", "and", "not"]
    text: str  # the word, the phrase's inside, or the field's value
    pos: int
    name: str = ""  # field name, lower-case
    quoted: bool = False  # a field's value was a quoted phrase
    name_pos: int = 0


def _quoted(query: str, start: int) -> tuple[str, int]:
    """The inside of the quoted string opening at `start`, and the index after its close."""
    end = query.find('"', start + 1)
    if end < 0:
        raise QueryError('this quote is never closed; add a closing "', start)
    return query[start + 1 : end], end + 1


def _tokenize(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            toks.append(_Tok("lparen", ch, i))
            i += 1
        elif ch == ")":
            toks.append(_Tok("rparen", ch, i))
            i += 1
        elif ch == '"':
            inside, after = _quoted(query, i)
            toks.append(_Tok("phrase", inside, i))
            i = after
        elif ch == "-" and (i + 1 >= n or query[i + 1].isspace()):
            raise QueryError("'-' must be followed by the term it excludes (no space)", i)
        elif ch == "-" and (not toks or query[i - 1].isspace() or query[i - 1] == "("):
            toks.append(_Tok("not", ch, i))  # leading '-': negation; inside a word it is text
            i += 1
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] not in '()"':
                i += 1
            word = query[start:i]
            field = _FIELD_RE.match(word)
            if field is None:
                kind = {"OR": "or", "AND": "and", "NOT": "not"}.get(word, "word")
                toks.append(_Tok(kind, word, start))  # type: ignore[arg-type]
                continue
            name = field.group(1).lower()
            value, value_pos, quoted = word[field.end() :], start + field.end(), False
            if not value and i < n and query[i] == '"':
                value, i = _quoted(query, i)
                quoted = True
            toks.append(_Tok("field", value, value_pos, name=name, quoted=quoted, name_pos=start))
    return toks


# ------------------------------------------------------------------------------------- parser


def _unknown_field(name: str, value: str, pos: int) -> QueryError:
    hints = _HINTS.get(name)
    if hints is None:
        hints = tuple(difflib.get_close_matches(name, FIELDS, n=1, cutoff=0.6))
    if hints:
        text = f"unknown field `{name}:` — did you mean {' or '.join(f'`{h}:`' for h in hints)}?"
    else:
        text = f"unknown field `{name}:` (fields: {' '.join(f'{f}:' for f in FIELDS)})"
    return QueryError(f'{text} To search for the text itself, quote it: "{name}:{value}"', pos)


# The console's words for verdicts, which a lead will type: the code each means.
_VERDICT_WORDS = {
    "held": "defer",
    "hold": "defer",
    "refused": "reject",
    "bounced": "reject",
    "changed": "rewrite",
    "hidden": "rewrite",
    "bcc": "rewrite",
    "flagged": "flag",
}


def _choice(value: str, options: tuple[str, ...], what: str, pos: int) -> str:
    folded = value.lower()
    if folded in options:
        return folded
    meant = _VERDICT_WORDS.get(folded) if what == "verdict" else None
    if meant is not None:
        raise QueryError(f"unknown {what} `{value}` — for that, write `{what}:{meant}`", pos)
    close = difflib.get_close_matches(folded, options, n=1, cutoff=0.6)
    hint = f" — did you mean `{close[0]}`?" if close else f" (one of: {', '.join(options)})"
    raise QueryError(f"unknown {what} `{value}`{hint}", pos)


def _day(value: str, name: str, pos: int) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(
            f"{name}: takes a date as YYYY-MM-DD, e.g. {name}:2026-11-23 (got `{value}`)", pos
        ) from None


def _address(name: AddressField, value: str, pos: int) -> Address:
    folded = value.strip().lower()
    if folded.startswith("@"):
        folded = folded[1:]  # `from:@safe.example` reads naturally as a domain too
    if not _ADDRESS_RE.fullmatch(folded):
        raise QueryError(
            f"{name}: takes an e-mail address or a domain, e.g. {name}:sam@home.example or "
            f"{name}:home.example (got `{value}`)",
            pos,
        )
    return Address(name, folded, domain="@" not in folded)


def _field_term(tok: _Tok, codes: tuple[str, ...]) -> Term:
    name, value, pos = tok.name, tok.text, tok.pos
    if name not in FIELDS:
        raise _unknown_field(name, value, tok.name_pos)
    if not value.strip():
        raise QueryError(f"{name}: needs a value right after the colon (no space)", tok.name_pos)
    if name in ADDRESS_FIELDS:
        return _address(name, value, pos)  # type: ignore[arg-type]
    if name == "subject":
        tokens = text_tokens(value)
        if not tokens:
            raise QueryError(f"subject: `{value}` has no letters or digits to search for", pos)
        return Text(tokens, subject_only=True)
    if tok.quoted:
        raise QueryError(f"{name}: takes a single value, not a quoted phrase", pos)
    if name == "flag":
        return Flag(_choice(value, codes, "finding code", pos))
    if name == "verdict":
        return Verdict(_choice(value, VERDICTS, "verdict", pos))
    if name == "after":
        return After(_day(value, name, pos))
    return Before(_day(value, name, pos))


# Bounds no person searching comes near; past them a query would exhaust Python's recursion or
# SQLite's expression depth (1,000) instead of being answered.
MOST_TERMS = 256
MOST_DEPTH = 32


class _Parser:
    def __init__(self, query: str, codes: tuple[str, ...]) -> None:
        self.query = query
        self.codes = codes
        self.toks = _tokenize(query)
        self.i = 0
        self.depth = 0
        terms = [t for t in self.toks if t.kind in ("word", "phrase", "field")]
        if len(terms) > MOST_TERMS:
            raise QueryError(
                f"more than {MOST_TERMS} terms; search for fewer at a time", terms[MOST_TERMS].pos
            )

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            raise QueryError("the query is empty; give words, phrases or fields to search", 0)
        node = self.conj()
        extra = self.peek()
        if extra is not None:  # only a ')' can stop conj() early
            raise QueryError("this ')' closes no '('", extra.pos)
        return node

    def conj(self) -> Node:
        items = [self.disj()]
        while (tok := self.peek()) is not None and tok.kind != "rparen":
            if tok.kind == "and":
                self.take()
                if (nxt := self.peek()) is None or nxt.kind in ("rparen", "or", "and"):
                    raise QueryError("AND needs a term on each side", tok.pos)
            items.append(self.disj())
        return _join(And, items)

    def disj(self) -> Node:
        items = [self.unary()]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.take()
            if (nxt := self.peek()) is None or nxt.kind in ("rparen", "or", "and"):
                raise QueryError("OR needs a term on each side", tok.pos)
            items.append(self.unary())
        return _join(Or, items)

    def nested(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MOST_DEPTH:
            raise QueryError(f"brackets and exclusions nested more than {MOST_DEPTH} deep", tok.pos)

    def unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise QueryError("the query ends where a term was expected", len(self.query))
        if tok.kind == "not":
            self.take()
            nxt = self.peek()
            if nxt is None or nxt.kind in ("rparen", "or", "and"):
                raise QueryError(f"{tok.text} must be followed by the term it excludes", tok.pos)
            self.nested(tok)
            inner = self.unary()
            self.depth -= 1
            return inner.item if isinstance(inner, Not) else Not(inner)
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "lparen":
            if (nxt := self.peek()) is not None and nxt.kind == "rparen":
                raise QueryError("empty brackets: put terms between ( and )", tok.pos)
            self.nested(tok)
            node = self.conj()
            close = self.peek()
            if close is None:
                raise QueryError("this '(' is never closed; add a ')'", tok.pos)
            self.take()
            self.depth -= 1
            return node
        if tok.kind == "rparen":
            raise QueryError("this ')' closes no '('", tok.pos)
        if tok.kind in ("or", "and"):
            raise QueryError(f"{tok.text} needs a term on each side", tok.pos)
        if tok.kind == "field":
            return _field_term(tok, self.codes)
        tokens = text_tokens(tok.text)
        if not tokens:
            what = "phrase" if tok.kind == "phrase" else "word"
            raise QueryError(f"{what} `{tok.text}` has no letters or digits to search for", tok.pos)
        return Text(tokens)


def _join(kind: type[And] | type[Or], items: list[Node]) -> Node:
    """One item stands alone; nested groups of the same kind are flattened."""
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


def parse(query: str, *, finding_codes: tuple[str, ...] = FINDING_CODES) -> Node:
    """Parse a search query into its AST; raises QueryError naming the reason and position.

    `finding_codes` are those `flag:` accepts (a site with checks of its own may add codes).
    """
    return _Parser(query, finding_codes).parse()
