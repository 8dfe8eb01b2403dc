"""Searching the archive: the query AST compiled to SQL for SQLite and PostgreSQL, run, counted
and audited.

Each term becomes one predicate on `archive`, backed by an index (migration 0002):

- words and phrases: FTS5 `archive_fts` (SQLite) or the GIN-indexed `archive.search_tsv`
  (PostgreSQL). Text terms that sit side by side in one AND (or one OR) are merged into a single
  full-text query, so the common "a few words" search costs one index lookup;
- from: to: cc: bcc: contact: `archive_addresses` (address, role) or (domain, role);
- flag: `archive_findings` (code); verdict: / after: / before: the archive's own indexed columns.

Results are newest first (received_at, then id, both descending) with LIMIT/OFFSET paging.
The exact count comes first; from it the page is fetched whichever way is cheaper (collect the
matches and sort, or walk the archive newest first), see ArchiveSearch._walk_newest_first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    not_,
    or_,
    select,
    table,
)

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
)
from gateway.store.audit import AuditLog
from gateway.store.directory import DirectoryStore
from gateway.store.records import ArchiveRecord, as_aware
from gateway.store.schema import archive, archive_addresses, archive_findings

# Which stored roles each address field looks at. `contact:` is everyone the message touched:
# header From/To/Cc/Bcc and the SMTP envelope, so a guardian's Bcc copy is found too.
ROLES: dict[str, tuple[str, ...]] = {
    "from": ("from",),
    "to": ("to",),
    "cc": ("cc",),
    "bcc": ("bcc",),
}

_fts = table("archive_fts", column("rowid"), column("archive_fts"))
_search_tsv = literal_column("archive.search_tsv")


class SearchUnsupported(RuntimeError):
    """Full-text search is built for SQLite and PostgreSQL only."""


class NotASafeguardingLead(PermissionError):
    """`--as` named someone who is not a DSL in the directory."""

    def __init__(self, email: str) -> None:
        super().__init__(email)
        self.email = email


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
    total: int  # matches in the whole archive, not just this page
    page: int
    limit: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))


# ------------------------------------------------------------------------------ index rows


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
    def __init__(self, dialect: str, *, scan: bool = False) -> None:
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

    def text(self, terms: Sequence[Text], joiner: str) -> ColumnElement[bool]:
        """One full-text predicate for terms joined by AND or OR."""
        self.params += 1
        name = f"fts_{self.params}"
        if self.dialect == "sqlite":
            query = f" {joiner} ".join(f"({_fts5(t)})" for t in terms)
            match = _fts.c.archive_fts.match(bindparam(name, query))
            return self.ids.in_(select(_fts.c.rowid).where(match))
        op = " & " if joiner == "AND" else " | "
        query = op.join(f"({_tsquery(t)})" for t in terms)
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), bindparam(name, query))
        return _search_tsv.op("@@", is_comparison=True)(tsquery)

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
            return self.ids.in_(sub)
        if isinstance(node, Flag):
            sub = select(archive_findings.c.archive_id).where(archive_findings.c.code == node.code)
            return self.ids.in_(sub)
        if isinstance(node, Verdict):
            return archive.c.verdict == node.verdict
        # Dates are compared as UTC dates for now: a message sent at 00:30 British Summer Time
        # counts as the day before. Good enough for "last term"; to be moved to the
        # organisation's zone when search learns the configured timezone.
        if isinstance(node, After):
            return archive.c.received_at >= datetime.combine(node.day, time())
        if isinstance(node, Before):
            return archive.c.received_at < datetime.combine(node.day, time())
        raise TypeError(f"not a query node: {node!r}")  # pragma: no cover


def compile_query(node: Node, dialect: str, *, scan: bool = False) -> ColumnElement[bool]:
    """The WHERE clause selecting the archive rows that `node` matches on `dialect`.

    `scan`: the same rows, phrased so that the planner walks the archive newest first (for a
    query that matches much of the archive) rather than starting from the index lookups.
    """
    return _Compiler(dialect, scan=scan).compile(node)


# ---------------------------------------------------------------------------------- running


def _codes(findings: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(f.get("code")) for f in findings or () if f.get("code")))


class ArchiveSearch:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def run(self, node: Node, *, limit: int = 50, page: int = 1) -> Page:
        """One page of matches, newest first, and the number of matches in all."""
        if limit < 1 or page < 1:
            raise ValueError("limit and page start at 1")
        dialect = self.engine.dialect.name
        where = compile_query(node, dialect)
        offset = (page - 1) * limit
        columns = (
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
        newest = (archive.c.received_at.desc(), archive.c.id.desc())
        rows: Sequence[Any] = ()
        with self.engine.connect() as conn:
            # The count walks the index lookups (it is needed anyway, for paging and the audit)
            # and tells which way to fetch the page is cheaper; see _walk_newest_first.
            total = int(
                conn.execute(select(func.count()).select_from(archive).where(where)).scalar_one()
            )
            if offset < total:
                if self._walk_newest_first(conn, total, offset + limit):
                    stmt = select(*columns).where(compile_query(node, dialect, scan=True))
                    stmt = stmt.order_by(*newest).limit(limit).offset(offset)
                else:
                    matches = (
                        select(archive.c.id, archive.c.received_at)
                        .where(where)
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
                        select(*columns)
                        .join_from(archive, top, archive.c.id == top.c.id)
                        .order_by(*newest)
                    )
                rows = conn.execute(stmt).all()
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
        return Page(hits, total, page, limit)

    @staticmethod
    def _walk_newest_first(conn: Connection, total: int, wanted: int) -> bool:
        """Which plan fetches `wanted` rows of `total` matches more cheaply.

        Either every match is collected through the term indexes and the newest sorted out
        (cost ~ total), or the archive is walked newest first through ix_archive_received_at,
        testing each row, until `wanted` have matched (cost ~ wanted x archive size / total,
        if matches are spread evenly over time). Left to themselves both planners misjudge
        this: PostgreSQL walks the time index for a rare word and reads the whole archive to
        find it, SQLite sorts half a million rows to show the newest fifty.
        """
        size = conn.execute(select(func.max(archive.c.id))).scalar() or 0
        return wanted * size < total * total

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
        result = self.run(node, limit=limit, page=page)
        log.record(
            actor=actor,
            action="search",
            at=at,
            query=query,
            result_count=result.total,
            detail={"page": page, "limit": limit, "shown": len(result.hits), **extra},
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
    "ArchiveSearch",
    "Hit",
    "NotASafeguardingLead",
    "Page",
    "SearchUnsupported",
    "compile_query",
    "index_rows",
    "require_dsl",
]
