"""The closing of a message to a young person is informal: emoji, kisses, love, hugs, emoticons.

Only the last few non-empty lines of the text the sender wrote in this message are read (not
quoted history, not the signature block after "-- ", not device footers or disclaimers), and
those of the lines only an HTML alternative shows (`Message.alternative_text`). An X
that is an initial, a label or part of a code ("Max X. Smith", "Box X", "Room 4X", "Malcolm
X", "x2231") is not a kiss; "love" as a verb ("I'd love to hear") or inside a name ("Lovett",
"Love Okonkwo" under "Regards,") is not a closing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import emoji

from gateway.checks._scope import young_recipients
from gateway.checks._settings import reject_unknown
from gateway.checks._text import closing_lines, scope_params, whole_words, word_set
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CODE = "informal_sign_off"
CLOSING_LINES = 4
LINE_TAIL = 500  # a closing "line" longer than this is a paragraph: read its end only

# Emoji the `emoji` library knows but that are ordinary typography in a footer.
_NOT_EMOJI = frozenset("©®™")

# Emoticons. `<3`, `XD` and kaomoji count only at the end of a line (see _TAIL_ONLY), so that
# "scoring <3 on the quiz" is a comparison, not a heart.
_EMOTICON_RE = re.compile(
    r"(?<![\w<:;=^'/])"
    r"(?:[:;=]'?-?[)(\]\[DPpOo*|\\/]|[xX]-?D|<3+|</3|\^[_.\-]?\^|\(:|[:;]-?\)+)"
    r"(?![\w/])"
)
_TAIL_ONLY = re.compile(r"<3+|</3|[xX]-?D|\^[_.\-]?\^|[:;=]'?-?[/\\|oO]")
# Only punctuation, emoticons, emoji, kisses or spaces may follow a tail-only emoticon.
_TAIL_REST_RE = re.compile(r"^[\s.,!?)\-~*]*(?:(?:<3+|[:;]-?[)(DPp]|x{1,4}|X{1,4})[\s.,!?~]*)*$")

_KISS_RE = re.compile(r"(?:[xX]{1,4}|(?:[xX][oO]){1,3}[xX]?)")
# A single X after one of these is a label or a placeholder, not a kiss ("Box X", "tab X").
_LABEL_WORDS = word_set(
    """box room year group groups set form class studio block column row section part page
    figure fig table zone gate level grade type plan version model phase stage team exhibit
    case bay door platform question q item step sheet tab option slide screen camera player
    malcolm generation gen project space"""
)
# A single capital X after one of these capitalised words is still a kiss ("Thanks X").
_KISS_AFTER = word_set(
    """thanks thank cheers love soon night bye later laters tomorrow weekend today mwah hun
    babe lovely gorgeous xx"""
)
_NAME_WORD_RE = re.compile(r"[A-Z][a-z]+(?:-[A-Z][a-z]+)?")
_PUNCT = ".,!?;:()\"'*~-"

_WORDS_RE = re.compile(
    r"(?<!\w)(?:"
    r"(?:lots|loads|heaps|bags)\s+of\s+love|with\s+(?:all\s+my\s+|much\s+|lots\s+of\s+)?love"
    r"|all\s+(?:my|our)\s+love|(?:big|much|sending(?:\s+you)?|love\s+and)\s+(?:love|hugs?)"
    r"|love\s+(?:ya|you|u|yas|yaz)|luv(?:\s+(?:ya|u|you))?|lurve"
    r"|(?:big\s+|virtual\s+|sending\s+(?:a\s+)?)hug|hugs|hugz|kisses|hugs\s+and\s+kisses"
    r"|x\s?o\s?x\s?o|mwah+|ttyl|ttfn|cya|l8r"
    r"|hun|hunny|hunni|babe|babes|sweetheart|sweetie|sweetpea|darling|darlin|poppet"
    r")(?!\w)"
    r"|\*\s*hugs?\s*\*",
    re.IGNORECASE,
)
# Endearments that are also surnames or topics when capitalised after a capitalised word
# ("Grace Darling", "Attila the Hun").
_SURNAME_LIKE = frozenset({"hun", "darling", "darlin", "sweetheart"})
# "Love" opening a line is a closing ("Love, Jo", "Love from us all") unless it is a verb.
_LINE_LOVE_RE = re.compile(
    r"^(?P<word>love|luv)\b(?!\s+(?:to|the|it|this|that|these|those|how|what|your|our|his|her|"
    r"their|a|an|seeing|hearing|reading|having|being|working|getting|doing|making)\b)",
    re.IGNORECASE,
)
# "Love" signing off the message's last words after a full stop, on the line they end ("Lovely
# to meet you. Love, Jamie xx", "See you Friday! Love from Alex"): a one-line mail's sign-off,
# as "Love" on a line of its own is a longer one's. A name (capitalised) and nothing but
# kisses, emoji or punctuation after it; without a comma or "from", the name is the sender's
# ("Love Jamie xx"), so that "Great work. Love Mondays!" is not read as one.
_END_LOVE_RE = re.compile(
    r"[.!?\u2026]\s*(?P<word>love|luv)(?P<sep>\s*,\s*|\s+from\s+|\s+)"
    r"(?P<name>(?-i:[A-Z][\w'\-]*)(?:\s+(?-i:[A-Z][\w'\-]*)){0,2})"
    r"(?:[^\w]|(?<!\w)(?:[xX]{1,4}|(?:[xX][oO]){1,3}[xX]?)(?!\w))*$",
    re.IGNORECASE,
)
# A vocative at the end of a line: "Thanks lovely x", "Night, gorgeous x".
_VOCATIVE_RE = re.compile(
    r"(?:^|,\s*|\b(?:thanks|thank you|night|morning|bye|cheers|soon|care|ta)\s*,?\s*)"
    r"(?P<word>lovely|gorgeous|beautiful|handsome|sexy|angel|princess|treasure)"
    r"[\s.!?~]*(?:[xX]{1,4}[\s.!?~]*)?$",
    re.IGNORECASE,
)
# Cheap substring tests that must pass before the regular expressions above are tried.
_WORD_HINTS = (
    "lov", "luv", "lurv", "hug", "kiss", "xo", "x o", "mwah", "ttyl", "ttfn", "cya", "l8r",
    "hun", "babe", "sweet", "darlin", "poppet",
)  # fmt: skip
_VOCATIVE_HINTS = (
    "lovely", "gorgeous", "beautiful", "handsome", "sexy", "angel", "princess", "treasure",
)  # fmt: skip
_EMOTICON_HINT_RE = re.compile(r"[:;=<^]|[xX]-?D|\(:")
_EMOJI_HINT_RE = re.compile("[\u00a9\u00ae\u203c-\u32ff\U0001f000-\U0001faff\ufe0f\u200d]")
_CLOSING_RE = re.compile(
    r"^(?:(?:kind(?:est)?|warm(?:est)?|best|many|with|yours|all the)\s+)?"
    r"(?:regards|wishes|thanks|sincerely|faithfully|truly|best)[,.!]?$|^(?:thanks|thank you|"
    r"cheers|best|regards)[,.!]?$",
    re.IGNORECASE,
)


# A formal closing line, alone or with the sender's name ("Kind regards,", "Best wishes, Alex
# Teacher"): an emoji at the end of the line just above it belongs to the message's last words
# ("Your print won first prize 🎉"), not to its sign-off. Kisses, endearments, "love" and
# emoticons there still count ("Love you lots xx" above "Kind regards"). "Thanks" and "Cheers"
# are not such a closing. Kisses and hearts are never the message's last words.
_AFFECTION_EMOJI = frozenset("😘😍😚😙🥰😻💋❤♥💕💖💗💓💞💘💝🫶")
_FORMAL_CLOSING_RE = re.compile(
    r"^(?:(?:(?:kind(?:est)?|warm(?:est)?|best|with)\s+)?regards"
    r"|(?:best|warm(?:est)?|kind(?:est)?|many|all the|with best)\s+wishes"
    r"|yours\s+(?:sincerely|faithfully|truly)|sincerely|faithfully)"
    r"[,.!]?(?-i:\s+[A-Z][\w'.\-]*(?:\s+[A-Z][\w'.\-]*){0,3})?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Settings:
    extra_words: tuple[str, ...] = ()
    extra_re: re.Pattern[str] | None = None


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    reject_unknown(raw, {"extra_words"})
    words = raw.get("extra_words", [])
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise ValueError("extra_words must be a list of non-empty strings")
    cleaned = tuple(dict.fromkeys(w.strip().lower() for w in words))
    pattern = re.compile(whole_words(cleaned), re.IGNORECASE) if cleaned else None
    return Settings(cleaned, pattern)


_NO_SETTINGS = Settings()


def _emoji(line: str) -> list[str]:
    if line.isascii() or not _EMOJI_HINT_RE.search(line):
        return []
    return [
        e["emoji"] for e in emoji.emoji_list(line) if e["emoji"].rstrip("\ufe0f") not in _NOT_EMOJI
    ]


def _is_decoration(token: str) -> bool:
    """Emoji, emoticons or bare punctuation that may trail a kiss ("x 😊", "xx!!")."""
    core = token.strip(_PUNCT)
    if not core:
        return True
    if _EMOTICON_RE.fullmatch(token):
        return True
    return not token.isascii() and not emoji.replace_emoji(token, "").strip(_PUNCT)


def _kisses(line: str, sender_names: frozenset[str] = frozenset()) -> list[str]:
    """Kisses at the end of a line, walking back over emoji and punctuation. `sender_names`:
    the sender's names, lower-case: "Alex X" from Alex Teacher is a kiss, not an initial."""
    tokens = line.split()
    found: list[str] = []
    for i in range(len(tokens) - 1, -1, -1):
        token = tokens[i]
        core = token.strip(_PUNCT)
        if core and _KISS_RE.fullmatch(core):
            previous = tokens[i - 1] if i else ""
            bare = previous.strip(_PUNCT).lower()
            if len(core) == 1 and bare in _LABEL_WORDS:
                break  # "Box X", "see tab x"
            if len(core) == 1 and bare.isdigit():
                break  # "2 x"
            if (
                core == "X"
                and _NAME_WORD_RE.fullmatch(previous)
                and previous.lower() not in _KISS_AFTER
                and not _signed_with_kiss(previous.lower(), sender_names)
            ):
                break  # an initial after a name: "Malcolm X", "Jo X" is read as an initial
            found.append(core)
            continue
        if _is_decoration(token):
            continue
        break
    found.reverse()
    return found


def _signed_with_kiss(name: str, sender_names: frozenset[str]) -> bool:
    """The sender's own name then "X": no initial of theirs (a review: "Thanks, Alex X" from
    Alex Teacher passed as an initial)."""
    return name in sender_names and not any(n.startswith("x") for n in sender_names - {name})


def _emoticons(line: str) -> list[str]:
    if not _EMOTICON_HINT_RE.search(line):
        return []
    found = []
    for match in _EMOTICON_RE.finditer(line):
        if _TAIL_ONLY.fullmatch(match.group()) and not _TAIL_REST_RE.match(line[match.end() :]):
            continue
        found.append(match.group())
    return found


def _words(line: str, previous: str, sender_names: frozenset[str], settings: Settings) -> list[str]:
    low = line.lower()
    found = []
    if any(hint in low for hint in _WORD_HINTS):
        for match in _WORDS_RE.finditer(line):
            word = match.group()
            if word.lower() in _SURNAME_LIKE and word[0].isupper():
                before = line[: match.start()].split()
                after = line[match.end() :].split()
                if (
                    before
                    and before[-1].lower() not in _KISS_AFTER
                    and (_NAME_WORD_RE.fullmatch(before[-1].rstrip(".")) or before[-1] == "the")
                ) or (after and _NAME_WORD_RE.fullmatch(after[0])):
                    continue  # "Grace Darling", "Attila the Hun", "Dr. Hun Kim"
            found.append(word)
    love = _LINE_LOVE_RE.match(line) if low.startswith(("love", "luv")) else None
    if love and not any(w.lower().startswith(("love", "luv")) for w in found):
        rest = line[love.end() :].strip()
        name_line = bool(rest) and bool(re.fullmatch(r"[A-Z][\w'\-]+(?:\s+[A-Z][\w'\-.]+)*", rest))
        if not (name_line and (_CLOSING_RE.match(previous) or "love" in sender_names)):
            found.append(love.group("word"))
    if any(hint in low for hint in _VOCATIVE_HINTS):
        vocative = _VOCATIVE_RE.search(line)
        if vocative:
            found.append(vocative.group("word"))
    if settings.extra_re is not None and any(w in low for w in settings.extra_words):
        found.extend(m.group() for m in settings.extra_re.finditer(line))
    return found


def _closing_love(line: str, sender_names: frozenset[str]) -> list[str]:
    """The word of a "Love, NAME" ending the last line (`_END_LOVE_RE`), unless the sender is
    called Love."""
    low = line.lower()
    if "love" in sender_names or not ("love" in low or "luv" in low):
        return []
    match = _END_LOVE_RE.search(line)
    if match is None:
        return []
    names = {word.lower() for word in match.group("name").split()}
    if not match.group("sep").strip() and not names & sender_names:
        return []  # "Love Mondays!": not the sender's name, nor a "Love," or "Love from"
    return [match.group("word")]


def informal_tokens(
    text: str, *, sender_name: str = "", settings: Settings | None = None
) -> list[tuple[str, list[str]]]:
    """(line, informal tokens) for each closing line of `text` that has any."""
    settings = settings or _NO_SETTINGS
    names = frozenset(sender_name.lower().split())
    hits = []
    previous = ""
    lines = closing_lines(text, CLOSING_LINES)
    for index, whole in enumerate(lines):
        line = whole[-LINE_TAIL:]
        tokens = [*_words(line, previous, names, settings), *_emoticons(line)]
        if index == len(lines) - 1 and not any(
            "lov" in t.lower() or "luv" in t.lower() for t in tokens
        ):
            tokens += _closing_love(line, names)
        following = lines[index + 1] if index + 1 < len(lines) else ""
        found = _emoji(line)
        if _FORMAL_CLOSING_RE.match(following):
            found = [e for e in found if e.rstrip("\ufe0f") in _AFFECTION_EMOJI]
        tokens += found
        tokens += [k for k in _kisses(line, names) if k not in tokens]
        if tokens:
            hits.append((line, list(dict.fromkeys(tokens))))
        previous = line
    return hits


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    settings: Settings = rule.settings or Settings()
    young = young_recipients(message, view, now, rule)
    if not young:
        return []
    sender_name = message.sender.name
    staff = view.staff_member(message.sender.email) if message.sender.email else None
    if staff is not None:
        sender_name = f"{sender_name} {staff.name}"
    hits = informal_tokens(message.new_text, sender_name=sender_name, settings=settings)
    # The HTML most clients show may close differently from the plain part the checks read.
    if message.alternative_text:
        hits += informal_tokens(
            message.alternative_text, sender_name=sender_name, settings=settings
        )
    if not hits:
        return []
    words = list(dict.fromkeys(w for _, found in hits for w in found))
    return [
        Finding(
            code=CODE,
            rule=rule.id,
            action=rule.action,
            recipient=young[0].address.email,
            evidence=" / ".join(line for line, _ in hits),
            params={"words": words, "line": hits[-1][0], **scope_params(young)},
        )
    ]
