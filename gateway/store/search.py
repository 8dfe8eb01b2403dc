"""Searching the archive: the query AST compiled to SQL for SQLite and PostgreSQL, run, counted
and audited.

Each term becomes one predicate on `archive`, backed by an index (migration 0002):

- words and phrases: FTS5 `archive_fts` (SQLite) or the GIN-indexed `archive.search_tsv`
  (PostgreSQL). Text terms that sit side by side in one AND (or one OR) are merged into a single
  full-text query, so the common "a few words" search costs one index lookup;
- from: to: cc: bcc: contact: `archive_addresses` (address, role) or (domain, role);
- flag: `archive_findings` (code); verdict: / after: / before: the archive's own indexed columns
  (a date is the organisation's: `after:2026-07-15` starts at local midnight, 23:00 UTC in summer).

Results are newest first (received_at, then id, both descending) with LIMIT/OFFSET paging.
The count comes first, exact up to COUNT_LIMIT (past that a page says "more than N": an exact
count of a word in most of a million messages costs seconds, and nobody pages that far); from it
the page is fetched whichever way is cheaper (collect the matches and sort, or walk the archive
newest first), see ArchiveSearch._walk_newest_first.

Both the capped count and the walk look at the newest messages first, in windows of archive ids
(`id > N`, also applied inside every id list), widened until they have what they need: a word in
most of the archive then costs a few thousand index entries, not an id list of a million. With a
`before:`, the count's windows end where that date does (`id <= M`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    cast,
    column,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSQUERY

from gateway.policy.types import stored_finding_urgent
from gateway.search.query import (
    Address,
    After,
    And,
    Before,
    Flag,
    Node,
    Not,
    Or,
    Text,
    Verdict,
    parse,
    text_tokens,
)
from gateway.store.audit import AuditLog
from gateway.store.directory import DirectoryStore
from gateway.store.fulltext import index_pending
from gateway.store.fulltext import pending as fulltext_pending
from gateway.store.records import ArchiveRecord, as_aware
from gateway.store.schema import archive, archive_addresses, archive_findings

log = structlog.get_logger("gateway.store.search")

# Which stored roles each address field looks at. `contact:` is everyone the message touched:
# header From/To/Cc/Bcc and the SMTP envelope, so a guardian's Bcc copy is found too.
ROLES: dict[str, tuple[str, ...]] = {
    "from": ("from",),
    "to": ("to",),
    "cc": ("cc",),
    "bcc": ("bcc",),
}

# Counting stops here: past it a Page is `exact=False` and says "more than COUNT_LIMIT". Each
# match counted costs a row visit where the index alone cannot decide (a phrase, a NOT, a
# subject: word on PostgreSQL, whose tsvectors are TOASTed: ~10 us each), so the limit keeps a
# search well inside its 150 ms at a million messages (bench/archive_scale.py).
COUNT_LIMIT = 1_000

_fts = table("archive_fts", column("rowid"), column("archive_fts"))
_search_tsv = literal_column("archive.search_tsv")
_search_tsv_unindexed = literal_column("(archive.search_tsv || ''::tsvector)")


class SearchUnsupported(RuntimeError):
    """Full-text search is built for SQLite and PostgreSQL only."""


class NotASafeguardingLead(PermissionError):
    """`--as` named someone who is not a DSL in the directory."""

    def __init__(self, email: str) -> None:
        super().__init__(email)
        self.email = email


class WordIndexBehind(Exception):
    """The newest messages are not in the word index and it could not be brought up to date
    (a read-only copy of a SQLite archive, say): words in them would not be found."""

    def __init__(self, count: int, reason: str) -> None:
        super().__init__(
            f"the word index is {count} message{'s' if count != 1 else ''} behind and could "
            f"not be brought up to date ({reason})"
        )
        self.count = count
        self.reason = reason


@dataclass(frozen=True)
class Hit:
    id: int
    queue_id: str
    date: datetime  # received, aware UTC
    from_addr: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    verdict: str
    findings: tuple[str, ...]  # codes, each once, in the order they were found

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue_id": self.queue_id,
            "date": self.date.isoformat(),
            "from": self.from_addr,
            "to": list(self.to),
            "cc": list(self.cc),
            "subject": self.subject,
            "verdict": self.verdict,
            "findings": list(self.findings),
        }


@dataclass(frozen=True)
class Page:
    hits: tuple[Hit, ...]
    total: int  # matches in the whole archive, not just this page; see `exact`
    page: int
    limit: int
    # False: counting stopped at `total` (COUNT_LIMIT, or the end of the requested page if that
    # is further) and more messages match; show it as "more than {total}".
    exact: bool = True
    # The newest messages the word index lacks and could not be given (index_waiting): words
    # in them were not searched. Say so beside the results.
    behind: WordIndexBehind | None = None

    @property
    def pages(self) -> int:
        """Pages of matches; when the count is not exact, the pages known to exist."""
        return max(1, -(-self.total // self.limit))


# ------------------------------------------------------------------------------ index rows

# PostgreSQL's tsvector limits (tsearch/ts_type.h): a lexeme is under 2048 bytes (to_tsvector
# skips longer words), a position at most 16383 (later words all count as 16383), 255 positions
# per lexeme, and under 1 MB for the lexemes and their positions: past that the INSERT fails.
MAX_LEXEME_BYTES = 2047
_MAX_POSITION = 16383
_MAX_POSITIONS = 255
_MAX_VECTOR_BYTES = 1_000_000


def text_vector(subject: str, body: str) -> str:
    """`archive.search_tsv` on PostgreSQL, as tsvector input: the words of the subject (weight
    A) and of the body (B), each with its positions, cut as `query.text_tokens` cuts a query's
    words. So a search meets exactly the words it looks for, whatever the database's locale,
    and the same ones as SQLite's FTS5.

    Made here, not by the database: PostgreSQL's regexp_replace and to_tsvector took ~1.25 ms
    of the server's CPU per 5 kB message, this ~0.15 ms. Past the 1 MB a tsvector may hold,
    later words and places are not indexed (the message is still archived in full)."""
    parts = (text_tokens(subject), text_tokens(body))
    fill = _places if _within_limits(subject, body, *parts) else _places_limited
    places = fill(*parts)
    return " ".join([f"'{word}':{','.join(labels)}" for word, labels in places.items()])


def _within_limits(
    subject: str, body: str, subject_words: Sequence[str], words: Sequence[str]
) -> bool:
    """Whether no limit can apply (but 255 places, which _places keeps): nearly every message."""
    if len(subject_words) >= len(_A) or len(subject_words) + len(words) >= len(_B):
        return False
    wide = 1 if subject.isascii() and body.isascii() else 4  # UTF-8 bytes per character, at most
    longest = max(max(map(len, subject_words), default=0), max(map(len, words), default=0))
    # Each word counted as if new, with its place: more than it costs.
    stored = wide * (len(subject) + len(body)) + 5 * (len(subject_words) + len(words))
    return longest * wide <= MAX_LEXEME_BYTES and stored <= _MAX_VECTOR_BYTES


def _places(subject_words: Sequence[str], words: Sequence[str]) -> dict[str, list[str]]:
    places: dict[str, list[str]] = {}
    get = places.get
    for labels, start, part in ((_A, 1, subject_words), (_B, len(subject_words) + 1, words)):
        for position, word in enumerate(part, start):
            seen = get(word)
            if seen is None:
                places[word] = [labels[position]]
            else:
                seen.append(labels[position])
    for seen in places.values():
        del seen[_MAX_POSITIONS:]
    return places


def _places_limited(subject_words: Sequence[str], words: Sequence[str]) -> dict[str, list[str]]:
    """_places for text that may reach a limit of PostgreSQL's, applied as to_tsvector does."""
    places: dict[str, list[str]] = {}
    size = 0
    position = 0
    for part, labels, weight in ((subject_words, _A, "A"), (words, _B, "B")):
        for word in part:
            length = len(word) if word.isascii() else len(word.encode())
            if length > MAX_LEXEME_BYTES:
                continue  # as to_tsvector: skipped, and it takes no position
            if position < _MAX_POSITION:
                position += 1
            label = labels[position] if position < len(labels) else f"{position}{weight}"
            seen = places.get(word)
            if seen is None:
                # Stored: the word, a byte to align, a count and a position of 2 bytes each.
                if size + length + 5 <= _MAX_VECTOR_BYTES:
                    size += length + 5
                    places[word] = [label]
            elif len(seen) < _MAX_POSITIONS and seen[-1] != label and size < _MAX_VECTOR_BYTES:
                size += 2
                seen.append(label)
    return places


# Position labels made once: formatting ~900 of them per message was most of text_vector's time.
_A = tuple(f"{p}A" for p in range(1024))
_B = tuple(f"{p}B" for p in range(4096))


def index_rows(
    archive_id: int, record: ArchiveRecord
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for archive_addresses and archive_findings describing one archived message."""
    addresses: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    roles: tuple[tuple[str, Iterable[str]], ...] = (
        ("from", (record.from_addr,)),
        ("envelope_from", (record.envelope_from,)),
        ("to", record.to_addrs),
        ("cc", record.cc_addrs),
        ("bcc", record.bcc_addrs),
        ("envelope_to", record.envelope_to),
    )
    for role, values in roles:
        for value in values:
            address = (value or "").strip().lower()[:320]
            if not address or (role, address) in seen:
                continue
            seen.add((role, address))
            domain = address.rpartition("@")[2] if "@" in address else ""
            addresses.append(
                {"archive_id": archive_id, "role": role, "address": address, "domain": domain[:255]}
            )
    findings: list[dict[str, Any]] = []
    codes: set[tuple[str, str]] = set()
    for finding in record.findings:
        # One row per (code, rule): a finding repeated per recipient is one fact for search.
        key = (str(finding.get("code", ""))[:64], str(finding.get("rule", ""))[:128])
        if key[0] and key not in codes:
            codes.add(key)
            findings.append(
                {
                    "archive_id": archive_id,
                    "code": key[0],
                    "rule": key[1],
                    "action": str(finding.get("action", ""))[:16],
                    "urgent": stored_finding_urgent(finding),
                }
            )
    return addresses, findings


# --------------------------------------------------------------------------------- compiling


def _fts5(term: Text) -> str:
    # Tokens are letters and digits only (query.text_tokens), so quoting cannot be broken out
    # of; a quoted string of several tokens is an FTS5 phrase.
    phrase = '"' + " ".join(term.tokens) + '"'
    return f"subject : {phrase}" if term.subject_only else phrase


def _tsquery(term: Text) -> str:
    if len(term.tokens) == 1:
        return f"'{term.tokens[0]}'" + (":A" if term.subject_only else "")

    def phrase(weight: str) -> str:
        return "(" + " <-> ".join(f"'{t}':{weight}" for t in term.tokens) + ")"

    # Subject is weighted A and body B; restricting every token of a phrase to one weight keeps
    # a phrase from matching across the end of the subject into the body, as FTS5 columns do.
    return phrase("A") if term.subject_only else f"({phrase('A')} | {phrase('B')})"


class _Compiler:
    def __init__(
        self,
        dialect: str,
        *,
        scan: bool,
        above: int | None,
        below: int | None,
        zone: tzinfo,
        text_filter: bool = False,
    ) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise SearchUnsupported(
                f"searching the archive needs SQLite or PostgreSQL (this database is {dialect})"
            )
        self.dialect = dialect
        self.params = 0
        # In scan mode `archive.id + 0` hides the primary key from the planner, so that the
        # rows are walked newest first through ix_archive_received_at and each is tested
        # against the (materialised) id lists, instead of every match being fetched and sorted.
        self.ids = archive.c.id + 0 if scan else archive.c.id
        # Only archive ids above this (a window of the newest messages): every id list is cut
        # to the window too, so that SQLite never materialises more of a list than it needs.
        self.above = above
        self.below = below
        self.zone = zone
        # PostgreSQL: test full text on each row rather than through the GIN index (whose
        # bitmap of a word in a third of a million messages takes ~160 ms to build).
        self.text_filter = text_filter

    def within(self, sub: Select[Any], column: ColumnElement[Any]) -> Select[Any]:
        if self.above is not None:
            sub = sub.where(column > self.above)
        return sub if self.below is None else sub.where(column <= self.below)

    def text(self, terms: Sequence[Text], joiner: str) -> ColumnElement[bool]:
        """One full-text predicate for terms joined by AND or OR."""
        self.params += 1
        name = f"fts_{self.params}"
        if self.dialect == "sqlite":
            query = f" {joiner} ".join(f"({_fts5(t)})" for t in terms)
            match = _fts.c.archive_fts.match(bindparam(name, query))
            return self.ids.in_(self.within(select(_fts.c.rowid).where(match), _fts.c.rowid))
        # A word longer than the index keeps (text_vector skips it) is in no message.
        fits = [t for t in terms if all(len(w.encode()) <= MAX_LEXEME_BYTES for w in t.tokens)]
        if not fits or (joiner == "AND" and len(fits) < len(terms)):
            return false()
        op = " & " if joiner == "AND" else " | "
        query = op.join(f"({_tsquery(t)})" for t in fits)
        # tsquery input, not to_tsquery: the words are already cut and lower-cased, as the
        # writer cut the archived text (text_vector); the database's parser is not asked again.
        tsquery = cast(bindparam(name, query), TSQUERY)
        tsv = _search_tsv_unindexed if self.text_filter else _search_tsv
        return tsv.op("@@", is_comparison=True)(tsquery)

    def compile(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, Text):
            return self.text([node], "AND")
        if isinstance(node, (And, Or)):
            joiner = "AND" if isinstance(node, And) else "OR"
            texts = [item for item in node.items if isinstance(item, Text)]
            parts = [self.compile(item) for item in node.items if not isinstance(item, Text)]
            if texts:
                parts.insert(0, self.text(texts, joiner))
            return and_(*parts) if joiner == "AND" else or_(*parts)
        if isinstance(node, Not):
            return not_(self.compile(node.item))
        if isinstance(node, Address):
            key = archive_addresses.c.domain if node.domain else archive_addresses.c.address
            sub = select(archive_addresses.c.archive_id).where(key == node.value)
            if node.field in ROLES:
                sub = sub.where(archive_addresses.c.role.in_(ROLES[node.field]))
            return self.ids.in_(self.within(sub, archive_addresses.c.archive_id))
        if isinstance(node, Flag):
            sub = select(archive_findings.c.archive_id).where(archive_findings.c.code == node.code)
            return self.ids.in_(self.within(sub, archive_findings.c.archive_id))
        if isinstance(node, Verdict):
            return archive.c.verdict == node.verdict
        if isinstance(node, After):
            return archive.c.received_at >= day_start(node.day, self.zone)
        if isinstance(node, Before):
            return archive.c.received_at < day_start(node.day, self.zone)
        raise TypeError(f"not a query node: {node!r}")  # pragma: no cover


def day_start(day: date, zone: tzinfo) -> datetime:
    """The first moment of `day` in `zone`, as the archive stores times (naive UTC): a
    safeguarding lead's "after:2026-07-15" means from midnight where they are."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _before(node: Node, zone: tzinfo) -> datetime | None:
    """The earliest `before:` that every match must satisfy (a top-level term), if any."""
    terms = node.items if isinstance(node, And) else (node,)
    days = [t.day for t in terms if isinstance(t, Before)]
    return day_start(min(days), zone) if days else None


def _common_enough(node: Node, frequencies: dict[str, float], window: int, cap: int) -> bool:
    """Does every full-text term of `node` look common enough that a window of `window`
    messages holds twice `cap` matches of it (each word's share, the rarest word's)? The
    shares are of subject and body together, so a `subject:` term never qualifies."""
    texts = list(_texts(node))
    return bool(texts) and all(
        not term.subject_only
        and min((frequencies.get(t, 0.0) for t in term.tokens), default=0.0) * window
        >= 2 * (cap + 1)
        for term in texts
    )


def index_waiting(engine: Engine, node: Node) -> WordIndexBehind | None:
    """Words are found in what was archived before the search began: on SQLite the rows the
    archive writer has not yet indexed are indexed first (`gateway.store.fulltext`). Every
    reader of `compile_query` with words (search, export) calls this first, and says so to
    the person asking when it returns what could not be indexed."""
    if not any(True for _ in _texts(node)):
        return None
    try:
        index_pending(engine)
        return None
    except Exception as exc:  # e.g. a read-only copy: what is indexed is searched
        log.warning("fulltext_not_up_to_date", error=repr(exc))
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    with engine.connect() as conn:
        count = fulltext_pending(conn)
    return WordIndexBehind(count, reason) if count else None


def _texts(node: Node) -> Iterator[Text]:
    if isinstance(node, Text):
        yield node
    elif isinstance(node, (And, Or)):
        for item in node.items:
            yield from _texts(item)
    elif isinstance(node, Not):
        yield from _texts(node.item)


def _ids_only(node: Node) -> bool:
    """Is every term an address or flag (decided by id lists alone)?"""
    if isinstance(node, (And, Or)):
        return all(_ids_only(item) for item in node.items)
    return isinstance(node, (Address, Flag))


def _indexed(node: Node) -> bool:
    """Does every match need a row in a term index (full text, addresses, findings)?"""
    if isinstance(node, (Text, Address, Flag)):
        return True
    if isinstance(node, And):
        return any(_indexed(item) for item in node.items)
    if isinstance(node, Or):
        return all(_indexed(item) for item in node.items)
    return False


def compile_query(
    node: Node,
    dialect: str,
    *,
    scan: bool = False,
    above: int | None = None,
    below: int | None = None,
    zone: tzinfo = UTC,
    text_filter: bool = False,
) -> ColumnElement[bool]:
    """The WHERE clause selecting the archive rows that `node` matches on `dialect`.

    `scan`: the same rows, phrased so that the planner walks the archive newest first (for a
    query that matches much of the archive) rather than starting from the index lookups.
    `above`: only the matches whose archive id is greater (a window of the newest messages).
    `below`: only those whose id is at most this (a window ending where a `before:` does).
    `zone`: where the dates of `after:` and `before:` are (the organisation's time zone).
    `text_filter` (PostgreSQL): full text tested row by row, not through its index.
    A purged record (a tombstone) never matches: its index rows went with it, and where the
    query needs none (`verdict:`, dates, NOT alone) it is left out by `purged_at`.
    """
    compiler = _Compiler(
        dialect, scan=scan, above=above, below=below, zone=zone, text_filter=text_filter
    )
    where = compiler.compile(node)
    if not _indexed(node):
        where = and_(archive.c.purged_at.is_(None), where)
    if above is not None:
        where = and_(compiler.ids > above, where)
    return where if below is None else and_(compiler.ids <= below, where)


# ---------------------------------------------------------------------------------- running


def _codes(findings: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(f.get("code")) for f in findings or () if f.get("code")))


_COLUMNS = (
    archive.c.id,
    archive.c.queue_id,
    archive.c.received_at,
    archive.c.from_addr,
    archive.c.to_addrs,
    archive.c.cc_addrs,
    archive.c.subject,
    archive.c.verdict,
    archive.c.findings,
)
_NEWEST = (archive.c.received_at.desc(), archive.c.id.desc())


class ArchiveSearch:
    # The first window of newest archive ids looked at, for a count and for a walk; each retry
    # looks at `widen` times as many. Class attributes, so that a test can make them tiny.
    count_window = 8 * COUNT_LIMIT
    walk_window = 2_000
    widen = 8

    def __init__(self, engine: Engine, zone: tzinfo = UTC) -> None:
        self.engine = engine
        self.zone = zone  # the organisation's: what `after:` and `before:` dates mean

    def run(
        self, node: Node, *, limit: int = 50, page: int = 1, count_limit: int | None = COUNT_LIMIT
    ) -> Page:
        """One page of matches, newest first, and the number of matches in all.

        The count is exact up to `count_limit` (or the end of the requested page, if further);
        past that the Page says `exact=False`. `count_limit=None`: always exact (slow for a
        query that matches most of a large archive).
        """
        if limit < 1 or page < 1:
            raise ValueError("limit and page start at 1")
        behind = index_waiting(self.engine, node)
        dialect = self.engine.dialect.name
        offset = (page - 1) * limit
        cap = None if count_limit is None else max(count_limit, offset + limit)
        rows: Sequence[Any] = ()
        with self.engine.connect() as conn:
            size = int(conn.execute(select(func.max(archive.c.id))).scalar() or 0)
            # The count is needed anyway (paging, the audit) and tells which way to fetch the
            # page is cheaper; see _walk_newest_first.
            total, exact, seen = self._count(conn, node, dialect, size, cap)
            if offset < total or not exact:
                counted = (total, exact, seen)
                if (
                    not exact
                    and _ids_only(node)
                    and self._collect_in_window(total, offset + limit, seen)
                ):
                    rows = self._walk(conn, node, dialect, size, counted, limit, offset, True)
                elif self._walk_newest_first(size, total, offset + limit, exact):
                    rows = self._walk(conn, node, dialect, size, counted, limit, offset)
                else:
                    rows = self._collect(conn, node, dialect, limit, offset)
        hits = tuple(
            Hit(
                id=row.id,
                queue_id=row.queue_id,
                date=as_aware(row.received_at),
                from_addr=row.from_addr,
                to=tuple(row.to_addrs or ()),
                cc=tuple(row.cc_addrs or ()),
                subject=row.subject,
                verdict=row.verdict,
                findings=_codes(row.findings),
            )
            for row in rows
        )
        return Page(hits, total, page, limit, exact, behind)

    def _count(
        self, conn: Connection, node: Node, dialect: str, size: int, cap: int | None
    ) -> tuple[int, bool, int]:
        """(matches, exact, ids looked at): counted in widening windows of the newest ids,
        stopping past `cap`. "Looked at" counts from the window's oldest id to the newest.

        A word in most of the archive finds `cap` matches in the first window; a rare one widens
        the window to the whole archive, where its id lists are short anyway. With a `before:`
        the windows end at the newest message received before it, where the matches start:
        a staff member's mail of one term a year ago is not sought among this month's ids.
        """
        top = size if cap is None else self._newest_before(conn, node, size)
        steer = dialect == "postgresql"
        if steer:
            # PostgreSQL prices `search_tsv @@ query` as cheap, but each row it tests that way
            # reads its TOASTed tsvector (~10 us); a bitmap scan lets the GIN index decide, and
            # reads rows only to check a phrase or weight. So, for counting only: no plain
            # index or sequential scans (each stays possible where nothing else is).
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            conn.execute(text("SET LOCAL enable_indexscan = off"))
        try:
            if cap is None:
                where = compile_query(node, dialect, zone=self.zone)
                counted = select(func.count()).select_from(archive).where(where)
                return int(conn.execute(counted).scalar_one()), True, size
            window = max(self.count_window, cap)
            # Words in a large part of the archive: the first window holds enough matches, and
            # testing its rows one by one beats building the index's bitmap of every match.
            text_filter = (
                steer
                and any(True for _ in _texts(node))  # the statistics cost a query: only for words
                and _common_enough(node, self._frequencies(conn), window, cap)
            )
            while True:
                above = top - window if window < top else None
                below = top if top < size else None
                matching = select(archive.c.id).where(
                    compile_query(
                        node,
                        dialect,
                        above=above,
                        below=below,
                        zone=self.zone,
                        text_filter=text_filter,
                    )
                )
                text_filter = False
                found = int(
                    conn.execute(
                        select(func.count()).select_from(matching.limit(cap + 1).subquery())
                    ).scalar_one()
                )
                if found > cap:
                    return cap, False, size - (above or 0)
                if above is None:
                    if below is None:
                        return found, True, size
                    # Ids grow with time, but not strictly (clocks, several gateways): an id
                    # after the window's end may still match, so the exact count takes all.
                    top = window = size
                    continue
                window *= self.widen
        finally:
            if steer:
                conn.execute(text("RESET enable_seqscan"))
                conn.execute(text("RESET enable_indexscan"))

    @staticmethod
    def _frequencies(conn: Connection) -> dict[str, float]:
        """PostgreSQL's sampled share of messages holding each common word (from ANALYZE)."""
        rows = conn.execute(
            text(
                "SELECT u.word, u.freq FROM pg_stats s, unnest("
                "s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(word, freq)"
                " WHERE s.tablename = 'archive' AND s.attname = 'search_tsv'"
                " AND s.schemaname = current_schema()"
            )
        )
        return {row.word: float(row.freq) for row in rows}

    def _newest_before(self, conn: Connection, node: Node, size: int) -> int:
        """The id of the newest message received before the query's `before:`, else `size`."""
        before = _before(node, self.zone)
        if before is None:
            return size
        newest = conn.execute(
            select(archive.c.id)
            .where(archive.c.received_at < before)
            .order_by(archive.c.received_at.desc())
            .limit(1)
        ).scalar()
        return size if newest is None else min(int(newest), size)

    @staticmethod
    def _walk_newest_first(size: int, total: int, wanted: int, exact: bool) -> bool:
        """Which plan fetches `wanted` rows of `total` matches more cheaply.

        Either every match is collected through the term indexes and the newest sorted out
        (cost ~ total), or the archive is walked newest first through ix_archive_received_at,
        testing each row, until `wanted` have matched (cost ~ wanted x archive size / total,
        if matches are spread evenly over time). Left to themselves both planners misjudge
        this: PostgreSQL walks the time index for a rare word and reads the whole archive to
        find it, SQLite sorts half a million rows to show the newest fifty. A count that
        stopped at its limit means more matches than the page needs: walk.
        """
        return not exact or wanted * size < total * total

    @staticmethod
    def _collect_in_window(counted: int, wanted: int, seen: int) -> bool:
        """For a count that stopped at its limit (`counted` matches among the `seen` newest
        ids) of a query of address and flag terms only: is collecting the window's matches and
        sorting them cheaper than walking it?

        The window holds a few times `counted` matches at most (the window before it, `widen`
        times smaller, held fewer), each an index entry, while a walk reads about
        `wanted` x `seen` / `counted` rows: a child's history in half the archive is a thousand
        index entries against tens of thousands of rows read newest first. (Full-text and date
        terms are left to the walk: on PostgreSQL a phrase is checked on each row's tsvector,
        and a `before:` lets the walk start where the matches are.)
        """
        return wanted * seen > 2 * counted * counted

    def _walk(
        self,
        conn: Connection,
        node: Node,
        dialect: str,
        size: int,
        counted: tuple[int, bool, int],
        limit: int,
        offset: int,
        collect: bool = False,
    ) -> Sequence[Any]:
        """The page, walking newest first within a window of the newest ids, widened until the
        page is full and nothing older than the window can belong on it.

        `counted`: what _count found: (matches, exact, among so many of the newest ids).
        `collect`: within each window, collect the matches and sort them instead.
        """
        wanted = offset + limit
        total, exact, seen = counted
        # Exact: enough ids for `wanted` matches at the density counted, four times over. Not
        # exact: the count's last window holds more matches than its limit, which is at least
        # `wanted`, so the page is in there (unless ids and times disagree, see below).
        window = max(self.walk_window, 4 * wanted * size // max(total, 1)) if exact else seen
        before = _before(node, self.zone)
        while True:
            above = size - window if window < size else None
            if collect:
                rows = self._collect(conn, node, dialect, limit, offset, above)
            else:
                stmt = (
                    select(*_COLUMNS)
                    .where(compile_query(node, dialect, scan=True, above=above, zone=self.zone))
                    .order_by(*_NEWEST)
                    .limit(limit)
                    .offset(offset)
                )
                rows = conn.execute(stmt).all()
            if above is None:
                return rows
            if len(rows) == limit:
                # Ids grow with time, but not strictly (clocks, several gateways): the page is
                # right unless a message below the window was received after its last row
                # (and before the query's own `before:`, if it has one).
                later = select(archive.c.id).where(
                    archive.c.received_at > rows[-1].received_at, archive.c.id <= above
                )
                if before is not None:
                    later = later.where(archive.c.received_at < before)
                if conn.execute(later.limit(1)).first() is None:
                    return rows
            window = max(window * self.widen, seen)

    def _collect(
        self,
        conn: Connection,
        node: Node,
        dialect: str,
        limit: int,
        offset: int,
        above: int | None = None,
    ) -> Sequence[Any]:
        """The page, collecting every match (with an id above `above`) through the term
        indexes and sorting them."""
        matches = (
            select(archive.c.id, archive.c.received_at)
            .where(compile_query(node, dialect, above=above, zone=self.zone))
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
        top = (
            select(matches.c.id)
            .order_by(matches.c.received_at.desc(), matches.c.id.desc())
            .limit(limit)
            .offset(offset)
            .subquery("top")
        )
        stmt = (
            select(*_COLUMNS).join_from(archive, top, archive.c.id == top.c.id).order_by(*_NEWEST)
        )
        return conn.execute(stmt).all()

    def search(
        self,
        query: str,
        *,
        actor: str,
        at: datetime,
        as_dsl: bool = False,
        limit: int = 50,
        page: int = 1,
        detail: dict[str, Any] | None = None,
        count_limit: int | None = COUNT_LIMIT,
    ) -> Page:
        """Parse, check access, run and audit one search.

        `as_dsl`: `actor` names a Designated Safeguarding Lead, who must be one in the directory;
        a refusal is itself audited (action `search_refused`) and raises NotASafeguardingLead.
        Otherwise `actor` is the operator at the console (the local OS user), trusted as such.
        The audit row is committed before results are returned: no search goes unrecorded.
        A query that does not parse raises QueryError; nothing was searched, nothing is audited.
        """
        node = parse(query)
        log = AuditLog(self.engine)
        extra = {"as": actor if as_dsl else None, **(detail or {})}
        if as_dsl:
            try:
                actor = require_dsl(self.engine, actor)
            except NotASafeguardingLead:
                log.record(
                    actor=actor[:320], action="search_refused", at=at, query=query, detail=extra
                )
                raise
        result = self.run(node, limit=limit, page=page, count_limit=count_limit)
        log.record(
            actor=actor,
            action="search",
            at=at,
            query=query,
            result_count=result.total,
            detail={
                "page": page,
                "limit": limit,
                "shown": len(result.hits),
                **({} if result.exact else {"more_than": result.total}),
                **({"word_index_behind": result.behind.count} if result.behind else {}),
                **extra,
            },
        )
        return result


def require_dsl(engine: Engine, email: str) -> str:
    """The directory's spelling of a Designated Safeguarding Lead's address; else raises."""
    wanted = email.strip().lower()
    for member in DirectoryStore(engine).staff():
        if member.email.lower() == wanted and member.dsl:
            return member.email
    raise NotASafeguardingLead(email)


__all__ = [
    "COUNT_LIMIT",
    "ArchiveSearch",
    "Hit",
    "NotASafeguardingLead",
    "Page",
    "SearchUnsupported",
    "WordIndexBehind",
    "compile_query",
    "index_rows",
    "index_waiting",
    "require_dsl",
]
