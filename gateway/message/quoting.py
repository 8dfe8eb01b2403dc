"""Split body text into what the sender wrote now, their signature, and quoted history.

Recognised: "> " lines; attributions ("On <date>, <name> wrote:", possibly wrapped over
two or three lines, and the same in a few other languages); Outlook's "-----Original
Message-----", its "From:/Sent:/To:/Subject:" block and the "_____" rule before it;
Gmail's "---------- Forwarded message ---------" and Apple's "Begin forwarded message:".
Everything from the first block marker on is quoted. After an attribution, "> " lines are
quoted and any unquoted lines between them are an inline reply, so they stay new text.

The split is a heuristic over sender-controlled text: a sender can make their own words
look quoted. Checks that must not be evaded should read quoted text too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Longer lines are never attributions; the cap also bounds regex work per line.
_MAX_ATTRIBUTION = 600
_ATTRIBUTION_STARTS = ("on ", "am ", "le ", "el ", "op ", "ar ", "il ")
_ATTRIBUTION_RE = re.compile(
    r"(?:on\s.+\swrote"
    r"|am\s.+\sschrieb(?:\s.*)?"
    r"|le\s.+\sa\s+écrit"
    r"|el\s.+\sescribió"
    r"|op\s.+\sschreef(?:\s.*)?"
    r"|ar\s.+\sysgrifennodd(?:\s.*)?"
    r"|il\s.+\sha\s+scritto)\s*:",
    re.IGNORECASE,
)
# Any "... wrote:" line, trusted only when quoted lines follow it.
_WROTE_RE = re.compile(r".*\b(?:wrote|writes|schrieb|a écrit|escribió|schreef)\s*:", re.I)
_SEPARATOR_RE = re.compile(
    r"-{2,}\s*(?:original message|forwarded message|ursprüngliche nachricht"
    r"|weitergeleitete nachricht|message d'origine|message transféré|mensaje original"
    r"|mensaje reenviado|oorspronkelijk bericht|doorgestuurd bericht|messaggio originale"
    r"|messaggio inoltrato|neges wreiddiol)\s*-{2,}",
    re.IGNORECASE,
)
_BEGIN_FORWARD_RE = re.compile(
    r"(?:begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message réexpédié)\s*:",
    re.IGNORECASE,
)
_RULE_RE = re.compile(r"_{20,}")
# Outlook's header block, also as rendered from HTML with bold labels ("*From:*").
_BLOCK_FROM_RE = re.compile(r"\*?(?:from|von|de|van|oddi wrth)\s*:\*?\s*\S", re.I)
_BLOCK_SENT_RE = re.compile(
    r"\*?(?:sent|date|gesendet|datum|envoyé|enviado|fecha|verzonden|anfonwyd|dyddiad)\s*:", re.I
)
_BLOCK_TO_RE = re.compile(
    r"\*?(?:to|cc|subject|an|betreff|à|objet|para|asunto|aan|onderwerp|at|pwnc)\s*:", re.I
)


@dataclass(frozen=True, slots=True)
class SplitText:
    new: str
    signature: str
    quoted: str


def is_quoted(line: str) -> bool:
    return line.lstrip(" \t").startswith(">")


def _next_nonblank(lines: list[str], start: int) -> int:
    while start < len(lines) and not lines[start].strip():
        start += 1
    return start


def _outlook_block(lines: list[str], i: int) -> bool:
    """A "From:" line followed closely by "Sent:"/"Date:" and "To:"/"Subject:" lines."""
    if not _BLOCK_FROM_RE.match(lines[i].strip()):
        return False
    following = [line.strip() for line in lines[i + 1 : i + 7]]
    return any(_BLOCK_SENT_RE.match(line) for line in following) and any(
        _BLOCK_TO_RE.match(line) for line in following
    )


def _starts_block(lines: list[str], i: int, stripped: str) -> bool:
    """Does a quoted or forwarded block (taking the rest of the text) start at line i?"""
    first = stripped[0]
    if first == "-":
        return bool(_SEPARATOR_RE.fullmatch(stripped))
    if first == "_":
        if not _RULE_RE.fullmatch(stripped):
            return False
        j = _next_nonblank(lines, i + 1)
        return j < len(lines) and _outlook_block(lines, j)
    if stripped.endswith(":") and _BEGIN_FORWARD_RE.fullmatch(stripped):
        return True
    return ":" in stripped[:20] and _outlook_block(lines, i)


def _attribution(lines: list[str], i: int, stripped: str) -> tuple[int, bool]:
    """(lines the attribution spans, whether it is a well-formed one) or (0, False)."""
    if stripped[:3].lower().startswith(_ATTRIBUTION_STARTS):
        joined = stripped
        for span in (1, 2, 3):
            if len(joined) > _MAX_ATTRIBUTION:
                break
            if joined.endswith(":") and _ATTRIBUTION_RE.fullmatch(joined):
                return span, True
            if i + span >= len(lines) or not lines[i + span].strip():
                break
            joined = f"{joined} {lines[i + span].strip()}"
    if (
        stripped.endswith(":")
        and len(stripped) <= _MAX_ATTRIBUTION
        and _WROTE_RE.fullmatch(stripped)
    ):
        return 1, False
    return 0, False


def _trim(lines: list[str]) -> str:
    return "\n".join(lines).strip()


def split_reply(text: str) -> SplitText:
    """Split mail body text (``\\n`` line ends) into new text, signature and quoted text."""
    lines = text.split("\n")
    new: list[str] = []
    quoted: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            new.append(line)
            i += 1
            continue
        # Most lines are prose: nothing below can start at a line that has no ":" in its
        # first 20 characters or at its end, no "-", "_" or ">" first and no attribution word.
        if (
            stripped[0] not in "-_>"
            and ":" not in stripped[:20]
            and stripped[-1] != ":"
            and not stripped[:3].lower().startswith(_ATTRIBUTION_STARTS)
        ):
            new.append(line)
            i += 1
            continue
        if is_quoted(line):
            quoted.append(line)
            i += 1
            continue
        if _starts_block(lines, i, stripped):
            quoted.extend(lines[i:])
            break
        span, well_formed = _attribution(lines, i, stripped)
        if span:
            following = _next_nonblank(lines, i + span)
            if following < len(lines) and is_quoted(lines[following]):
                quoted.extend(lines[i : i + span])
                i += span
                continue
            # Unquoted history under an attribution: only a real one (with a date) starts it.
            if well_formed and any(ch.isdigit() for ch in " ".join(lines[i : i + span])):
                quoted.extend(lines[i:])
                break
        new.append(line)
        i += 1
    signature: list[str] = []
    for k, line in enumerate(new if "--" in text else ()):
        if line.rstrip(" ") == "--":  # "-- " (RFC 3676 §4.3), and the common "--"
            new, signature = new[:k], new[k + 1 :]
            break
    return SplitText(new=_trim(new), signature=_trim(signature), quoted=_trim(quoted))


# Words, and each symbol (emoji; a kiss's "x" is a word): how a plain part and its HTML
# alternative are compared.
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_WORD_RE = re.compile(r"\w+")


def split_alternative(plain: str, html: str) -> tuple[str, str]:
    """An HTML alternative's text (`html`) as (what reads like the sender's text, what reads
    like a signature), given its plain part's new text and signature (`plain`). The signature
    is what follows the plain part - typically a richer signature block - and what follows a
    "-- " line. When the plain part cannot be found in it, all of it is signature-like."""
    end = _after_every_token(plain, html)
    if end is None:
        end = _after_last_line(plain, html)
    if end is None:
        return "", html
    split = split_reply(html[:end])
    rest = [split.signature, split.quoted, html[end:].strip()]
    return split.new, "\n\n".join(t for t in rest if t)


def _after_every_token(plain: str, html: str) -> int | None:
    """Where in `html` every word and symbol of `plain` has occurred, in order."""
    wanted = [t.casefold() for t in TOKEN_RE.findall(plain)]
    found = 0
    for match in TOKEN_RE.finditer(html) if wanted else ():
        if match.group().casefold() == wanted[found]:
            found += 1
            if found == len(wanted):
                return match.end()
    return None


def _after_last_line(plain: str, html: str) -> int | None:
    """Where in `html` the last occurrence of the plain part's last line (its words) ends: the
    plain part often has what the HTML shows otherwise (link addresses, *emphasis*)."""
    lines = [line for line in plain.splitlines() if _WORD_RE.search(line)]
    if not lines:
        return None
    # Its last few words are enough to place it, and keep the scan linear however long it is.
    wanted = [w.casefold() for w in _WORD_RE.findall(lines[-1])][-8:]
    words = list(_WORD_RE.finditer(html))
    for start in range(len(words) - len(wanted), -1, -1):
        if all(words[start + i].group().casefold() == w for i, w in enumerate(wanted)):
            return words[start + len(wanted) - 1].end()
    return None
