"""Month and day arithmetic, in one place. A month is named by its first day (a `date`); its bounds
are the instants of 00:00 on its first day and on the next month's first day in a timezone, so a
DST month is an hour longer or shorter. Pure Python (no Django)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MONTH_FORMAT = "Enter the month as YYYY-MM, e.g. 2026-10."
_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")
# What month_from_text accepts (YYYY-MM, years 1970-9998, months 01-12), as a schema's pattern says it.
MONTH_PATTERN = r"^(19[7-9]\d|[2-8]\d{3}|9[0-8]\d{2}|99[0-8]\d|999[0-8])-(0[1-9]|1[0-2])$"


# Downtime evidence (outages, maintenance windows) lies within these years: a time outside them is a
# typing mistake, and years 1 and 9999 overflowed datetime as soon as the rules moved them by a
# timezone's offset or a notice's hours (a 500 in the admin's preview).
EVIDENCE_YEARS = range(2000, 2100)
EVIDENCE_YEARS_MESSAGE = f"Enter a time in the years {EVIDENCE_YEARS.start} to {EVIDENCE_YEARS.stop - 1}."


def in_evidence_years(moment: datetime | None) -> bool:
    return moment is None or moment.astimezone(UTC).year in EVIDENCE_YEARS


def runs_during(starts_on: date, ends_on: date | None, tz: str, start: datetime, end: datetime | None = None) -> bool:
    """Whether something that runs from `starts_on` to `ends_on` (both days counted; None: no end),
    on its own calendar in `tz`, runs at some moment of [start, end), or at `start` where no end
    is given (a contract: a Nairobi contract starting on 1 December runs from 30 November 21:00 UTC)."""
    zone = ZoneInfo(tz)
    first = start.astimezone(zone).date()
    last = first if end is None or end <= start else (end - timedelta(microseconds=1)).astimezone(zone).date()
    return starts_on <= last and (ends_on is None or first <= ends_on)


def add_months(month: date, n: int) -> date:
    """The first day of the month n months after `month`'s (n may be negative)."""
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def previous_month(day: date) -> date:
    return add_months(day, -1)


def last_day(month: date) -> date:
    return add_months(month, 1) - timedelta(days=1)


def local_month(moment: datetime, tz: str) -> date:
    """The first day of the month `moment` falls in, in the timezone `tz`."""
    return moment.astimezone(ZoneInfo(tz)).date().replace(day=1)


def month_from_text(text: str) -> date:
    """'2026-10' -> date(2026, 10, 1); ValueError(MONTH_FORMAT) for anything else. Years are kept
    where every timezone's month bounds are representable."""
    match = _MONTH_RE.fullmatch((text or "").strip())
    if not match:
        raise ValueError(MONTH_FORMAT)
    year, month = int(match[1]), int(match[2])
    if not (1 <= month <= 12 and 1970 <= year <= 9998):
        raise ValueError(MONTH_FORMAT)
    return date(year, month, 1)


def wall_moment(wall: datetime, tz: str) -> datetime:
    """The moment a wall time typed in `tz` names. A time the clocks skip there (the hour they go
    forward) or pass twice (the hour they go back) names no one moment: a ValueError saying which,
    never a guess an hour off."""
    if wall.year not in EVIDENCE_YEARS:  # year 1 in Nairobi is before datetime's first moment in UTC
        raise ValueError(EVIDENCE_YEARS_MESSAGE)
    zone = ZoneInfo(tz)
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
        raise ValueError(f"{wall:%Y-%m-%d %H:%M} does not exist in {tz}: the clocks go forward over it.")
    if first.utcoffset() != second.utcoffset():
        raise ValueError(
            f"{wall:%Y-%m-%d %H:%M} happens twice in {tz} (the clocks go back over it): enter a time outside that hour."
        )
    return first


def local_midnight(day: date, tz: str) -> datetime:
    """00:00 of `day` in `tz`, as a UTC instant."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def month_bounds(year: int, month: int, tz: str) -> tuple[datetime, datetime]:
    """[first day 00:00, next month's first day 00:00) in `tz`, as UTC instants."""
    first = date(year, month, 1)
    return local_midnight(first, tz), local_midnight(add_months(first, 1), tz)


def term_period(month: date, tz: str, starts_on: date, ends_on: date | None) -> tuple[datetime, datetime]:
    """A contract-month's period, as UTC instants: the month's bounds in `tz` clipped to the contract's
    term, from `starts_on` 00:00 to `ends_on` + 1 day 00:00 in `tz` (uptime counts the minutes the
    service was there for the client). A month the term misses is an empty period at its clipped start."""
    start, end = month_bounds(month.year, month.month, tz)
    if starts_on > month:
        start = max(start, local_midnight(starts_on, tz))
    if ends_on is not None and ends_on < last_day(month):
        end = min(end, local_midnight(ends_on + timedelta(days=1), tz))
    return start, max(start, end)


def days_after_month(month: date, tz: str, days: int) -> datetime:
    """`days` days after the month's end, local time, as a UTC instant: the close of a claim window
    (October ends at 1 November 00:00, so 30 days after it is 1 December 00:00 local time)."""
    return local_midnight(add_months(month, 1) + timedelta(days=days), tz)


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """[00:00, next day 00:00) of a local day, as UTC instants (23 or 25 hours on a DST change)."""
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the week `moment` is in."""
    return local_midnight(moment.astimezone(UTC).date() - timedelta(days=moment.astimezone(UTC).weekday()), "UTC")
