"""The passages a finding quotes (its evidence), marked in the message text for the reader.

A check's evidence is the passage as it matched: a sign-off line (several joined by " / "), a
phone number, a phrase with a little context. It is looked for in the text with any run of
white space standing for any other, and any case; evidence that is not in the text (a time of
sending) marks nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from gateway.search.labels import FINDING_LABELS


@dataclass(frozen=True)
class Mark:
    start: int
    end: int
    codes: tuple[str, ...]  # what it was flagged as (two findings may quote one passage)


_APOSTROPHE = re.compile(r"['’]")


def _pattern(passage: str) -> re.Pattern[str] | None:
    # A snippet cut short ends (or starts) with an ellipsis the text does not have.
    words = passage.strip().strip("…").split()
    if not words or len("".join(words)) < 2:
        return None  # a single character ('x') would mark every x in the message
    escaped = (_APOSTROPHE.sub("['’]", re.escape(w)) for w in words)
    return re.compile(r"\s+".join(escaped), re.IGNORECASE)


def find_marks(text: str, evidence: Iterable[tuple[str, str]]) -> list[Mark]:
    """Spans of `text` quoted by each (code, evidence), overlaps merged, in order."""
    spans: list[Mark] = []
    for code, passage in evidence:
        for part in {passage, *passage.split(" / ")}:
            pattern = _pattern(part)
            if pattern is not None:
                spans += [Mark(m.start(), m.end(), (code,)) for m in pattern.finditer(text)]
    spans.sort(key=lambda m: (m.start, -m.end))
    merged: list[Mark] = []
    for mark in spans:
        if merged and mark.start < merged[-1].end:
            last = merged[-1]
            codes = last.codes + tuple(c for c in mark.codes if c not in last.codes)
            merged[-1] = Mark(last.start, max(last.end, mark.end), codes)
        else:
            merged.append(mark)
    return merged


def highlighted(text: str, marks: Sequence[Mark]) -> Markup:
    """`text`, escaped, with each mark in <mark>; a screen reader hears what it was flagged as."""
    out: list[str] = []
    at = 0
    for mark in marks:
        label = ", ".join(
            FINDING_LABELS.get(code, code.replace("_", " ")).lower() for code in mark.codes
        )
        out.append(str(escape(text[at : mark.start])))
        out.append(
            f'<mark class="finding" data-code="{escape(" ".join(mark.codes))}">'
            f"{escape(text[mark.start : mark.end])}</mark>"
            f'<span class="visually-hidden"> (flagged: {escape(label)})</span>'
        )
        at = mark.end
    out.append(str(escape(text[at:])))
    return Markup("".join(out))
