"""`--since PERIOD` for every command that looks back (`audit`, `digest`): one parser, so the
same period means the same thing to each (`digest --since 30m` was refused where `audit` took
it)."""

from __future__ import annotations

import re
from datetime import timedelta

_SINCE_RE = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MOST_DAYS = 100 * 365  # further back than any archive goes, and short of date arithmetic's end
PERIODS = "30m, 24h, 7d or 2w"  # for --help and errors


def parse_since(value: str) -> timedelta:
    """`30m`, `24h`, `7d`, `2w` (any case, a space allowed before the unit): how far back to
    look. ValueError, naming the option, for anything else or more than 100 years."""
    match = _SINCE_RE.fullmatch(value.strip().lower())
    if match is None:
        raise ValueError(f"--since {value!r} is not a period such as {PERIODS}")
    amount, unit = int(match.group(1)), _UNITS[match.group(2)]
    # Bounded in minutes first: a long enough number overflows timedelta itself.
    period = timedelta(**{unit: amount}) if amount <= MOST_DAYS * 24 * 60 else None
    if period is None or period.days > MOST_DAYS:
        raise ValueError(f"--since {value!r} is more than {MOST_DAYS // 365} years")
    return period
