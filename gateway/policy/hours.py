"""Office hours in the organisation's zone, with weekends and the nation's bank holidays closed.

Grammar: entries separated by ", ", each `DAYS HH:MM-HH:MM`, where DAYS is a day (`Mon`),
a range (`Mon-Fri`) or a list without spaces (`Sat,Sun` or `Mon/Wed/Fri`). An interval
includes its start and excludes its end: with `09:00-18:00`, 17:59 is open and 18:00 is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENTRY = re.compile(
    r"^(?P<days>[A-Za-z/,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$"
)


class HoursError(ValueError):
    pass


@dataclass(frozen=True)
class Interval:
    weekday: int  # Monday = 0
    start: time
    end: time


def _time(text: str) -> time:
    hours, minutes = (int(x) for x in text.split(":"))
    if hours == 24 and minutes == 0:
        return time.max
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise HoursError(f"{text!r} is not a time of day")
    return time(hours, minutes)


def _days(text: str) -> list[int]:
    result: list[int] = []
    for part in re.split(r"[/,]", text.lower()):
        if "-" in part:
            first, _, last = part.partition("-")
            if first[:3] not in DAYS or last[:3] not in DAYS:
                raise HoursError(f"{text!r}: unknown day (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
            a, b = DAYS.index(first[:3]), DAYS.index(last[:3])
            result.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part[:3] in DAYS:
            result.append(DAYS.index(part[:3]))
        else:
            raise HoursError(f"{text!r}: unknown day (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    return result


def parse_intervals(text: str) -> tuple[Interval, ...]:
    intervals: list[Interval] = []
    for entry in (e.strip() for e in re.split(r",\s+", text)):
        if not entry:
            continue
        match = _ENTRY.match(entry)
        if not match:
            raise HoursError(f"{entry!r} is not like 'Mon-Fri 09:00-17:00'")
        start, end = _time(match["start"]), _time(match["end"])
        if end <= start:
            raise HoursError(f"{entry!r}: the end must be after the start")
        intervals.extend(Interval(day, start, end) for day in _days(match["days"]))
    if not intervals:
        raise HoursError("no office hours given")
    return tuple(intervals)


_NATIONS = "GB-ENG (England), GB-WLS (Wales), GB-SCT (Scotland) or GB-NIR (Northern Ireland)"


def holiday_calendar(code: str, years: range) -> holidays.HolidayBase:
    """`GB-ENG` → England and Wales' bank holidays (with substitute days) for `years`."""
    country, _, subdivision = code.strip().partition("-")
    if country.upper() in ("GB", "GBR", "UK") and not subdivision:
        # The library accepts it, and gives only the holidays the four nations share.
        raise HoursError(
            f"bank-holiday region {code!r} names no nation, and would close only on the days "
            f"all four share: use {_NATIONS}"
        )
    try:
        return holidays.country_holidays(country, subdiv=subdivision or None, years=list(years))
    except (NotImplementedError, KeyError) as exc:
        raise HoursError(
            f"unknown bank-holiday region {code!r} ({exc}); in the UK use {_NATIONS}"
        ) from None


class OfficeHours:
    """Immutable after construction; safe to share between threads."""

    def __init__(
        self, text: str, zone: ZoneInfo, bank_holidays: str | None, *, years: range | None = None
    ) -> None:
        self.text = text
        self.zone = zone
        self.intervals = parse_intervals(text)
        self.bank_holidays = bank_holidays
        # Filled once for a wide span of years, so lookups rarely extend shared state.
        self._holidays = (
            holiday_calendar(bank_holidays, years or range(2020, 2041)) if bank_holidays else {}
        )

    def holiday_name(self, day: date) -> str | None:
        name = self._holidays.get(day)
        return str(name) if name else None

    def _open_intervals(self, day: date) -> list[Interval]:
        if self.holiday_name(day):
            return []
        return [i for i in self.intervals if i.weekday == day.weekday()]

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        return any(i.start <= clock < i.end for i in self._open_intervals(local.date()))

    def next_opening(self, moment: datetime) -> datetime:
        """`moment` itself if open, else the start of the next open interval (aware, local)."""
        if self.is_open(moment):
            return moment.astimezone(self.zone)
        local = moment.astimezone(self.zone)
        for offset in range(0, 370):
            day = local.date() + timedelta(days=offset)
            for interval in sorted(self._open_intervals(day), key=lambda i: i.start):
                start = datetime.combine(day, interval.start, tzinfo=self.zone)
                if start > local:
                    return start
        raise HoursError("no opening within a year")
