"""Applying the pack's retention to the archive (`safeguard archive purge`).

Planning reads; purging turns the planned records into tombstones in batches, each batch and
its audit row one transaction, so an interrupted purge leaves a consistent, verifiable archive
and simply has less to do when run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlalchemy import Engine

from gateway.directory.model import DirectoryView
from gateway.policy.retention import describe, keep_until, youngest_minor_born
from gateway.policy.types import Retention
from gateway.store.retention import Candidate, candidates, live_count, tombstone

Progress = Callable[[int], None]


@dataclass
class Plan:
    rule: str  # the retention rule in words
    today: date
    live: int  # records not yet purged
    due: list[int] = field(default_factory=list)
    held_for_minor: int = 0  # old enough by years, kept because a young person is under the age
    first_received: date | None = None  # of the records due (organisation's local dates)
    last_received: date | None = None


def plan(
    engine: Engine,
    retention: Retention,
    view: DirectoryView,
    zone: tzinfo,
    now: datetime,
    *,
    progress: Progress | None = None,
) -> Plan:
    """Which records retention lets go on `now`'s local date. A young person's date of birth
    comes from the record (as the directory said when it was archived) and from today's
    directory, and the later keeping date wins."""
    today = now.astimezone(zone).date()
    result = Plan(describe(retention), today, live_count(engine))
    if retention.years is None and retention.until_age is None:
        return result
    # Nothing younger than `years` can be due; two days' slack covers zones and leap days.
    cutoff = now if retention.years is None else now - timedelta(days=365 * retention.years - 2)
    for batch in candidates(engine, cutoff):
        for record in batch:
            received = record.received_at.replace(tzinfo=UTC).astimezone(zone).date()
            until = keep_until(received, retention, _minors(record, view, received))
            if until is not None and until <= today:
                result.due.append(record.id)
                if result.first_received is None or received < result.first_received:
                    result.first_received = received
                if result.last_received is None or received > result.last_received:
                    result.last_received = received
            elif _past_years(received, retention, today):
                result.held_for_minor += 1
        if progress is not None:
            progress(len(batch))
    return result


def _past_years(received: date, retention: Retention, today: date) -> bool:
    by_years = keep_until(received, Retention(years=retention.years), ())
    return by_years is None or by_years <= today


def _minors(record: Candidate, view: DirectoryView, received: date) -> list[date]:
    born = [record.youngest_minor_born] if record.youngest_minor_born else []
    now_known = youngest_minor_born(record.addresses, view, received)
    return born + ([now_known] if now_known else [])


def purge(
    engine: Engine,
    planned: Plan,
    *,
    at: datetime,
    actor: str,
    batch: int = 2000,
    progress: Progress | None = None,
) -> int:
    """Tombstone what `planned` found due; returns how many records were emptied."""
    done = 0
    for start in range(0, len(planned.due), batch):
        ids = planned.due[start : start + batch]
        done += len(tombstone(engine, ids, at=at, actor=actor, rule=planned.rule))
        if progress is not None:
            progress(len(ids))
    return done
