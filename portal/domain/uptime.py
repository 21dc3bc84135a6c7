"""Uptime arithmetic: pure Python, no Django.

- Every interval is first rounded outward to whole minutes (start down, end up): any minute an
  outage touches is a down minute.
- Overlapping intervals are merged, never counted twice; intervals are clipped to the period
  (portal.domain.intervals).
- A minute inside an excluded interval is excluded, not down, even where a counted outage
  overlaps it.
- A month runs from 00:00 on its first day to 00:00 on the next month's first day in the
  contract's timezone, so a DST month has 60 minutes more or less.
- The percentage is an exact Decimal; it is rounded only for display.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext

from portal.domain.dates import day_bounds, month_bounds
from portal.domain.intervals import clip, merge, subtract

Interval = tuple[datetime, datetime]
MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("uptime intervals must be timezone-aware")
    return moment.astimezone(UTC)


def round_out(start: datetime, end: datetime) -> Interval:
    """[start, end) widened to whole minutes."""
    start, end = _aware(start), _aware(end)
    s = _EPOCH + ((start - _EPOCH) // MINUTE) * MINUTE
    e = _EPOCH + -((_EPOCH - end) // MINUTE) * MINUTE  # ceiling
    return s, e


def total(intervals: Iterable[Interval]) -> timedelta:
    return sum((e - s for s, e in intervals), timedelta(0))


def minutes(intervals: Iterable[Interval]) -> int:
    return int(total(intervals) // MINUTE)


@dataclass(frozen=True)
class Uptime:
    start: datetime
    end: datetime
    total_minutes: int
    down_minutes: int
    excluded_minutes: int
    down: tuple[Interval, ...]  # the counted down minutes, merged
    excluded: tuple[Interval, ...]  # the excluded minutes, merged

    @property
    def percent(self) -> Decimal:
        """(total - down) / total x 100, exact (a terminating quotient is exact; any other is far
        from every bound a tier table can write)."""
        if self.total_minutes == 0:
            return Decimal(100)
        with localcontext() as ctx:
            ctx.prec = 50
            return Decimal(self.total_minutes - self.down_minutes) * 100 / Decimal(self.total_minutes)


def period_uptime(
    start: datetime, end: datetime, *, down: Iterable[Interval], excluded: Iterable[Interval] = ()
) -> Uptime:
    start, end = _aware(start), _aware(end)
    ex = merge(clip((round_out(s, e) for s, e in excluded), start, end))
    dn = subtract(merge(clip((round_out(s, e) for s, e in down), start, end)), ex)
    return Uptime(
        start=start, end=end, total_minutes=int((end - start) // MINUTE), down_minutes=minutes(dn),
        excluded_minutes=minutes(ex), down=tuple(dn), excluded=tuple(ex),
    )  # fmt: skip


def monthly_uptime(
    year: int, month: int, tz: str, *, down: Iterable[Interval] = (), excluded: Iterable[Interval] = ()
) -> Uptime:
    start, end = month_bounds(year, month, tz)
    return period_uptime(start, end, down=down, excluded=excluded)


def daily_uptime(
    days: Sequence[date], tz: str, *, down: Sequence[Interval], excluded: Sequence[Interval] = ()
) -> list[Uptime]:
    """Uptime of each local day (the status page's bars), from one list of intervals."""
    rounded_down = merge(round_out(s, e) for s, e in down)
    rounded_ex = merge(round_out(s, e) for s, e in excluded)
    return [period_uptime(*day_bounds(d, tz), down=rounded_down, excluded=rounded_ex) for d in days]
