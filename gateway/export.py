"""Exporting archived messages exactly as received, with a manifest of SHA-256 hashes: for a
parent's subject-access request, an investigation, or a handover."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Engine, and_, select

from gateway.chat import sent_apart
from gateway.directory.model import DirectoryView, normalise_email
from gateway.notify.render import local_time, short_time
from gateway.policy.types import stored_finding_urgent
from gateway.search.labels import chat_told, finding_label, verdict_label
from gateway.search.query import Node
from gateway.store.records import as_aware
from gateway.store.reviews import Review, ReviewStore
from gateway.store.schema import archive, queue
from gateway.store.search import compile_query, index_waiting

FORMATS = ("mbox", "eml-zip")
MANIFEST_COLUMNS = (
    "archive_id",
    "queue_id",
    "date",
    "from",
    "to",
    "cc",
    "bcc",
    "envelope_to",
    "subject",
    "verdict",
    "findings",
    "sha256",
    "file",
    # Beyond interface.md's columns, after them: what a referral needs besides the messages.
    "date_local",  # in the organisation's time zone, as the console shows it
    "outcome",  # what became of it: delivered when, held, cancelled, refused
    "reviews",  # the safeguarding leads' reviews, oldest first (only when asked for)
    "channel",  # "email", or the chat tool's: its verdict was advice to the tool
)


@dataclass(frozen=True)
class Exported:
    path: Path
    count: int
    sha256: str  # of the export file itself
    extra_files: tuple[Path, ...]  # manifests and cover page written beside an mbox


def matching_ids(engine: Engine, node: Node, zone: tzinfo = UTC) -> list[int]:
    """Every match, oldest first: an export reads as the conversation happened. Tombstones
    (records retention emptied) have no message left to export. `zone`: the organisation's,
    where the query's dates are. Raises WordIndexBehind rather than leave out messages the
    word index lacks and cannot be given."""
    behind = index_waiting(engine, node)
    if behind is not None:
        # Evidence must be whole: an export that silently missed the newest messages would
        # read as complete. (A search says so beside its results instead.)
        raise behind
    where = and_(compile_query(node, engine.dialect.name, zone=zone), archive.c.purged_at.is_(None))
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(archive.c.id).where(where).order_by(archive.c.received_at, archive.c.id)
            ).scalars()
        )


@dataclass(frozen=True)
class _Item:
    row: Any  # the archive row
    deliveries: list[Any]  # its queue entries of kind "deliver", oldest first
    reviews: list[Review]  # oldest first; empty unless asked for


def _rows(
    engine: Engine, ids: Sequence[int], *, with_reviews: bool, batch: int = 500
) -> Iterator[_Item]:
    store = ReviewStore(engine)
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        with engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(select(archive).where(archive.c.id.in_(chunk)))}
            deliveries: dict[int, list[Any]] = {}
            for entry in conn.execute(
                select(
                    queue.c.archive_id,
                    queue.c.status,
                    queue.c.recipients,
                    queue.c.created_at,
                    queue.c.next_attempt_at,
                    queue.c.finished_at,
                    queue.c.last_error,
                )
                .where(queue.c.archive_id.in_(chunk), queue.c.kind == "deliver")
                .order_by(queue.c.id)
            ):
                deliveries.setdefault(entry.archive_id, []).append(entry)
        reviewed: dict[int, list[Review]] = {}
        if with_reviews:
            for review in store.of_many(chunk):
                reviewed.setdefault(review.archive_id, []).append(review)
        for archive_id in chunk:
            yield _Item(
                rows[archive_id], deliveries.get(archive_id, []), reviewed.get(archive_id, [])
            )


def outcome(
    verdict: str,
    deliveries: Sequence[Any],
    zone: tzinfo,
    *,
    channel: str = "email",
    envelope_to: Sequence[str] = (),
) -> str:
    """What became of a message, as a child's export and the console's message page say it:
    whether, and when, it reached its recipients (a referral asks whether the child ever
    received it). Its deliveries say so
    first: in monitor mode a message the policy would refuse is delivered all the same. A
    recipient upstream refused is named: one delivery may reach a parent and not the child."""
    if not deliveries:
        if channel != "email":
            # The tool sends its own messages: said as the console and the alert say it.
            return chat_told(verdict)
        if verdict == "reject":
            return "Refused: not sent (its sender was told why)"
        return "No delivery recorded"
    parts = []
    sent_to = {r for entry in deliveries for r in entry.recipients or ()}
    for entry in deliveries:
        if entry.status == "delivered":
            text = f"delivered {short_time(entry.finished_at, zone)}"
            if entry.last_error:  # some recipients refused upstream: which, and why
                text += f", refused for some: {entry.last_error[:300]}"
        elif entry.status == "cancelled":
            text = f"cancelled {short_time(entry.finished_at, zone)}, never sent"
        elif entry.status == "failed":
            text = f"could not be delivered ({short_time(entry.finished_at, zone)})"
        elif entry.status == "sending":
            text = "being sent"
        elif entry.next_attempt_at > entry.created_at:
            text = f"waiting until {short_time(entry.next_attempt_at, zone)}"
        else:
            text = "waiting to be sent"
        if len(deliveries) > 1:
            text += f" (to {', '.join(entry.recipients or ())})"
        parts.append(text)
    # Retried for those upstream deferred, an entry keeps only them: the others were refused.
    dropped = [r for r in envelope_to if r not in sent_to]
    if dropped and any(entry.status == "delivered" for entry in deliveries):
        parts.append(f"not delivered to {', '.join(dropped)} (refused upstream)")
    joined = "; ".join(parts)
    return joined[0].upper() + joined[1:]


def _reviews(reviews: Sequence[Review], zone: tzinfo) -> str:
    said = [(f"{short_time(r.at, zone)} {r.reviewer}: {r.outcome_label}", r.note) for r in reviews]
    return "; ".join(f"{head}: {note}" if note else head for head, note in said)


def _told(row: Any, urgent_rules: frozenset[str]) -> tuple[str, list[str]]:
    """The verdict and finding codes an export without the leads' notes shows: watch-list
    (urgent) findings left out, and the verdict what the others make it, as the sender and
    the chat API are told. A member of staff's own subject access request must not tell them
    that the watch list caught them."""
    findings = [f for f in row.findings if not stored_finding_urgent(f, urgent_rules)]
    verdict = row.verdict
    if verdict == "flag" and not any(f.get("action") == "flag" for f in findings):
        verdict = "deliver"
    return verdict, list(dict.fromkeys(f["code"] for f in findings))


def _manifest_row(
    item: _Item,
    raw: bytes,
    name: str,
    zone: tzinfo,
    urgent_rules: frozenset[str] | None,
) -> dict[str, Any]:
    """`urgent_rules` None: every finding (with the leads' notes); else those of a family's
    copy (`_told`)."""
    row = item.row
    if urgent_rules is None:
        verdict, codes = row.verdict, list(dict.fromkeys(f["code"] for f in row.findings))
    else:
        verdict, codes = _told(row, urgent_rules)
    return {
        "archive_id": row.id,
        "queue_id": row.queue_id,
        "date": as_aware(row.received_at).isoformat(),
        "from": row.from_addr or row.envelope_from,
        "to": ";".join(row.to_addrs),
        "cc": ";".join(row.cc_addrs),
        "bcc": ";".join(row.bcc_addrs),
        "envelope_to": ";".join(row.envelope_to),
        "subject": row.subject,
        "verdict": verdict,
        "findings": ";".join(codes),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "file": name,
        "date_local": short_time(row.received_at, zone),
        "outcome": outcome(
            row.verdict,
            item.deliveries,
            zone,
            channel=row.channel,
            envelope_to=row.envelope_to or (),
        )
        + _sent_late(row, raw, zone),
        "reviews": _reviews(item.reviews, zone),
        "channel": row.channel,
    }


def _sent_late(row: Any, raw: bytes, zone: tzinfo) -> str:
    """When a chat tool sent a message it passed on late (held during an outage): the dates
    are when the gateway received it, as the console lists it."""
    sent = sent_apart(row.channel, raw, as_aware(row.received_at))
    return f" It was sent {short_time(sent, zone)}." if sent is not None else ""


def _csv(rows: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _mbox_entry(row: Any, raw: bytes) -> bytes:
    """mboxrd: a From_ line, then the message with every ^>*From quoted one level deeper."""
    sender = (row.envelope_from or "MAILER-DAEMON").replace(" ", "_")
    when = as_aware(row.received_at).strftime("%a %b %d %H:%M:%S %Y")
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    quoted = [b">" + line if line.lstrip(b">").startswith(b"From ") else line for line in lines]
    body = b"\n".join(quoted)
    if not body.endswith(b"\n"):
        body += b"\n"
    return f"From {sender} {when}\n".encode() + body + b"\n"


def export(
    engine: Engine,
    ids: Sequence[int],
    *,
    fmt: str,
    out: Path,
    cover: Callable[[list[dict[str, Any]]], str] | None = None,
    progress: Callable[[int], None] | None = None,
    zone: tzinfo = UTC,
    with_reviews: bool = False,
    urgent_rules: frozenset[str] = frozenset(),
) -> Exported:
    """Write the messages `ids` to `out` (mbox or a zip of .eml files) with manifests.
    `zone`: the organisation's, for the manifests' local dates. `with_reviews`: the leads'
    reviews and notes, and watch-list findings, too (for a referral); without, findings of
    `urgent_rules` (the pack's) are left out, as the sender is never told of them."""
    hidden = None if with_reviews else urgent_rules
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    manifest: list[dict[str, Any]] = []
    extra: list[Path] = []
    tmp = out.with_name(out.name + ".partial")
    items = _rows(engine, ids, with_reviews=with_reviews)
    try:
        if fmt == "eml-zip":
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                for n, item in enumerate(items, start=1):
                    raw = zlib.decompress(item.row.raw_gz)
                    name = f"messages/{n:06d}-{item.row.queue_id}.eml"
                    bundle.writestr(name, raw)
                    manifest.append(_manifest_row(item, raw, name, zone, hidden))
                    if progress:
                        progress(1)
                bundle.writestr("manifest.csv", _csv(manifest))
                bundle.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
                if cover is not None:
                    bundle.writestr("cover.html", cover(manifest))
        else:
            with open(tmp, "wb") as handle:
                for n, item in enumerate(items, start=1):
                    raw = zlib.decompress(item.row.raw_gz)
                    handle.write(_mbox_entry(item.row, raw))
                    manifest.append(_manifest_row(item, raw, f"message {n}", zone, hidden))
                    if progress:
                        progress(1)
            for suffix, content in (
                (".manifest.csv", _csv(manifest)),
                (".manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode()),
            ):
                path = out.with_name(out.name + suffix)
                extra.append(path)
                path.write_bytes(content)
            if cover is not None:
                path = out.with_name(out.name + ".cover.html")
                extra.append(path)
                path.write_text(cover(manifest), encoding="utf-8")
        tmp.replace(out)  # a half-written export never carries the final name
    except BaseException:
        # A failed export leaves nothing behind that could pass for a part of one.
        for leftover in (tmp, *extra):
            leftover.unlink(missing_ok=True)
        raise
    with out.open("rb") as written:  # in pieces: an export may be larger than memory
        digest = hashlib.file_digest(written, "sha256").hexdigest()
    return Exported(out, len(manifest), digest, tuple(extra))


@dataclass(frozen=True)
class History:
    """A person's whole history: the query that finds it and, for its cover page, who they
    are (`name` None: not in the directory)."""

    query: str
    addresses: tuple[str, ...]
    name: str | None


def person_history(view: DirectoryView, address: str) -> History:
    """`export --contact` and the console's person page: everything to, from or copying a
    person, at every address the directory has for them (a pupil may write from home and from
    school)."""
    person = view.contact(address)
    found = [normalise_email(a) for a in person.emails] if person else [address]
    addresses = tuple(dict.fromkeys(found))
    return History(
        query=" OR ".join(f"contact:{a}" for a in addresses),
        addresses=addresses,
        name=person.name if person else None,
    )


def cover_page(
    env: jinja2.Environment,
    *,
    contact: str,
    name: str | None,
    organisation: str,
    exported_by: str,
    at: datetime,
    query: str,
    zone: tzinfo = UTC,
    with_reviews: bool = False,
) -> Callable[[list[dict[str, Any]]], str]:
    def render(manifest: list[dict[str, Any]]) -> str:
        return env.get_template("notices/export_cover.html.j2").render(
            contact=contact,
            name=name,
            organisation=organisation,
            exported_by=exported_by,
            at=local_time(at, zone),
            zone=str(zone),
            query=query,
            messages=manifest,
            with_reviews=with_reviews,
            verdict_label=verdict_label if with_reviews else _family_verdict_label,
            finding_label=finding_label,
        )

    return render


def _family_verdict_label(verdict: str, channel: str = "email") -> str:
    """Without the watch list's findings, "nothing found" could be false (a message they alone
    flagged shows as delivered), and on some rows only would point to the ones it is not: a
    message with nothing found is "Sent"."""
    return "Sent" if verdict == "deliver" else verdict_label(verdict, channel)
