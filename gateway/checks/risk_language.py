"""Secrecy or grooming language in a message to a young person (phrase lists in rules/data).

The categories, phrases and patterns live in `rules/data/risk_language.toml`, maintained by
safeguarding leads. They are read and compiled when a pack is loaded (each category indexed by
the words its phrases and patterns can start with); `check` only scans. The subject and the text
the sender wrote in this message are scanned, and quoted history only when the message is not a
reply (In-Reply-To/References): in a reply it holds a young person's own words, while "> " lines
in a fresh message would otherwise hide the sender's. The signature (all below a "-- " line)
is read too, or writing below one would hide text from the check; in its paragraphs worded
like a confidentiality notice ("if you are not the intended recipient, delete this email")
all but the secrecy phrases. Text is read case-insensitively, on whole words, with curly
apostrophes as straight ones, letters that only look Latin (Cyrillic "е", small capitals,
full-width and mathematical letters) as the Latin ones, without the invisible characters the
parser leaves out (`gateway.message.text`), and every whitespace run (line breaks included)
as one space;
`*` in a phrase is exactly one word, and an apostrophe in a phrase may be left out ("dont
tell anyone").
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from re import _constants as _c
from re import _parser
from typing import Any

from gateway.checks._scope import young_recipients
from gateway.checks._settings import reject_unknown
from gateway.checks._text import (
    normalise,
    normalise_marked,
    scope_params,
    snippet,
    whole_words,
)
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "risk_language"
DATA_FILE = Path(__file__).resolve().parents[2] / "rules" / "data" / "risk_language.toml"
CONTEXT = 60
_CATEGORY_KEYS = frozenset({"description", "phrases", "patterns", "false_positive_notes"})


# Matching is on a lower-cased copy of the normalised text with one space in front, in which
# characters that can open a word ("(", quotes, "/") read as spaces. A second copy, in which all
# punctuation but the apostrophe reads as a space, is split into words: a category is only
# tried at the words its phrases and patterns can start with (an index built at load time), so
# a 2 kB message costs a few set operations and a handful of anchored matches per category
# instead of one regular-expression attempt per character.
_OPENER_CHARS = '([{<"“”‘/*_~'
_OPENERS = str.maketrans({c: " " for c in _OPENER_CHARS})
_OPENERS_RE = re.compile("[" + re.escape(_OPENER_CHARS) + "]")
_ASCII_SPLIT = str.maketrans(
    {chr(i): " " for i in range(128) if not (chr(i).isalnum() or chr(i) in "' ")}
)
_SPLIT_RE = re.compile(r"[^\w' ]|_")


def _blank_openers(text: str) -> str:
    # str.translate is fast only on ASCII text; a regular expression is faster otherwise.
    return text.translate(_OPENERS) if text.isascii() else _OPENERS_RE.sub(" ", text)


def _blank_punctuation(text: str) -> str:
    """Every character but letters, digits, apostrophes and spaces as a space."""
    return text.translate(_ASCII_SPLIT) if text.isascii() else _SPLIT_RE.sub(" ", text)


_UPPER_LITERAL_RE = re.compile(r"(?<!\\)[A-Z]")
_FIRST_WORDS_LIMIT = 400


def _nonword(items: list[Any]) -> bool:
    """`items` is one literal or class that matches only characters that end a word."""
    if len(items) != 1:
        return False
    op, av = items[0]
    members = [(op, av)] if op is _c.LITERAL else av if op is _c.IN else None
    if not members:
        return False
    for kind, value in members:
        if kind is _c.LITERAL:
            if chr(value).isalnum() or chr(value) in "'_":
                return False
        elif not (kind is _c.CATEGORY and value in (_c.CATEGORY_SPACE, _c.CATEGORY_NOT_WORD)):
            return False
    return True


def _first_words(items: list[Any], prefix: str, out: set[str]) -> bool:
    """Add to `out` every word a match of the parsed regex `items` can start with (lower-case,
    apostrophes as written); False when that cannot be known (a class, a repeat, ...)."""
    i = 0
    while i < len(items):
        if len(out) > _FIRST_WORDS_LIMIT:
            return False
        op, av = items[i]
        if op is _c.LITERAL and (chr(av).isalnum() or chr(av) == "'"):
            prefix += chr(av).lower()
            i += 1
            continue
        if op is _c.AT and av is _c.AT_BOUNDARY:
            if prefix:
                out.add(prefix)
                return True
            i += 1
            continue
        if op is _c.SUBPATTERN:
            return _first_words([*av[-1], *items[i + 1 :]], prefix, out)
        if op is _c.BRANCH:
            return all(_first_words([*alt, *items[i + 1 :]], prefix, out) for alt in av[1])
        if prefix and _nonword([items[i]]):
            out.add(prefix)  # the word ends at a space, a hyphen, ...
            return True
        if op is _c.MAX_REPEAT or op is _c.MIN_REPEAT:
            low, high, sub = av
            rest = items[i + 1 :]
            if prefix and _nonword(list(sub)):
                out.add(prefix)  # "top[- ]?up" can start with "top" ...
                return low > 0 or _first_words(rest, prefix, out)  # ... or "topup"
            if (low, high) != (0, 1):
                return False
            return _first_words([*sub, *rest], prefix, out) and _first_words(rest, prefix, out)
        return False
    if prefix:
        out.add(prefix)
        return True
    return False


def _pattern_start(pattern: str) -> tuple[str, frozenset[str]] | None:
    """(pattern without its leading \\b, the words it can start with), or None."""
    if not pattern.startswith(r"\b"):
        return None
    body = pattern[2:]
    words: set[str] = set()
    try:
        if not _first_words(list(_parser.parse(body)), "", words):
            return None
    except Exception:  # a private parser: any surprise just means "scan everywhere"
        return None
    return body, frozenset(words)


def _phrase_start(phrase: str) -> frozenset[str] | None:
    first = normalise(phrase).lower().split(" ")[0]
    first = _blank_punctuation(first).split(" ")[0]
    if first in {"*", ""}:
        return None
    return frozenset({first, first.replace("'", "")})


def _phrase_needs(phrase: str) -> tuple[frozenset[str], ...]:
    """Words a text must hold for `phrase` to match in it, besides the first: each inner word
    (between two spaces of the phrase, so matched whole), as any of its spellings in the
    word-split copy. Not the last word, which may match the start of one ("you" in "you'll")."""
    needs = []
    for word in normalise(phrase).lower().split(" ")[1:-1]:
        if word == "*":
            continue
        for piece in _blank_punctuation(word).split():
            piece = piece.strip("'")
            if piece:
                needs.append(frozenset({piece, piece.replace("'", "")}))
    return tuple(needs)


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    anchored: re.Pattern[str]  # tried only where an indexed word starts
    first_words: frozenset[str]
    loose: re.Pattern[str] | None  # phrases/patterns whose first word is unknown: searched
    # By first word: what each of its phrases needs (_phrase_needs); a first word that a
    # pattern, or a phrase needing nothing more, can start with is not here (always tried).
    needs: Mapping[str, tuple[tuple[frozenset[str], ...], ...]]

    def search(self, matching: str, words: frozenset[str], split: str) -> re.Match[str] | None:
        """The first match in `matching` (the prepared text); `words` and `split` index it."""
        best = self.loose.search(matching) if self.loose is not None else None
        positions: list[int] = []
        for word in self.first_words & words:
            needs = self.needs.get(word)
            # "a present for you" is not looked for at each "a" of a text without "present".
            if needs is not None and not any(
                all(not spellings.isdisjoint(words) for spellings in need) for need in needs
            ):
                continue
            probe = f" {word} "
            at = split.find(probe)
            while at != -1:
                positions.append(at + 1)
                at = split.find(probe, at + 1)
        for position in sorted(positions):
            if best is not None and position >= best.start():
                break
            match = self.anchored.match(matching, position)
            if match is not None:
                return match
        return best


@lru_cache(maxsize=8)
def prepare(text: str) -> tuple[str, str, frozenset[str]]:
    """The matching copy, the word-split copy and its set of words, for `Category.search`.
    Both copies are `" " + normalise(text)` position for position. Cached: each of a pack's
    risk_language rules (one per group of categories) reads the same few texts."""
    normal = normalise(text)
    lower = normal.lower()
    if len(lower) != len(normal):  # a few characters lower-case to two
        lower = "".join(c.lower() if len(c.lower()) == 1 else c for c in normal)
    matching = " " + _blank_openers(lower) + " "
    split = _blank_punctuation(matching).replace(" '", "  ").replace("' ", "  ")
    return matching, split, frozenset(split.split())


@dataclass(frozen=True)
class Settings:
    categories: tuple[Category, ...]


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _compile(name: str, raw: object, path: Path) -> Category:
    where = f"{path.name} [category.{name}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(raw) - _CATEGORY_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"{where}: description is missing")
    phrases = raw.get("phrases", [])
    patterns = raw.get("patterns", [])
    if not _strings(phrases):
        raise ValueError(f"{where}: phrases must be a list of strings")
    if not _strings(patterns):
        raise ValueError(f"{where}: patterns must be a list of strings")
    if not phrases and not patterns:
        raise ValueError(f"{where}: no phrases or patterns")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}: pattern {pattern!r} is not valid: {exc}") from None
    first_words: set[str] = set()
    needs: dict[str, list[tuple[frozenset[str], ...]]] = {}
    always: set[str] = set()
    indexed_phrases, loose_phrases = [], []
    for phrase in phrases:
        start = _phrase_start(phrase)
        if start is None:
            loose_phrases.append(phrase)
        else:
            indexed_phrases.append(phrase)
            first_words |= start
            need = _phrase_needs(phrase)
            for word in start:
                if need:
                    needs.setdefault(word, []).append(need)
                else:
                    always.add(word)
    anchored, loose = [], []
    if indexed_phrases:
        lowered = (normalise(p).lower() for p in indexed_phrases)
        anchored.append(whole_words(lowered, start_boundary=False))
    if loose_phrases:
        loose.append(whole_words(normalise(p).lower() for p in loose_phrases))
    for pattern in patterns:
        start = _pattern_start(pattern)
        if start is None:
            loose.append(f"(?:{pattern})")
        else:
            anchored.append(f"(?:{start[0]})")
            first_words |= start[1]
            always |= start[1]
    flags = re.IGNORECASE if any(_UPPER_LITERAL_RE.search(p) for p in patterns) else 0
    return Category(
        name=name,
        description=" ".join(description.split()),
        anchored=re.compile("|".join(anchored) or r"(?!x)x", flags),
        first_words=frozenset(first_words),
        loose=re.compile("|".join(loose), flags) if loose else None,
        needs={w: tuple(n) for w, n in needs.items() if w not in always},
    )


@lru_cache(maxsize=8)
def _load(path: Path, stamp: tuple[int, int]) -> dict[str, Category]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"category"}
    if unknown:
        raise ValueError(f"{path.name}: unknown key(s) {', '.join(sorted(unknown))}")
    categories = data.get("category")
    if not isinstance(categories, dict) or not categories:
        raise ValueError(f"{path.name} defines no [category.NAME] tables")
    return {name: _compile(name, raw, path) for name, raw in categories.items()}


def load_categories(path: Path = DATA_FILE) -> dict[str, Category]:
    """Every category of the data file, compiled; re-read only when the file changes."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return _load(path, (stat.st_mtime_ns, stat.st_size))


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    reject_unknown(raw, {"categories"})
    known = load_categories()
    names = raw.get("categories", list(known))
    if not _strings(names) or not names:
        raise ValueError("categories must be a non-empty list of category names")
    for name in names:
        if name not in known:
            raise ValueError(
                f"categories: unknown category {name!r} (known: {', '.join(sorted(known))})"
            )
    return Settings(tuple(known[name] for name in dict.fromkeys(names)))


# A signature paragraph worded like a confidentiality notice or company details: there "delete
# this email" and "do not show it to anyone" are boilerplate, so its secrecy phrases are not
# read (the other categories are). Only a notice's own wording counts: "keep this confidential"
# in a PS below the signature line is still read.
_DISCLAIMER = re.compile(
    r"intended (?:solely |only )?(?:for the (?:use of the )?(?:named )?(?:addressee|recipient)"
    r"|recipient)|(?:sent|received|reached you|delivered) (?:to you )?in error"
    r"|if you are not the (?:named |intended )?(?:addressee|recipient)|disclaimer"
    r"|registered (?:in england|charity|office|company)|(?:company|charity) (?:no|number)\b",
    re.IGNORECASE,
)


def _split_disclaimers(signature: str) -> tuple[str, str]:
    """The signature's paragraphs (blank-line separated) as (the rest, the disclaimers)."""
    rest, notices = [], []
    for paragraph in re.split(r"\n\s*\n", signature):
        notice = _DISCLAIMER.search(" ".join(paragraph.split()))  # a line break is a space
        (notices if notice else rest).append(paragraph)
    return "\n\n".join(rest), "\n\n".join(notices)


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    settings: Settings = rule.settings
    young = young_recipients(message, view, now, rule)
    if not young:
        return []
    findings = []
    # Quoted text is a young person's words only in a real reply; in a fresh message, "> "
    # lines (or a forwarded part) are the sender's own choice, and read like new text.
    quoted = "" if message.is_reply else message.quoted_text
    signature, notices = _split_disclaimers(message.signature)
    # What only the HTML alternative says is shown to the reader, so it is read too.
    texts = [(message.new_text, True), (message.subject, True), (quoted, True)]
    texts += [(signature, True), (notices, False), (message.alternative_text, True)]
    for text, secrecy in texts:
        if not text:
            continue
        matching, split, words = prepare(text)
        for category in settings.categories:
            if category.name in {f.params["category"] for f in findings}:
                continue
            if category.name == "secrecy" and not secrecy:
                continue
            match = category.search(matching, words, split)
            if match is None:
                continue
            # Positions in `matching` are those of " " + normalise(text), and of this copy.
            shown = " " + normalise_marked(text)
            findings.append(
                Finding(
                    code=CODE,
                    rule=rule.id,
                    action=rule.action,
                    recipient=young[0].address.email,
                    evidence=snippet(shown, match.start(), match.end(), CONTEXT).strip(),
                    params={
                        "category": category.name,
                        "description": category.description,
                        "phrase": " ".join(shown[match.start() : match.end()].split()),
                        **scope_params(young),
                    },
                )
            )
    order = {c.name: i for i, c in enumerate(settings.categories)}
    return sorted(findings, key=lambda f: order[f.params["category"]])
