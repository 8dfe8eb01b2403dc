"""Turning bytes and header values into clean text, leniently and in linear time.

Nothing here raises on bad input: an unknown charset, broken base64 in an encoded word or
HTML that lxml cannot read all give the best text available plus a short defect string.
"""

from __future__ import annotations

import binascii
import copy
import encodings
import encodings.aliases
import html as html_lib
import pkgutil
import re
import unicodedata

from inscriptis import get_annotated_text
from inscriptis.model.config import ParserConfig

# Codecs that are not character sets: byte transforms, and escape codecs a mail reader would
# never apply (decoding with them would show checks text the recipient never sees).
_NOT_CHARSETS = frozenset(
    {
        "aliases", "base64_codec", "bz2_codec", "hex_codec", "quopri_codec", "rot_13",
        "uu_codec", "zlib_codec", "undefined", "idna", "punycode", "mbcs", "oem",
        "unicode_escape", "raw_unicode_escape",
    }
)  # fmt: skip


def _known_charsets() -> dict[str, str]:
    modules = {m.name for m in pkgutil.iter_modules(encodings.__path__)} - _NOT_CHARSETS
    known = {name: name for name in modules}
    for alias, target in encodings.aliases.aliases.items():
        if target in modules:
            known[alias] = target
    return known


# Charset name -> codec module. Only these names reach codecs.lookup: the codec registry
# caches every name it is asked about, failures included, so sender-chosen names must not.
_CHARSETS: dict[str, str] = _known_charsets()
_ASCII_SUPERSETS = frozenset(
    {"ascii", "utf_8", "latin_1", "cp1252"}
    | {f"iso8859_{n}" for n in range(2, 17)}
    | {f"cp125{n}" for n in range(9)}
)
_UNDECLARED = frozenset({"", "unknown_8bit", "x_unknown"})

# Characters that show nothing but split a word for a machine: "se<U+200B>cret" reads as
# "secret" and is matched and searched as two words. Left out of the text the checks read
# and the archive indexes (the bytes as received are kept). Zero-width space, joiner and
# non-joiner, soft hyphen, direction marks and embeddings, word joiner, invisible operators,
# the byte order mark, Hangul fillers. The joiner, variation selectors and tag characters
# join emoji (a family, a red heart, a flag): they are kept only there (`_kept`).
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b\u200c\u200e\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0\U0001d173-\U0001d17a"
)
_JOINERS = "\u200d\ufe00-\ufe0f\U000e0000-\U000e0fff"
_JOINER_RE = re.compile(f"[{_JOINERS}]")
# One character class, so that a text without any costs one scan (a lookbehind would be
# tried at every character); what a run keeps is decided for the few runs found.
_HIDDEN_RE = re.compile(f"[{_INVISIBLE}{_JOINERS}]+")
_ASCII_CONTROLS_EXCEPT_TAB_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROLS_EXCEPT_TAB_RE = re.compile(rf"[\x00-\x08\x0a-\x1f\x7f{_INVISIBLE}{_JOINERS}]+")
_LINE_BREAKS_RE = re.compile(r"\r\n|\r|\n")
_BODY_CONTROLS_RE = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f{_INVISIBLE}{_JOINERS}]+")


def _kept(match: re.Match[str]) -> str:
    """Of a run of controls and invisible characters, the joiners that join emoji (those right
    after a symbol, a digit, # or *, as in a family, a red heart, a flag or a keycap); the
    rest is dropped. After a letter, a space or an apostrophe a joiner joins nothing and only
    splits a word for a machine ("our <ZWJ>little secret" read as "our" and "little")."""
    start = match.start()
    before = match.string[start - 1] if start else ""
    if not before or not (unicodedata.category(before)[0] == "S" or before in "#*0123456789"):
        return ""
    return "".join(_JOINER_RE.findall(match.group()))


# Encoded word (RFC 2047); charset may carry an RFC 2231 language ("utf-8*en").
_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?\s]*)\?=")
# lxml refuses NUL and most C0 controls in text.
_XML_UNSAFE_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_STYLE_OPEN_RE = re.compile(r"<(style|script)\b", re.IGNORECASE)
_BREAK_TAG_RE = re.compile(r"<(?:br|/p|/div|/li|/tr|/h[1-6]|/blockquote)\b[^<>]*>", re.I)
_TAG_RE = re.compile(r"<[^<>]*>")
_NON_WORD_RE = re.compile(r"\W+")
_BLANK_RUNS_RE = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
_TABLE_BLOCK_RE = re.compile(r"<(/?)(?:table|thead|tbody|tfoot|tr|caption)\b", re.IGNORECASE)
_TABLE_CELL_RE = re.compile(r"<(?:td|th)\b", re.IGNORECASE)
_TABLE_CELL_END_RE = re.compile(r"</(?:td|th)\s*>", re.IGNORECASE)

# Template only, never handed to inscriptis: building it deep-copies the CSS profile
# (~0.4 ms), so it is built once and each conversion gets a cheap copy (`_html_config`).
_HTML_CONFIG_TEMPLATE = ParserConfig(annotation_rules={"blockquote": ["quote"]})


def _html_config() -> ParserConfig:
    # inscriptis writes its output canvas onto the profile's shared "body" element, so two
    # threads converting at once would mix their texts: give each call its own body element.
    config = copy.copy(_HTML_CONFIG_TEMPLATE)
    css = dict(_HTML_CONFIG_TEMPLATE.css)
    css["body"] = copy.copy(css["body"])
    config.css = css
    return config


def charset_codec(charset: str | None) -> str | None:
    """The codec for a declared charset name, '' when none was declared, None if unknown."""
    if not charset:
        return ""
    name = encodings.normalize_encoding(charset.strip().lower()[:64])
    if name in _UNDECLARED:
        return ""
    codec = _CHARSETS.get(name) or _CHARSETS.get(name.replace(".", "_"))
    # 8-bit bytes labelled ASCII are a mislabel (often UTF-8), not a reason for U+FFFD.
    return "" if codec == "ascii" else codec


def _guess(data: bytes) -> str:
    # Undeclared 8-bit text today is nearly always UTF-8; Windows-1252 is the old default.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Text of ``data`` in ``charset``, and a defect when the charset was unusable."""
    codec = charset_codec(charset)
    if data.isascii() and (codec == "" or codec in _ASCII_SUPERSETS):
        return data.decode("ascii"), None
    if codec == "":
        return _guess(data), None
    if codec is None:
        shown = clean_header_value(charset or "")[:40]
        return _guess(data), f"unknown charset {shown!r}"
    try:
        return data.decode(codec, "replace"), None
    except Exception:  # some codecs refuse errors="replace" or fail outright
        return _guess(data), f"undecodable text in charset {codec!r}"


def from_surrogates(value: str) -> str:
    """Undo the parser's surrogateescape: raw 8-bit header bytes become (UTF-8) text."""
    if value.isascii():
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that did not come from bytes
        return value.encode("utf-8", "replace").decode("utf-8")
    return _guess(raw)


def clean_header_value(value: str) -> str:
    """Unfolded, 8-bit-safe header text with no control characters."""
    value = from_surrogates(_LINE_BREAKS_RE.sub("", value))
    if value.isascii():  # every header of most mail: a class of ASCII only scans faster
        return _ASCII_CONTROLS_EXCEPT_TAB_RE.sub("", value).strip()
    return _CONTROLS_EXCEPT_TAB_RE.sub(_kept, value).strip()


def _decode_word_payload(encoding: str, payload: str) -> bytes | None:
    data = payload.encode("utf-8")
    try:
        if encoding in "bB":
            # Lenient like mail readers: missing padding added, stray characters ignored.
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return None


def decode_rfc2047(value: str) -> str:
    """Decode encoded words; adjacent words in one charset are joined before decoding."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset)[0])
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD_RE.finditer(value):
        gap = value[pos : match.start()]
        pos = match.end()
        charset = match.group(1).split("*", 1)[0]
        data = _decode_word_payload(match.group(2), match.group(3))
        if data is None:  # keep the undecodable word as it was
            flush()
            out.append(gap + match.group(0))
            continue
        # Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
        if gap and (pending_charset is None or gap.strip()):
            flush()
            out.append(gap)
        if pending_charset is not None and pending_charset.lower() != charset.lower():
            flush()
        pending_charset = charset
        pending += data
    flush()
    out.append(value[pos:])
    return "".join(out)


def header_text(value: str) -> str:
    """A header value as a human reads it: unfolded, decoded, without controls."""
    return clean_header_value(decode_rfc2047(clean_header_value(value)))


# The same characters as _BODY_CONTROLS_RE, for str.translate: on ASCII text (most mail) a
# translate is a third of the time of the pattern's scan.
_BODY_CONTROLS = dict.fromkeys([*range(0x09), *range(0x0B, 0x20), 0x7F])


def normalise_newlines(text: str) -> str:
    """``\\n`` line ends, and no control characters other than tab and newline, nor
    invisible ones (`_INVISIBLE`)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii():
        return text.translate(_BODY_CONTROLS)
    return _BODY_CONTROLS_RE.sub(_kept, text)


def _without_style_and_script(html: str) -> str:
    lower = html.lower()
    out: list[str] = []
    pos = 0
    while True:
        match = _STYLE_OPEN_RE.search(lower, pos)
        if not match:
            out.append(html[pos:])
            break
        out.append(html[pos : match.start()])
        close = lower.find("</" + match.group(1).lower(), match.end())
        if close < 0:  # unclosed: a browser hides the rest too
            break
        end = lower.find(">", close)
        pos = end + 1 if end >= 0 else len(html)
    return "".join(out)


def crude_html_text(html: str) -> str:
    """Tag-stripped text: no layout, but nothing lost to parser limits."""
    text = _TAG_RE.sub(" ", _BREAK_TAG_RE.sub("\n", _without_style_and_script(html)))
    text = _HIDDEN_RE.sub(_kept, html_lib.unescape(text))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return _BLANK_RUNS_RE.sub("\n\n", "\n".join(lines)).strip()


def _letters(text: str) -> int:
    return len(_NON_WORD_RE.sub("", text))


def _mark_quotes(text: str, labels: list[tuple[int, int, object]]) -> str:
    """Prefix "> " to lines that lie inside a <blockquote>, so HTML replies split like text."""
    spans = sorted((start, end) for start, end, _ in labels)
    out: list[str] = []
    offset = 0
    span = 0
    for line in text.split("\n"):
        stripped = line.strip()
        first = offset + (len(line) - len(line.lstrip()))
        offset += len(line) + 1
        # Lines come in order, so spans that ended stay behind; the first open span (by
        # start) covers this line if any span does.
        while span < len(spans) and spans[span][1] <= first:
            span += 1
        inside = span < len(spans) and spans[span][0] <= first
        out.append(f"> {stripped}" if inside and stripped else stripped)
    return "\n".join(out)


def _flatten_tables(html: str) -> str:
    """Tables as plain blocks and cells as inline runs, each cell's text after the last.

    Mail lays out whole messages in tables. Laid out as a grid, a cell's lines are
    interleaved with its neighbour's ("our little  Events:\nsecret  Science club"), which
    hides phrases from the checks, and the layout costs ~2-3x more.
    """
    html = _TABLE_CELL_END_RE.sub("</span> ", _TABLE_CELL_RE.sub("<span", html))
    return _TABLE_BLOCK_RE.sub(r"<\1div", html)


def html_to_text(html: str) -> tuple[str, str | None]:
    """Readable text of an HTML body (blockquotes marked "> "), and a defect if any."""
    html = _flatten_tables(_XML_UNSAFE_RE.sub("", html))
    if not html.strip():
        return "", None
    crude = crude_html_text(html)
    try:
        result = get_annotated_text(html, _html_config())
        text = _mark_quotes(str(result.get("text", "")), list(result.get("label", [])))
    except Exception:  # lxml/inscriptis failure on hostile markup
        return crude, "HTML body could not be converted; tags stripped instead"
    # libxml2 silently drops content nested deeper than 255 elements; a browser shows it.
    if _letters(crude) > 2 * _letters(text) + 200:
        return crude, "HTML body only partly convertible; tags stripped instead"
    # Entities (&#8203;, &shy;) become the invisible characters the plain text loses.
    return _BLANK_RUNS_RE.sub("\n\n", _HIDDEN_RE.sub(_kept, text)).strip(), None
