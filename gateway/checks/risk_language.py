"""Secrecy or grooming language in a message to a young person (phrase lists in rules/data).

The categories, phrases and patterns live in `rules/data/risk_language.toml`, maintained by
safeguarding leads. They are read and compiled when a pack is loaded (one regular expression
per category); `check` only scans. The subject and the text the sender wrote in this message
are scanned, never quoted history (a young person's own words quoted back would fire) or the
signature. Text is read case-insensitively, on whole words, with curly apostrophes as straight
ones and every whitespace run (line breaks included) as one space; `*` in a phrase is exactly
one word, and an apostrophe in a phrase may be left out ("dont tell anyone").
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from gateway.checks._scope import young_recipients
from gateway.checks._text import normalise, scope_params, snippet, whole_words
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "risk_language"
DATA_FILE = Path(__file__).resolve().parents[2] / "rules" / "data" / "risk_language.toml"
CONTEXT = 60
_CATEGORY_KEYS = frozenset({"description", "phrases", "patterns", "false_positive_notes"})


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    matcher: re.Pattern[str]


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
    alternatives = [f"(?:{p})" for p in patterns]
    if phrases:
        alternatives.insert(0, whole_words(normalise(p).lower() for p in phrases))
    return Category(name, " ".join(description.split()), re.compile("|".join(alternatives), re.I))


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
    unknown = set(raw) - {"categories"}
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}")
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


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    settings: Settings = rule.settings
    young = young_recipients(message, view, now, rule)
    if not young:
        return []
    texts = [normalise(t) for t in (message.new_text, message.subject) if t]
    findings = []
    for category in settings.categories:
        for text in texts:
            match = category.matcher.search(text)
            if match is None:
                continue
            findings.append(
                Finding(
                    code=CODE,
                    rule=rule.id,
                    action=rule.action,
                    recipient=young[0].address.email,
                    evidence=snippet(text, match.start(), match.end(), CONTEXT),
                    params={
                        "category": category.name,
                        "description": category.description,
                        "phrase": match.group(),
                        **scope_params(young),
                    },
                )
            )
            break
    return findings
