"""A personal mobile, email address, social handle or home address shared with a young person.

Reads the text the sender wrote and their signature (a personal mobile in a signature is the
commonest case). Mobiles are found by their SHAPE (07xxx xxxxxx, +44 7xxx ..., any separators),
so Ofcom's drama range 07700 900xxx counts although no number library calls it valid; a landline
counts only when it is labelled as a home or personal number; a number introduced as the
recipient's own or their family's ("your mum on ...", "your number is ...") is not the sender's.
The organisation's own numbers (`own_phone_numbers`, compared as E.164), its domains, its postal
addresses, and the addresses of people already in the conversation are never personal. Email
addresses are flagged only when they look personal (webmail domains, or introduced as "my
personal email"), so a partner organisation's work address passes. A street address with a
postcode is flagged in the text unless it reads like a venue ("Museum House", not "my house");
in the signature only when it is labelled as a home address ("Home:", "my house, 14 ..."). An
HTML alternative that says more than the plain part is read too, split the same way.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import phonenumbers

from gateway.checks._scope import young_recipients
from gateway.checks._settings import reject_unknown
from gateway.checks._text import scope_params, word_set
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.message.quoting import split_alternative
from gateway.policy.types import Finding, Organisation, Rule

CODE = "personal_contact_details"
KINDS = ("phone", "email", "social", "address")


@dataclass(frozen=True)
class Settings:
    kinds: tuple[str, ...] = KINDS


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    reject_unknown(raw, {"kinds"})
    kinds = raw.get("kinds", list(KINDS))
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise ValueError(f"kinds must be a non-empty list drawn from {', '.join(KINDS)}")
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"kinds: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
    return Settings(tuple(k for k in KINDS if k in kinds))


# --- phone numbers -----------------------------------------------------------------------------

# At most one separator between digits: a space, dot, dash, or a bracket with optional space.
_SEP = r"(?:[ .\-\u2010-\u2013\u00a0]|\)\s?|\s?\(|\s[-\u2013]\s)?"
_PHONE_RE = re.compile(
    # Every number starts with "+", "0" or "(": tested first, it spares the look-behinds at
    # nearly every position (~3x faster over ordinary prose).
    r"(?=[+(0])"
    r"(?<![\w£$€+/\\\-])(?<!\d[.,])"
    r"(?P<number>"
    r"(?:(?:\+|00)\s?\(?44\)?" + _SEP + r"(?:\(0\)" + _SEP + r")?|\(?0" + _SEP + r")"
    r"[1-9](?:" + _SEP + r"\d){8,9}"
    r"|\+(?!44)[1-9]\d{0,2}(?:" + _SEP + r"\d){6,12}"
    r")"
    # Not the start of a longer run of digit groups ("07 7009 00461 12").
    r"(?!\d|[.,\-/]\d|[ ]\d{1,3}(?:[\s.,;:)]|$))"
)
# Just before a number: it is a reference, not a phone ("Invoice 07700 900461").
_REFERENCE_BEFORE_RE = re.compile(
    r"\b(?:ref|reference|invoice|inv|order|account|acct|a/c|booking|ticket|case|policy|"
    r"membership|member|candidate|serial|isbn|barcode|id|sort code|po)\b[\s.:#no]{0,6}$",
    re.IGNORECASE,
)
# Just before a number: it is the recipient's own, or their family's ("We have your emergency
# contact as your mum on ...", "your number is ..."), not the sender's. Only "your" with these
# few words and a joining word, nothing between: "your trip, call 07700 ..." is not it.
_NUMBER_WORDS = (
    r"(?:(?:emergency|home|mobile|phone|contact|landline)\s+){0,2}"
    r"(?:number|no\.?|mobile|phone|landline|tel|contact(?:\s+details)?)"
)
# "Your contact" alone is whom to contact, which staff give as themselves ("your contact is
# 07700 ..." on a trip letter): a contact is the recipient's own only as their family's.
_OWN_NUMBER_WORDS = r"(?:(?:home|mobile|phone)\s+)?(?:number|no\.?|mobile|phone|landline|tel)"
_RECIPIENTS_OWN_BEFORE_RE = re.compile(
    # Not "in your phone: 07700 ..." (where to save the sender's number).
    # (The look-ahead first: the look-behinds are tried only where "your" is.)
    r"\b(?=your\s)(?<!\bin\s)(?<!\binto\s)(?<!\bto\s)(?<!\bon\s)your\s+(?:own\s+)?"
    r"(?:(?:mum|mom|mam|mother|dad|father|parents?|guardian|carer|step-?(?:mum|dad)|gran|granny|"
    r"grandma|grandmother|nan|nana|grandad|grandpa|grandfather|brother|sister|aunt|auntie|aunty|"
    r"uncle|family)(?:['\u2019]s\s+" + _NUMBER_WORDS + r")?|" + _OWN_NUMBER_WORDS + r")"
    r"(?:\s{0,2}(?:[:=,(\-\u2013]|\b(?:is|as|on|at)\b)){0,2}\s{0,2}$",
    re.IGNORECASE,
)
# ... unless the sender speaks of themself there: "I'm your emergency contact: 07700 ...".
_FIRST_PERSON_RE = re.compile(
    r"\b(?:me|my|mine|myself)\b|\b(?:i|we)(?:['\u2019](?:m|re)|\s+am|\s+are)\b"
    r"|(?:['\u2019]ll|\bwill|\bshall)\s+be\b",
    re.IGNORECASE,
)
# Just before a landline: it is a home or personal one.
_HOME_LABEL_RE = re.compile(
    r"(?:\b(?:home|house|private|personal|landline|mobile|mob|cell|whatsapp)\b|\bmy\s+(?:own\s+)?(?:number|phone|tel)\b"
    r"|(?:^|\s)h\s*[:.])[^\n\d]{0,25}$",
    re.IGNORECASE,
)


def _national_digits(text: str) -> str:
    digits = re.sub(r"\D", "", text.replace("(0)", ""))
    if digits.startswith("00"):
        digits = digits[2:]
    if digits.startswith("44"):
        return "0" + digits[2:]
    return digits if digits.startswith("0") else "+" + digits


@lru_cache(maxsize=4096)
def e164(number: str) -> str:
    """A phone number as written (UK national or international) in E.164, e.g. +447700900461."""
    national = _national_digits(number)
    if national.startswith("+"):
        try:
            parsed = phonenumbers.parse(national, None)
        except phonenumbers.NumberParseException:
            return national
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    try:
        parsed = phonenumbers.parse(national, "GB")
    except phonenumbers.NumberParseException:
        return "+44" + national[1:]
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _phone_kind(number: str) -> str | None:
    """'mobile', 'landline' or None (service numbers, non-numbers) for a candidate."""
    national = _national_digits(number)
    if national.startswith("+"):
        try:
            parsed = phonenumbers.parse(national, None)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        kind = phonenumbers.number_type(parsed)
        if kind in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.PAGER,
            # North American numbers do not say which they are: read as a mobile.
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        ):
            return "mobile"
        if kind == phonenumbers.PhoneNumberType.FIXED_LINE:
            return "landline"
        return None
    # UK by shape: 07 + 9 digits is a mobile (Ofcom's drama range 07700 900xxx included);
    # 01/02 with 9-10 further digits a geographic line; 03, 05, 08, 09 are service numbers.
    if len(national) == 11 and national.startswith("07"):
        return "mobile"
    if len(national) in (10, 11) and national[1] in "12":
        return "landline"
    return None


# --- email addresses ---------------------------------------------------------------------------

# An address is found from each "@": the local part before it, the domain after it.
_LOCAL_PART_RE = re.compile(r"[A-Za-z0-9][\w.+'\-]{0,63}\Z")
_DOMAIN_RE = re.compile(r"(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,24}(?![\w@])")
_WEBMAIL_LABELS = word_set(
    """gmail googlemail hotmail outlook yahoo ymail rocketmail icloud aol protonmail gmx
    btinternet btopenworld talktalk virginmedia blueyonder ntlworld tiscali yandex tutanota
    hushmail zohomail lycos"""
)
_WEBMAIL_DOMAINS = word_set(
    """live.com live.co.uk live.ie msn.com me.com mac.com sky.com mail.com email.com proton.me
    pm.me tuta.io fastmail.com fastmail.fm zoho.com web.de inbox.com qq.com 163.com 126.com
    mail.ru orange.fr wanadoo.fr free.fr aim.com posteo.de mailfence.com gmx.com gmx.co.uk
    gmx.net gmx.de"""
)
_SECOND_LEVEL = frozenset({"co", "org", "ac", "gov", "com", "net", "ltd", "plc", "sch", "me"})
_WEBMAIL_NAMES = r"gmail|googlemail|hotmail|outlook|yahoo|icloud|aol|protonmail|gmx|btinternet|live"
_WEBMAIL_HINTS = tuple(_WEBMAIL_NAMES.split("|"))
_DOT = r"\s*(?:\.|\(dot\)|\[dot\]|\s+dot\s+)\s*"
_OBFUSCATED_EMAIL_RE = re.compile(
    r"(?<![\w.])(?P<email>[A-Za-z0-9][\w+\-]{0,63}(?:" + _DOT + r"[\w+\-]{1,63}){0,3}"
    r"\s*(?:\(at\)|\[at\]|\{at\}|\s+at\s+)\s*"
    r"(?:" + _WEBMAIL_NAMES + r")" + _DOT + r"(?:com|net|me|co" + _DOT + r"uk))\b",
    re.IGNORECASE,
)
_PERSONAL_EMAIL_LABEL_RE = re.compile(
    r"\b(?:my|his|her|their)\s+(?:own\s+|personal\s+|private\s+|home\s+|other\s+)"
    r"(?:e-?mail|address|account)\b[^\n@]{0,25}$",
    re.IGNORECASE,
)


def is_webmail(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    if domain in _WEBMAIL_DOMAINS:
        return True
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    registrable = labels[-3] if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL else labels[-2]
    return registrable in _WEBMAIL_LABELS


def _internal(domain: str, org: Organisation) -> bool:
    domain = domain.lower()
    return any(domain == d or domain.endswith("." + d) for d in org.domains)


# --- social media ------------------------------------------------------------------------------

# Platforms whose name before a colon introduces a handle ("Snapchat: jo.smith").
_PLATFORMS = (
    r"snapchat|snap|insta|instagram|tiktok|tik\s?tok|twitter|discord|kik|telegram|threads|bereal|"
    r"facebook|fb|whatsapp"
)
# Places one can be added or messaged ("add me on Xbox").
_INVITE_PLATFORMS = _PLATFORMS + r"|signal|wechat|twitch|youtube|roblox|xbox|psn|steam|fortnite"
_SOCIAL_URL_RE = re.compile(
    r"(?<![\w.\-/@])(?:https?://)?(?:www\.|m\.)?"
    r"(?P<site>instagram\.com|instagr\.am|snapchat\.com/add|tiktok\.com|facebook\.com|fb\.com|"
    r"fb\.me|m\.me|twitter\.com|x\.com|threads\.net|t\.me|wa\.me|api\.whatsapp\.com/send|"
    r"discord\.gg|discord\.com/users|discordapp\.com/users|kik\.me|bere\.al|twitch\.tv)"
    r"/+(?P<handle>[?=\w.@\-+%]{2,80})",
    re.IGNORECASE,
)
_SOCIAL_LABEL_RE = re.compile(
    r"(?P<my>\bmy\s+)?\b(?P<platform>" + _PLATFORMS + r")(?:\s+(?:handle|name|username|"
    r"user\s?name|id|account|tag|code))?\s*(?P<sep>:|=|\s[-\u2013]\s|\bis\b:?)\s*@?(?P<handle>[A-Za-z0-9][A-Za-z0-9_.\-]"
    r"{1,29}(?:#\d{4})?)(?![\w@])",
    re.IGNORECASE,
)
_SOCIAL_INVITE_RE = re.compile(
    r"\b(?:add|follow|find|friend|message|msg|dm|text|snap|hit)\s+me\s+(?:up\s+)?(?:on|at|via)"
    r"\s+(?:my\s+)?(?P<platform>" + _INVITE_PLATFORMS + r")\b|\bwhats\s?app\s+me\b|\bsnap\s+me\b",
    re.IGNORECASE,
)
# Just before a platform's name: an invitation that belongs to the handle ("Follow me on
# Instagram: @x" is one passage to remove, not "Instagram: @x").
_INVITE_BEFORE_RE = re.compile(
    r"\b(?:add|follow|find|friend|message|msg|dm|text|snap|hit)[ \t]{1,3}me[ \t]{1,3}"
    r"(?:up[ \t]{1,3})?(?:on|at|via)[ \t]{1,3}$",
    re.IGNORECASE,
)
_AT_HANDLE_RE = re.compile(
    r"(?<![\w.@/\\])@(?P<handle>[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)(?![\w@])"
)
_DISCORD_TAG_RE = re.compile(r"(?<![\w@#])(?P<handle>[A-Za-z0-9_.]{2,32}#\d{4})(?!\d)")
_HANDLE_STOPWORDS = word_set(
    """the a an our my your his her their this that is it us follow link below above here there
    please details account page group channel server tbc tba na none n/a see and or on in at
    for to with from via only not coming soon https http www com"""
)
# "Follow us", "our Instagram": the organisation's accounts, not personal ones.
_ORG_ACCOUNT_BEFORE_RE = re.compile(
    r"\b(?:us|our|we're|we are|the (?:museum|trust|team|project|programme|school|academy|"
    r"gallery|studio|organisation|charity))\b[^\n.!?]{0,40}$",
    re.IGNORECASE,
)
_SOCIAL_CONTEXT_RE = re.compile(
    r"\b(?:" + _PLATFORMS + r"|handle|username|add me|follow me)\b", re.IGNORECASE
)
_TIME_HANDLE_RE = re.compile(r"\d{1,2}(?:[:.]\d{2})?(?:am|pm)?|\d+", re.IGNORECASE)


# --- postal addresses --------------------------------------------------------------------------

_POSTCODE_RE = re.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s?\d[A-Z]{2}\b")
_STREET_RE = re.compile(
    r"\b\d{1,4}[A-Za-z]?(?:\s?[-/]\s?\d{1,4}[A-Za-z]?)?,?\s+(?:[A-Z][\w'’\-]*\.?\s+){1,3}"
    r"(?:Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Close|Cl|Drive|Dr|Way|Crescent|Cres|Grove|Gr|"
    r"Gardens|Gdns|Place|Pl|Terrace|Tce|Court|Ct|Park|Hill|Row|Mews|Square|Sq|Walk|View|Rise|"
    r"Green|Parade|Vale|Meadows?|Fields|Croft|Chase|Wharf|Yard|Boulevard|Embankment|End)\b"
)
_HOME_INTRO_RE = re.compile(
    r"\b(?:my|his|her|their)\s+(?:home\s+|house\s+|flat\s+|postal\s+|own\s+|personal\s+|"
    r"private\s+)?address\b|\bi\s+live\s+(?:at|on)\b|\bi'?m\s+at\b(?=\s+\d)|"
    # "my house is at ...", and "at my house, 14 Acacia Avenue" / "to my house: 14 ...": a
    # street number straight after (not "my house. The workshop is at 45 Station Road").
    r"\bmy\s+(?:own\s+)?(?:house|flat|place|home)(?:\s+(?:is\s+)?(?:at|on)\b|"
    r"(?=[ \t]{0,3}(?:is[ \t]{1,3}|[,:(\-\u2013][ \t]{0,3})?\d))|"
    r"\b(?:come|pop|get)\s+(?:round|over|back)\s+to\s+(?:mine|my\s+(?:house|flat|place))\b|"
    r"\bhome\s+address\b|(?:^|\n)[ \t]*home\s*:|\b(?:at|my)\s+home[ \t]{0,3}:",
    re.IGNORECASE,
)
# "House" names a venue ("Museum House", "Soho House"), not "my house" or "our house".
_VENUE_RE = re.compile(
    r"\b(?:Museum|Gallery|Centre|Center|Hall|School|Academy|College|University|Studios?|Theatre|"
    r"Theater|Library|Church|Chapel|Cathedral|Offices?|Building|"
    r"(?<!\bmy\s)(?<!\bour\s)(?<!\bhis\s)(?<!\bher\s)(?<!\btheir\s)House|Station|Arena|Stadium|Hub|"
    r"Works|Mill|Factory|Warehouse|Institute|Trust|Club|Reception|Venue|Campus|HQ|Headquarters|"
    r"Unit|Suite|Floor|Cottage|Farm|Hotel|Pavilion|Leisure|Community|Hospital|Surgery|Cinema|"
    r"Shop|Store|Market|Ltd|CIC|Charity|Registered)\b|\b(?:registered\s+office|venue|meet(?:ing)?"
    r"\s+(?:at|point)|workshop|session|rehearsal|concert|event|trip|visit)\b",
    re.IGNORECASE,
)


def _compact(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


# --- scanning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    kind: str
    value: str
    key: str
    start: int
    end: int
    where: str


def _before(text: str, start: int, width: int = 60) -> str:
    line_start = text.rfind("\n", max(0, start - width), start) + 1
    return text[max(line_start, start - width) : start]


def _recipients_own(before: str) -> bool:
    """The number is introduced as the recipient's own or their family's ("your mum on")."""
    if "your" not in before.lower():
        return False
    return bool(_RECIPIENTS_OWN_BEFORE_RE.search(before)) and not _FIRST_PERSON_RE.search(before)


def _phones(text: str, where: str, own: frozenset[str]) -> Iterator[Hit]:
    for match in _PHONE_RE.finditer(text):
        number = match.group("number").strip()
        if number.endswith(("(", ")")) and number.count("(") != number.count(")"):
            number = number.rstrip("() ")
        kind = _phone_kind(number)
        if kind is None:
            continue
        before = _before(text, match.start())
        if _REFERENCE_BEFORE_RE.search(before):
            continue
        if _recipients_own(before):
            continue
        if kind == "landline" and not _HOME_LABEL_RE.search(before):
            continue
        normalised = e164(number)
        if normalised in own:
            continue
        yield Hit("phone", number, normalised, match.start(), match.end(), where)


def _email_spans(text: str) -> Iterator[tuple[int, int]]:
    at = text.find("@")
    while at != -1:
        local = _LOCAL_PART_RE.search(text, max(0, at - 64), at)
        domain = _DOMAIN_RE.match(text, at + 1)
        if local is not None and domain is not None:
            yield local.start(), domain.end()
        at = text.find("@", at + 1)


_OBFUSCATION_HINTS = (" at ", "(at)", "[at]", "{at}")


def _emails(
    text: str, low: str, where: str, known: frozenset[str], org: Organisation
) -> Iterator[Hit]:
    for start, end in _email_spans(text):
        address = text[start:end].rstrip(".")
        lower = address.lower()
        domain = lower.rpartition("@")[2]
        if lower in known or _internal(domain, org):
            continue
        labelled = _PERSONAL_EMAIL_LABEL_RE.search(_before(text, start))
        if is_webmail(domain) or labelled:
            yield Hit("email", address, lower, start, start + len(address), where)
    if any(h in low for h in _OBFUSCATION_HINTS) and any(w in low for w in _WEBMAIL_HINTS):
        for match in _OBFUSCATED_EMAIL_RE.finditer(text):
            value = " ".join(match.group("email").split())
            yield Hit("email", value, _compact(value), match.start(), match.end(), where)


def _org_handle(handle: str, org: Organisation) -> bool:
    """The handle names the organisation ("@bmtlearning", "Birmingham" for BMT)."""
    compact = _compact(handle)
    labels = {_compact(d.split(".")[0]) for d in org.domains} | {_compact(org.name)}
    return any(
        (len(label) >= 3 and label in compact) or (len(compact) >= 4 and compact in label)
        for label in labels
    )


_SITE_HINTS = (
    "instagr", "snapchat", "tiktok", "facebook", "fb.", "m.me/", "twitter", "x.com/", "threads",
    "t.me/", "wa.me/", "whatsapp", "discord", "kik.me", "bere.al", "twitch",
)  # fmt: skip
_PLATFORM_HINTS = (
    "snap", "insta", "tik", "twitter", "discord", "kik", "telegram", "threads", "bereal",
    "facebook", "fb", "whatsapp",
)  # fmt: skip
_INVITE_HINTS = ("me on", "me at", "me via", "me up", "app me", "snap me")


def _socials(text: str, low: str, where: str, org: Organisation) -> Iterator[Hit]:
    sites = any(h in low for h in _SITE_HINTS)
    platforms = any(h in low for h in _PLATFORM_HINTS)
    for match in _SOCIAL_URL_RE.finditer(text) if sites else ():
        handle = match.group("handle").rstrip(".,)")
        if _org_handle(handle, org) or _ORG_ACCOUNT_BEFORE_RE.search(_before(text, match.start())):
            continue
        value = text[match.start() : match.start("handle") + len(handle)]
        yield Hit(
            "social",
            value,
            _compact(match.group("site") + handle),
            match.start(),
            match.end(),
            where,
        )
    for match in _SOCIAL_LABEL_RE.finditer(text) if platforms else ():
        handle = match.group("handle").rstrip(".-")
        if match.group("sep").startswith("is") and not match.group("my"):
            continue  # "Instagram is great"; "my insta is jo_s" counts
        if handle.lower() in _HANDLE_STOPWORDS or _TIME_HANDLE_RE.fullmatch(handle):
            continue
        before = _before(text, match.start())
        if _org_handle(handle, org) or _ORG_ACCOUNT_BEFORE_RE.search(before):
            continue
        invite = None
        if not match.group("my") and before.rstrip(" \t").lower().endswith(("on", "at", "via")):
            invite = _INVITE_BEFORE_RE.search(before)
        start = match.start() - len(invite.group()) if invite else match.start()
        value = text[start : match.start("handle") + len(handle)]
        yield Hit("social", value, _compact(handle), start, match.end(), where)
    invites = any(h in low for h in _INVITE_HINTS)
    for match in _SOCIAL_INVITE_RE.finditer(text) if invites else ():
        value = " ".join(match.group().split())
        yield Hit("social", value, _compact(value), match.start(), match.end(), where)
    for match in _AT_HANDLE_RE.finditer(text) if "@" in text else ():
        handle = match.group("handle")
        if _TIME_HANDLE_RE.fullmatch(handle) or handle.lower() in _HANDLE_STOPWORDS:
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line = text[line_start : line_end if line_end != -1 else len(text)]
        handle_like = bool(re.search(r"[_\d.]", handle)) or handle.islower()
        if not (handle_like or _SOCIAL_CONTEXT_RE.search(line)):
            continue  # "@Sam, could you ..." is a mention of a person, not a handle
        if _org_handle(handle, org) or _ORG_ACCOUNT_BEFORE_RE.search(_before(text, match.start())):
            continue
        yield Hit("social", "@" + handle, _compact(handle), match.start(), match.end(), where)
    tags = "#" in text and "discord" in low
    for match in _DISCORD_TAG_RE.finditer(text) if tags else ():
        window = text[max(0, match.start() - 80) : match.end() + 40]
        if re.search(r"discord", window, re.IGNORECASE):
            handle = match.group("handle")
            yield Hit("social", handle, _compact(handle), match.start(), match.end(), where)


_INTRO_HINTS = (
    "address", "live at", "live on", "m at ", "my house", "my flat", "my place", "my home",
    "to mine", "home:", "home :",
)  # fmt: skip
_INWARD_CODE_RE = re.compile(r"\d[A-Z]{2}\b")  # the end of a postcode: cheap to look for


def _addresses(
    text: str, low: str, where: str, own: tuple[str, ...], unlabelled: bool
) -> Iterator[Hit]:
    candidates: list[tuple[int, int]] = []
    intros = any(h in low for h in _INTRO_HINTS)
    for intro in _HOME_INTRO_RE.finditer(text) if intros else ():
        # Bounded searches: on a hostile text of thousands of intros each would run to its end.
        window_end = text.find("\n\n", intro.end(), intro.end() + 160)
        window_end = min(intro.end() + 160, window_end if window_end != -1 else len(text))
        window = text[intro.end() : window_end]
        parts = [m for r in (_STREET_RE, _POSTCODE_RE) for m in r.finditer(window)]
        if parts:
            start = intro.end() + min(m.start() for m in parts)
            end = intro.end() + max(m.end() for m in parts)
            candidates.append((start, end))
    if unlabelled and _INWARD_CODE_RE.search(text):
        for street in _STREET_RE.finditer(text):
            window = text[street.end() : street.end() + 60]
            postcode = _POSTCODE_RE.search(window)
            if postcode is None or "\n\n" in window[: postcode.start()]:
                continue
            near = max(0, street.start() - 80)  # all that is read before the street
            line_start = text.rfind("\n", near, street.start()) + 1
            sentence_start = max(
                line_start, *(text.rfind(p, near, street.start()) + 1 for p in ".!?")
            )
            # Venue words around the street (not in it: "45 Station Road" is a street).
            before = text[max(sentence_start, street.start() - 80) : street.start()]
            between = window[: postcode.end()]
            if _VENUE_RE.search(before) or _VENUE_RE.search(between):
                continue
            candidates.append((street.start(), street.end() + postcode.end()))
    own_compact = [_compact(a) for a in own]
    for start, end in sorted(candidates):
        value = " ".join(text[start:end].split()).strip(" ,")
        key = _compact(value)
        postcodes = [_compact(p) for p in _POSTCODE_RE.findall(value)]
        if any(key in o or (postcodes and postcodes[-1] in o) for o in own_compact):
            continue
        yield Hit("address", value, key, start, end, where)


def find(
    text: str,
    where: str,
    *,
    kinds: tuple[str, ...],
    org: Organisation,
    known: frozenset[str],
    unlabelled_addresses: bool,
) -> list[Hit]:
    """Personal contact details in `text` ('text', 'signature' or 'alternative'), in order.
    A street address counts unlabelled (not introduced as a home address) only where
    `unlabelled_addresses`: in what the sender wrote, not in a signature."""
    hits: list[Hit] = []
    own = frozenset(e164(n) for n in org.own_phone_numbers)
    # Order matters: an email address or a link claims its span before the phone and
    # @handle scanners see it.
    low = text.lower()
    scanners: list[Iterator[Hit]] = []
    if "email" in kinds:
        scanners.append(_emails(text, low, where, known, org))
    if "social" in kinds:
        scanners.append(_socials(text, low, where, org))
    if "phone" in kinds:
        scanners.append(_phones(text, where, own))
    if "address" in kinds:
        scanners.append(_addresses(text, low, where, org.own_addresses, unlabelled_addresses))
    # Spans taken so far, disjoint and so sorted by both ends: a bisect finds the one span
    # that could overlap, keeping a digit-heavy body linear rather than quadratic.
    starts: list[int] = []
    ends: list[int] = []
    for scanner in scanners:
        for hit in scanner:
            i = bisect.bisect_right(ends, hit.start)
            if i < len(starts) and starts[i] < hit.end:
                continue
            starts.insert(i, hit.start)
            ends.insert(i, hit.end)
            hits.append(hit)
    return sorted(hits, key=lambda h: h.start)


def check(
    message: Message, view: DirectoryView, now: datetime, rule: Rule, org: Organisation
) -> list[Finding]:
    settings: Settings = rule.settings or Settings()
    young = young_recipients(message, view, now, rule)
    if not young:
        return []
    known = {a.email.lower() for a in message.recipients}
    if message.sender.email and org.is_internal(message.sender.email):
        known.add(message.sender.email.lower())
    for y in young:
        known.update(e.lower() for e in y.contact.emails)
        known.update(view.guardians_of(y.contact))
        known.update(view.schools_of(y.contact))
    frozen = frozenset(known)
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    texts = [(message.new_text, "text", True), (message.signature, "signature", False)]
    if message.alternative_text:
        head, rest = split_alternative(
            f"{message.new_text}\n{message.signature}", message.alternative_text
        )
        texts += [(head, "alternative", True), (rest, "alternative", False)]
    for text, where, unlabelled in texts:
        if not text:
            continue
        hits = find(
            text,
            where,
            kinds=settings.kinds,
            org=org,
            known=frozen,
            unlabelled_addresses=unlabelled,
        )
        for hit in hits:
            if (hit.kind, hit.key) in seen:
                continue
            seen.add((hit.kind, hit.key))
            findings.append(
                Finding(
                    code=CODE,
                    rule=rule.id,
                    action=rule.action,
                    recipient=young[0].address.email,
                    evidence=hit.value,
                    params={
                        "kind": hit.kind,
                        "value": hit.value,
                        "where": hit.where,
                        **scope_params(young),
                    },
                )
            )
    return findings
