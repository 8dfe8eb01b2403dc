"""The notice a sender gets when upstream refuses their message or it expires in the queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.parser import BytesParser

import jinja2

from gateway.notify.dsn import RecipientStatus, build_dsn
from gateway.notify.render import local_time


def _subject_of(raw: bytes) -> str:
    try:
        headers = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        return str(headers.get("Subject", "") or "(no subject)")
    except Exception:  # a header the email package cannot read still gets a notice
        return "(no subject)"


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        days = round(seconds / 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, round(seconds / 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def delivery_failure(
    env: jinja2.Environment,
    *,
    reporting_mta: str,
    sender: str,
    original: bytes,
    arrival: datetime,
    statuses: Sequence[RecipientStatus],
    expired: bool,
    lifetime: float,
    sent: datetime | None = None,
) -> bytes:
    # In the organisation's zone when the environment knows it, in the notices' one format;
    # otherwise the time as given, its zone named so that a UTC time is not read as local.
    zone = env.globals.get("org_zone")
    named = f" ({arrival.tzname()})" if arrival.tzname() else ""
    shown = local_time(arrival, zone) if zone else f"{local_time(arrival)}{named}"
    context = {
        "reporting_mta": reporting_mta,
        "statuses": statuses,
        "original_subject": _subject_of(original),
        "arrival": shown,
        "expired": expired,
        "lifetime": _duration(lifetime),
    }
    return build_dsn(
        reporting_mta=reporting_mta,
        sender=sender,
        subject="Undelivered Mail Returned to Sender",
        text=env.get_template("notices/delivery_failed.txt.j2").render(context),
        html=env.get_template("notices/delivery_failed.html.j2").render(context),
        statuses=statuses,
        original=original,
        arrival=arrival,
        sent=sent,
    )
