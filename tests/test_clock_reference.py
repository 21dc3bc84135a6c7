"""Differential tests: portal.domain.working_time against a brute-force minute walker.

The reference shares no code with the implementation: it steps through real
instants (UTC) one minute at a time, converts each to local time with zoneinfo
and asks "is this local date open, is this wall time inside an interval, is
this instant outside every pause?".  Every interval boundary, DST transition
and input used here is minute-aligned, so minute sampling is exact.

No Django here: runs with ``pytest -p no:django``.
"""

import random
from bisect import bisect_left
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest

from portal.domain.working_time import WorkingTime

UTC = timezone.utc
MINUTE = timedelta(minutes=1)

ZONES = {
    # tz -> (country, subdiv, DST change dates in 2026-2027)
    "Africa/Nairobi": ("KE", None, []),
    "Europe/Berlin": ("DE", "BE", [date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31)]),
    "America/New_York": ("US", None, [date(2026, 3, 8), date(2026, 11, 1), date(2027, 3, 14), date(2027, 11, 7)]),
}

WEEKS = {
    "split-day": {wd: [(time(8), time(12)), (time(13), time(17, 30))] for wd in range(5)},
    # Intervals across the DST hours every day, and one ending at 24:00.
    "dst-hours": {wd: [(time(1, 30), time(3, 30)), (time(22), time(0))] for wd in range(7)},
    "mixed": {
        0: [(time(0), time(1, 30)), (time(9), time(17))],
        2: [(time(8), time(17))],
        4: [(time(20), time(0))],
        5: [(time(0), time(6)), (time(2), time(3))],  # overlapping: merged
        6: [(time(0), time(1, 30)), (time(1), time(2)), (time(2), time(3)), (time(23), time(0))],
    },
    "24x7": {wd: [(time(0), time(0))] for wd in range(7)},
}


def _closed_dates(country, subdiv):
    return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=range(2025, 2029)))


def _week_minutes(week):
    """weekday -> [(open_minute, close_minute)] with 00:00 as a close meaning 24:00."""
    out = {}
    for wd, ivs in week.items():
        out[wd] = [(o.hour * 60 + o.minute, (c.hour * 60 + c.minute) or 1440) for o, c in ivs]
    return out


class Reference:
    def __init__(self, tz, week, closed):
        self.tz, self.week, self.closed = ZoneInfo(tz), _week_minutes(week), closed

    def open_at(self, t):
        local = t.astimezone(self.tz)
        if local.date() in self.closed:
            return False
        w = local.hour * 60 + local.minute
        return any(o <= w < c for o, c in self.week.get(local.weekday(), ()))

    def walk(self, start, end, pauses=(), step=MINUTE):
        """Cumulative working time after each step in [start, end)."""
        # Step in UTC: aware arithmetic in a zoneinfo zone is wall-clock arithmetic.
        out, total, t = [], timedelta(0), start.astimezone(UTC)
        while t < end:
            paused = any(p0 <= t and (p1 is None or t < p1) for p0, p1 in pauses)
            if not paused and self.open_at(t):
                total += step
            out.append(total)
            t += step
        return out

    @staticmethod
    def add_from_walk(start, cumulative, d, step=MINUTE):
        """First moment m with elapsed(start, m) == d, or None if not within the walk."""
        if d == timedelta(0):
            return start.astimezone(UTC)
        for i, c in enumerate(cumulative):
            if c == d:
                return start.astimezone(UTC) + (i + 1) * step
        return None


def _calendars():
    cals = []
    for tz, (country, subdiv, _) in ZONES.items():
        closed = _closed_dates(country, subdiv)
        for name, week in WEEKS.items():
            # Alternate a frozen set and the lazy holidays object to exercise both.
            if name in ("split-day", "24x7"):
                cal = WorkingTime.for_country(tz, week, country, subdiv=subdiv)
            else:
                cal = WorkingTime(tz, week, closed)
            cals.append((f"{tz}/{name}", tz, cal, Reference(tz, week, closed), ZONES[tz][2]))
    return cals


CALENDARS = _calendars()


def _random_start(rng, tz, dst_days, align):
    zone = ZoneInfo(tz)
    if dst_days and rng.random() < 0.5:
        # Deliberately around a DST change: from two days before to one day after.
        day = rng.choice(dst_days)
        base = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        offset = rng.randrange(-2 * 1440, 1440)
    else:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        offset = rng.randrange(0, 2 * 365 * 1440 - 60 * 1440)
    moment = base + timedelta(minutes=offset - offset % align)
    # Hand the clock inputs in assorted timezones; the answer must not depend on it.
    return moment.astimezone(rng.choice([UTC, zone, ZoneInfo("Asia/Kolkata")]))


def _random_pauses(rng, start, span, align):
    pauses = []
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        p0 = start.astimezone(UTC) + timedelta(minutes=rng.randrange(-1440, span + 1440) // align * align)
        if rng.random() < 0.1:
            pauses.append((p0, None))
        else:
            pauses.append((p0, p0 + timedelta(minutes=rng.randrange(0, 2 * 1440) // align * align)))
    return pauses


def _check_case(rng, label, cal, ref, start, span_minutes, pauses, step):
    end = start.astimezone(UTC) + timedelta(minutes=span_minutes)
    cumulative = ref.walk(start, end, pauses, step)
    expected = cumulative[-1] if cumulative else timedelta(0)
    ctx = f"{label} start={start.isoformat()} end={end.isoformat()} pauses={pauses}"
    assert cal.elapsed(start, end, pauses) == expected, ctx
    # add(): every reachable duration up to the total, in whole steps.
    candidates = {timedelta(0), expected} | {step * rng.randrange(0, expected // step + 1) for _ in range(3)}
    for d in candidates:
        want = ref.add_from_walk(start, cumulative, d, step)
        got = cal.add(start, d, pauses)
        assert got == want, f"{ctx} d={d}"
        assert got.tzinfo is UTC
    # One step beyond what the window holds: None iff an open-ended pause starts in it.
    # (All working time in the window accrues before that pause; none accrues after it.)
    if any(p1 is None and p0 < end for p0, p1 in pauses):
        assert cal.add(start, expected + step, pauses) is None, ctx


def test_differential_short_spans():
    """3,000 minute-resolution cases, spans up to ~3 days."""
    rng = random.Random(20261211)
    for _ in range(3000):
        label, tz, cal, ref, dst_days = rng.choice(CALENDARS)
        start = _random_start(rng, tz, dst_days, align=1)
        span = int(rng.triangular(0, 3 * 1440, 300))
        pauses = _random_pauses(rng, start, span, align=1)
        _check_case(rng, label, cal, ref, start, span, pauses, MINUTE)


def test_differential_long_spans():
    """300 cases with spans up to 40 days, walked in 15-minute steps.

    Every boundary in the calendars above (and every DST change) falls on a
    quarter hour, so with quarter-hour-aligned inputs this is still exact.
    """
    rng = random.Random(7)
    step = timedelta(minutes=15)
    for _ in range(300):
        label, tz, cal, ref, dst_days = rng.choice(CALENDARS)
        start = _random_start(rng, tz, dst_days, align=15)
        span = rng.randrange(0, 40 * 1440) // 15 * 15
        pauses = _random_pauses(rng, start, span, align=15)
        _check_case(rng, label, cal, ref, start, span, pauses, step)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
def test_every_minute_across_dst_days(tz):
    """Every start minute of each DST-change day, to the end of the next day."""
    _, _, cal, ref, dst_days = next(c for c in CALENDARS if c[0] == f"{tz}/dst-hours")
    zone = ZoneInfo(tz)
    for day in dst_days:
        t0 = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        t1 = datetime.combine(day + timedelta(days=2), time(0), zone).astimezone(UTC)
        cumulative = ref.walk(t0, t1)
        for i in range(len(cumulative)):
            start = t0 + i * MINUTE
            before = cumulative[i - 1] if i else timedelta(0)
            assert cal.elapsed(start, t1) == cumulative[-1] - before, start
            assert cal.is_open(start) == (cumulative[i] > before), start
            d = (cumulative[-1] - before) // 2 // MINUTE * MINUTE
            if d:
                j = bisect_left(cumulative, before + d)  # first minute reaching d
                assert cal.add(start, d) == t0 + (j + 1) * MINUTE, start


@pytest.mark.parametrize("tz", ["America/Santiago", "Australia/Lord_Howe"])
def test_exotic_transitions(tz):
    """Santiago changes at local midnight (the day starts at 01:00 or has 00:00 twice);
    Lord Howe shifts by only 30 minutes.  Cases straddle each 2026 transition."""
    zone, rng = ZoneInfo(tz), random.Random(tz)
    transitions, t = [], datetime(2026, 1, 1, tzinfo=UTC)
    while t.year == 2026:
        t += timedelta(minutes=30)
        if t.astimezone(zone).utcoffset() != (t - timedelta(minutes=30)).astimezone(zone).utcoffset():
            transitions.append(t)
    assert len(transitions) == 2
    week = {wd: [(time(0), time(0, 30)), (time(1, 30), time(3, 30)), (time(23, 30), time(0))] for wd in range(7)}
    cal, ref = WorkingTime(tz, week), Reference(tz, week, frozenset())
    for _ in range(150):
        start = rng.choice(transitions) + timedelta(minutes=rng.randrange(-1500, 300))
        _check_case(rng, tz, cal, ref, start, rng.randrange(2 * 1440), [], MINUTE)
