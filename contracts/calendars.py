"""Turn a WorkingCalendar row into the pure clock (portal.domain.working_time.WorkingTime), cached per
process: a clock precomputes its working spans lazily, so reusing it makes every deadline cheap.
The cache key holds the row's updated_at, so an edit is picked up without a restart."""

from __future__ import annotations

import threading

from portal.domain.working_time import WorkingTime

_cache: dict[tuple, WorkingTime] = {}
_lock = threading.Lock()


def clock_for(calendar) -> WorkingTime:
    """`calendar` is a contracts.models.WorkingCalendar with `hours` and `closed_dates` readable
    (prefetch them when building many)."""
    key = (calendar.pk, calendar.updated_at)
    clock = _cache.get(key)
    if clock is not None:
        return clock
    if calendar.always_open:
        clock = WorkingTime.always_open(tz=calendar.timezone)
    else:
        week: dict[int, list] = {}
        for h in calendar.hours.all():
            week.setdefault(h.weekday, []).append((h.opens, h.closes))
        extra = [c.date for c in calendar.closed_dates.all()]
        if calendar.holiday_country:
            clock = WorkingTime.for_country(
                calendar.timezone, week, country=calendar.holiday_country,
                subdiv=calendar.holiday_subdivision or None, extra_closed=extra,
            )  # fmt: skip
        else:
            clock = WorkingTime(tz=calendar.timezone, week=week, holidays=frozenset(extra))
    with _lock:
        _cache[key] = clock
    return clock
