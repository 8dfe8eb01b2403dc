"""Text helpers shared by the content checks: normalising, closing lines, evidence snippets."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from gateway.checks._scope import InScope, describe

# Curly and look-alike apostrophes are read as the straight one (').
_CURLY = ("\u2019", "\u2018", "\u02bc", "\u2032", "\uff07", "`")
_WHITESPACE_RE = re.compile(r"\s+")

# Letters that look like Latin ones, read as those: "ѕеcrеt" with Cyrillic ѕ and е, "ꜱᴇᴄʀᴇᴛ" in
# small capitals, "ｓｅｃｒｅｔ" full-width or "𝐬𝐞𝐜𝐫𝐞𝐭" in mathematical bold would otherwise pass a
# phrase list as other words. One character for one, so that positions in the folded text
# are positions in the text as written (its evidence is quoted as written).
_CONFUSABLES = (
    "аaвbеeёeкkмmнhоoрpсcтtуyхxѕsіiїiјjԁdԛqԝwӏlһhɡgıiℓlοoαaνvρpυuιiκkχxτt"
    "АAВBЕEКKМMНHОOРPСCТTХXУYЅSІIЈJԌGΑAΒBΕEΖZΗHΙIΚKΜMΝNΟOΡPΤTΥYΧX"
    "ᴀaʙbᴄcᴅdᴇeꜰfɢgʜhɪiᴊjᴋkʟlᴍmɴnᴏoᴘpʀrꜱsᴛtᴜuᴠvᴡwʏyᴢz"
)


# Where NFKC makes single Latin letters and digits of other characters: Latin extensions and
# phonetic letters, letter-like symbols, enclosed (circled) ones, full-width forms and the
# mathematical alphabets.
_FOLDED_BLOCKS = (
    (0x0100, 0x0300),
    (0x1D00, 0x1E00),
    (0x2000, 0x2500),
    (0x2C00, 0x2D00),
    (0xA700, 0xA800),
    (0xFF00, 0xFFF0),
    (0x10700, 0x10800),
    (0x1D400, 0x1D800),
    (0x1F100, 0x1F200),
    (0x1FB00, 0x1FC00),
)
_ASTRAL_FOLDED_RE = re.compile(
    "[" + "".join(f"{chr(a)}-{chr(b - 1)}" for a, b in _FOLDED_BLOCKS[6:]) + "]"
)


def _lookalikes() -> dict[str, str]:
    table = dict(zip(_CONFUSABLES[::2], _CONFUSABLES[1::2], strict=True))
    for first, end in _FOLDED_BLOCKS:
        for code in range(first, end):
            folded = unicodedata.normalize("NFKC", chr(code))
            if len(folded) == 1 and folded.isascii() and folded.isalnum():
                table.setdefault(chr(code), folded)
    return table


def _character_class(characters: Iterable[str]) -> str:
    """A regular expression's class of `characters`, consecutive ones as ranges."""
    runs: list[list[int]] = []
    for code in sorted(map(ord, characters)):
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return (
        "["
        + "".join(
            re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
            for a, b in runs
        )
        + "]"
    )


_LOOKALIKE = _lookalikes()
_LOOKALIKE_TABLE = str.maketrans(_LOOKALIKE)
_BMP_LOOKALIKE_RE = re.compile(_character_class(c for c in _LOOKALIKE if ord(c) < 0x10000))


def read_as_latin(text: str) -> str:
    """`text` with each look-alike of a Latin letter or digit as that letter, one for one."""
    if text.isascii():
        return text
    # Most mail with any non-ASCII character (curly quotes, dashes, £, emoji) has no
    # look-alike: two quick scans say so (a class with characters beyond the BMP scans
    # slowly, so those are looked for only in a text that has any).
    if _BMP_LOOKALIKE_RE.search(text) is None and (
        len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text)
        or _ASTRAL_FOLDED_RE.search(text) is None
    ):
        return text
    return text.translate(_LOOKALIKE_TABLE)


# Lines that end a mail but are not the sender's closing: device footers, disclaimers, and the
# attribution line of a reply whose quote the parser did not strip.
_FOOTER_RE = re.compile(
    r"""^(?:
        sent\ from\ (?:my\ )?[\w\-. ]{2,40}
      | get\ outlook\ for\ .{0,30}
      | please\ consider\ the\ environment\b.*
      | (?:this|the\ information\ in\ this)\ (?:e-?mail|message)\b.*\b(?:confidential|intended)\b.*
      | (?:disclaimer|confidentiality\ notice)\b.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_ATTRIBUTION_RE = re.compile(
    r"^(?:on\b.{3,200}\bwrote:|-{2,}\s*original message\s*-{2,}|from:\s.+)$", re.IGNORECASE
)


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text` (for long constant word lists)."""
    return frozenset(text.split())


def _straight(text: str) -> str:
    # str.translate is slow on non-ASCII text; a few replace() calls are not.
    if text.isascii():
        return text.replace("`", "'") if "`" in text else text
    for curly in _CURLY:
        if curly in text:
            text = text.replace(curly, "'")
    return text


def normalise(text: str) -> str:
    """Straight apostrophes, look-alike letters as Latin ones, and every run of whitespace
    (line breaks included) as one space."""
    # str.split() splits on exactly the characters `\s` matches (str.isspace), in C.
    return " ".join(read_as_latin(_straight(text)).split())


def normalise_marked(text: str) -> str:
    """`normalise(text)` position for position, but a whitespace run holding a blank line (a
    paragraph break) is a newline instead of a space, and letters are as written: evidence is
    cut at paragraphs, and quotes what the reader saw."""
    return _WHITESPACE_RE.sub(_one_space_or_break, _straight(text)).strip()


def _one_space_or_break(match: re.Match[str]) -> str:
    return "\n" if match.group().count("\n") >= 2 else " "


def closing_lines(text: str, count: int = 4) -> list[str]:
    """The last `count` non-empty lines the sender wrote, without device footers, disclaimers
    or a trailing reply attribution (and anything after it)."""
    lines = text.splitlines()
    low = text.lower()
    if "wrote:" in low or "original message" in low or "from:" in low:
        for i, raw in enumerate(lines):
            if _ATTRIBUTION_RE.match(raw.strip()):
                lines = lines[:i]
                break
    kept: list[str] = []
    for raw in reversed(lines):
        line = raw.strip()
        if line and not _FOOTER_RE.match(line):
            kept.append(line)
            if len(kept) == count:
                break
    kept.reverse()
    return kept


def snippet(text: str, start: int, end: int, width: int = 60) -> str:
    """`text[start:end]` with about `width` characters either side, cut at word boundaries and
    never beyond the paragraph (newline) it is in; on one line."""
    floor = text.rfind("\n", 0, start) + 1
    ceiling = text.find("\n", end)
    ceiling = len(text) if ceiling == -1 else ceiling
    left = max(floor, start - width)
    right = min(ceiling, end + width)
    if left > floor:
        space = text.find(" ", left, start)
        left = space + 1 if space != -1 else left
    if right < ceiling:
        space = text.rfind(" ", end, right)
        right = space if space != -1 else right
    shown = " ".join(text[left:right].split())
    return ("…" if left > floor else "") + shown + ("…" if right < ceiling else "")


def phrase_pattern(phrase: str) -> str:
    """A lower-case phrase as a regular expression: whitespace runs match any whitespace,
    apostrophes are optional ("don't" also matches "dont"), `*` is exactly one whole word."""
    parts = []
    for word in normalise(phrase).split(" "):
        if word == "*":
            parts.append(r"[^\W_]+(?:'[^\W_]+)?")
        else:
            parts.append("'?".join(re.escape(piece) for piece in word.split("'")))
    return r"\s+".join(parts)


def whole_words(phrases: Iterable[str], *, start_boundary: bool = True) -> str:
    """One alternation of `phrases`, longest first, matched on whole words only (without the
    check before the first word when the caller only tries positions where a word starts)."""
    ordered = sorted({p for p in phrases if p.strip()}, key=lambda p: (-len(p), p))
    if not ordered:
        return r"(?!x)x"
    start = r"(?<!\w)" if start_boundary else ""
    return start + r"(?:" + "|".join(phrase_pattern(p) for p in ordered) + r")(?!\w)"


def scope_params(young: list[InScope]) -> dict[str, object]:
    """Who the finding concerns, in the shape the notices read (`young_person` is the first)."""
    return {
        "young_person": describe(young[0].contact),
        "young_people": [describe(y.contact) for y in young],
    }
