"""Working calendars as clocks, and the edits that move deadlines.

- clock_for: a WorkingCalendar row as the pure clock (portal.domain.working_time.WorkingTime),
  kept per process under the row's (id, updated_at): a clock builds its working spans lazily, so
  reusing it makes every deadline cheap. An edit changes updated_at, so it is picked up at once.
- terms_moved: the signal an edit of a calendar, or of a version's clock terms, sends in the
  edit's transaction (calendars_edited, terms_edited). tickets recomputes the deadlines of the
  open tickets the edit touches once it commits (tickets.tasks.recompute_deadlines). The admin
  calls these; code that edits calendars or terms elsewhere calls them too.
"""

from __future__ import annotations

import threading

from django.dispatch import Signal
from django.utils import timezone

from portal.domain.working_time import WorkingTime

from . import terms_revision
from .models import WorkingCalendar

# Sent with calendar_ids=[...] and version_ids=[...] (either may be empty), and the reason, as the
# customers whose deadlines the edit moves are told it.
terms_moved = Signal()


def calendars_edited(calendar_ids, reason: str = "") -> None:
    """After saving calendars, their hours or closed dates: clocks are built anew and the open
    tickets on them get their deadlines again. `reason`: what changed, for the customers whose
    deadlines it moves (by default, that the calendars changed)."""
    calendar_ids = sorted(set(calendar_ids))
    WorkingCalendar.objects.filter(pk__in=calendar_ids).update(updated_at=timezone.now())
    terms_revision.bump()  # written in bulk: every process reads the calendars again
    if not reason:
        names = WorkingCalendar.objects.filter(pk__in=calendar_ids).values_list("name", flat=True)
        reason = "our working hours changed: " + ", ".join(f"“{n}”" for n in names)
    terms_moved.send(sender=WorkingCalendar, calendar_ids=calendar_ids, version_ids=[], reason=reason)


def terms_edited(version_ids) -> None:
    """After saving a version's priority terms, ladder or acknowledgement time: the open tickets
    judged by it get their deadlines again."""
    terms_revision.bump()
    terms_moved.send(
        sender=WorkingCalendar, calendar_ids=[], version_ids=sorted(set(version_ids)), reason="the SLA terms changed"
    )


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
        for old in [k for k in _cache if k[0] == calendar.pk]:
            del _cache[old]  # the calendar as it was before an edit
        _cache[key] = clock
    return clock
