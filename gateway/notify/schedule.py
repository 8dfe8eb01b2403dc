"""The daily digest, sent once a day to the safeguarding leads by whichever gateway gets there
first (several gateways may share one database: the database decides who sends)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, time, timedelta

import jinja2
import structlog
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.clock import Clock
from gateway.ids import new_queue_id
from gateway.notify.digest import render, summarise
from gateway.notify.policy import plain_notice
from gateway.policy.types import Organisation
from gateway.store.archive import Archive
from gateway.store.db import transaction
from gateway.store.records import ArchiveRecord, QueueItem, utc_naive
from gateway.store.reports import verdicts_since
from gateway.store.schema import meta

log = structlog.get_logger("gateway.digest")
_KEY = "digest_last_day"


def claim_day(engine: Engine, day: str, now: datetime) -> bool:
    """True for exactly one caller per day, across every gateway on this database."""
    with transaction(engine) as conn:
        current = conn.execute(select(meta.c.value).where(meta.c.key == _KEY)).scalar()
        if current is None:
            try:
                conn.execute(insert(meta).values(key=_KEY, value=day, updated_at=utc_naive(now)))
            except IntegrityError:
                return False
            return True
        if current >= day:
            return False
        result = conn.execute(
            update(meta)
            .where(meta.c.key == _KEY, meta.c.value == current)
            .values(value=day, updated_at=utc_naive(now))
        )
        return result.rowcount == 1


def next_run(now: datetime, at: time) -> datetime:
    candidate = datetime.combine(now.date(), at, tzinfo=now.tzinfo)
    return candidate if candidate > now else candidate + timedelta(days=1)


def queue_digest(
    *,
    engine: Engine,
    archive: Archive,
    env: jinja2.Environment,
    org: Organisation,
    hostname: str,
    now: datetime,
    urgent_rules: frozenset[str] = frozenset(),
) -> str | None:
    """Archive and queue one digest covering the last 24 hours; returns its queue id."""
    if not org.dsl:
        return None
    local = now.astimezone(org.timezone)
    since = local - timedelta(hours=24)
    digest = summarise(verdicts_since(engine, since), since, local, urgent_rules)
    body = render(env, digest, org.name)
    subject = f"Safeguarding digest: {digest.messages} message(s) with findings"
    raw = plain_notice(
        hostname=hostname,
        to=list(org.dsl),
        subject=subject,
        body=body,
        sent=now,
        kind="digest",
        from_name="Safeguard Gateway",
    )
    record = ArchiveRecord(
        queue_id=new_queue_id(),
        received_at=now,
        raw=raw,
        verdict="deliver",
        client_address="gateway",
        envelope_to=org.dsl,
        to_addrs=org.dsl,
        subject=subject,
        dedupe=False,
        evaluation={"generated": "digest"},
    )
    return archive.store(
        record, [QueueItem(kind="notice", mail_from="", recipients=org.dsl)]
    ).queue_id


async def run_daily(
    *,
    engine: Engine,
    archive: Archive,
    env: jinja2.Environment,
    org: Organisation,
    hostname: str,
    clock: Clock,
    at: time,
    stop: asyncio.Event,
    wake_worker: callable,  # type: ignore[valid-type]
    urgent_rules: frozenset[str] = frozenset(),
) -> None:
    while not stop.is_set():
        local_now = clock.now().astimezone(org.timezone)
        due = next_run(local_now, at)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), (due - local_now).total_seconds())
        if stop.is_set():
            return
        try:
            now = clock.now()
            if await asyncio.to_thread(claim_day, engine, due.date().isoformat(), now):
                queue_id = await asyncio.to_thread(
                    queue_digest,
                    engine=engine,
                    archive=archive,
                    env=env,
                    org=org,
                    hostname=hostname,
                    now=now,
                    urgent_rules=urgent_rules,
                )
                log.info("digest_queued", queue_id=queue_id)
                wake_worker()
        except Exception as exc:  # the digest must never take the relay down
            log.error("digest_failed", error=repr(exc))
